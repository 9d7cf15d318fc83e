//! Files the tests write and then execute.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes an executable (mode 0755) from a child process, so this process
/// never holds a write descriptor to it. Written in-process, a test thread's
/// concurrent fork could inherit that descriptor for the moment before its
/// exec, and executing the file then fails with ETXTBSY ("Text file busy").
pub fn write_executable(path: &Path, content: &str) {
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh runs");
    child.stdin.take().expect("piped stdin").write_all(content.as_bytes()).expect("sh reads the content");
    let status = child.wait().expect("sh ends");
    assert!(status.success(), "cannot write {}: {status}", path.display());
}
