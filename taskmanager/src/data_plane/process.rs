//! Running a subtask as a child process: stdin is fed from the input gates,
//! stdout drained into the result partitions, stderr logged (its last lines
//! kept for the failure message). The child runs in its own process group,
//! which is killed whenever the attempt ends early, so no child or grandchild
//! outlives its attempt.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::input::InputStream;
use super::writer::RecordWriter;
use super::{DataPlaneConfig, TaskError};

/// How many stderr lines a failure message carries.
const STDERR_TAIL: usize = 20;
/// Longest piece of a stderr (or logged stdout) line kept as one log line.
const MAX_LOG_LINE: u64 = 8192;
/// Pipe size asked of the kernel (Linux `F_SETPIPE_SZ`); fewer, larger reads.
const PIPE_SIZE: i32 = 1 << 20;

/// Kills the child's process group when dropped (the attempt ended, failed,
/// was canceled, or its future was dropped).
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) takes no pointers. ESRCH (already gone) is fine.
            let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
            if rc != 0 {
                debug!(pgid, "killing the process group: {}", io::Error::last_os_error());
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn grow_pipe(fd: i32) {
    // Best effort: a larger pipe means fewer wake-ups per MB.
    // SAFETY: fcntl(F_SETPIPE_SZ) on a descriptor we own takes no pointers.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) label: String,
}

pub(crate) fn spawn(mut cmd: Command, label: String, has_inputs: bool) -> Result<Spawned, TaskError> {
    cmd.stdin(if has_inputs { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // A TaskManager killed outright (SIGKILL, OOM killer) runs no cleanup: the
    // kernel then kills the subtask for it.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        TaskError::Failed(format!(
            "{label}: starting the program failed: {e}; check that it exists in the bundle (or on the PATH) and is \
             executable"
        ))
    })?;
    Ok(Spawned { child, label })
}

/// Runs the spawned child to its end.
pub(crate) async fn run(
    spawned: Spawned,
    inputs: InputStream,
    mut writer: RecordWriter,
    config: &DataPlaneConfig,
    cancel: &CancellationToken,
) -> Result<(), TaskError> {
    let Spawned { mut child, label } = spawned;
    let mut guard = GroupGuard(child.id().map(|p| p as i32));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    if let Some(s) = &stdin {
        grow_pipe(s.as_raw_fd());
    }
    if let Some(s) = &stdout {
        grow_pipe(s.as_raw_fd());
    }
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
    let stderr_task = stderr.map(|s| tokio::spawn(log_stderr(s, label.clone(), tail.clone())));

    let failure = {
        let feed = feed(stdin, inputs);
        let drain = async {
            match stdout {
                Some(out) => drain(out, &mut writer, config, &label).await,
                None => Ok(()),
            }
        };
        let io_work = async { futures::try_join!(feed, drain).map(|_| ()) };
        tokio::pin!(io_work);
        let mut status: Option<ExitStatus> = None;
        let mut io_done = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break Some(TaskError::Canceled),
                exit = child.wait(), if status.is_none() => match exit {
                    Ok(s) if s.success() => status = Some(s),
                    Ok(s) => break Some(TaskError::Failed(describe_exit(&label, s))),
                    Err(e) => break Some(TaskError::Failed(format!("{label}: waiting for the process failed: {e}"))),
                },
                done = &mut io_work, if !io_done => match done {
                    Ok(()) => io_done = true,
                    Err(why) => break Some(TaskError::Failed(format!("{label}: {why}"))),
                },
            }
            if io_done && status.is_some() {
                break None;
            }
        }
    };
    guard.kill();
    if let Some(failure) = failure {
        // Reap it, so the pid is gone when we return.
        let _ = child.wait().await;
        return Err(match failure {
            TaskError::Failed(msg) => {
                if let Some(t) = stderr_task {
                    let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
                }
                TaskError::Failed(with_tail(msg, &tail))
            }
            other => other,
        });
    }
    writer.finish().await.map_err(|_| TaskError::Failed(format!("{label}: a consumer of its output went away")))?;
    if let Some(t) = stderr_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
    }
    Ok(())
}

fn describe_exit(label: &str, status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("{label} exited with code {code}"),
        (None, Some(sig)) => format!("{label} was killed by signal {sig}"),
        _ => format!("{label} ended with {status}"),
    }
}

fn with_tail(msg: String, tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
    if tail.is_empty() {
        return format!("{msg} (its stderr was empty)");
    }
    let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    format!("{msg}; last lines of its stderr:\n{}", lines.join("\n"))
}

async fn log_stderr(stderr: ChildStderr, label: String, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a line without end is logged in pieces, never buffered whole.
        match (&mut lines).take(MAX_LOG_LINE).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        warn!(task = %label, "stderr: {text}");
        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(text);
    }
}

/// Writes every input buffer to stdin, then closes it. If the program stops
/// reading (closes stdin early, like `head`), the rest of the input is read
/// and dropped, so the producers upstream still finish.
async fn feed(stdin: Option<ChildStdin>, mut inputs: InputStream) -> Result<(), String> {
    let mut stdin = stdin;
    while let Some(buf) = inputs.next().await {
        let buf = buf?;
        if let Some(s) = &mut stdin {
            if let Err(e) = s.write_all(&buf).await {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    return Err(format!("writing to its stdin failed: {e}"));
                }
                debug!("the program closed its stdin early; dropping the rest of its input");
                stdin = None;
            }
        }
    }
    // Dropping stdin closes it: the program sees the end of its input.
    drop(stdin);
    Ok(())
}

/// Reads stdout in large reads, cuts at the last newline and hands whole
/// records to the writer without copying. Partly filled hash/rebalance
/// buffers are flushed when the program goes quiet for `flush_interval`.
async fn drain(
    mut stdout: ChildStdout,
    writer: &mut RecordWriter,
    config: &DataPlaneConfig,
    label: &str,
) -> Result<(), String> {
    let gone = |_| "a consumer of its output went away".to_string();
    if writer.is_empty() {
        // No outgoing edge: log the first lines and drop the rest.
        let mut lines = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut logged = 0;
        loop {
            line.clear();
            match (&mut lines).take(MAX_LOG_LINE).read_until(b'\n', &mut line).await {
                Ok(0) => return Ok(()),
                Ok(_) if logged < 100 => {
                    logged += 1;
                    info!(task = %label, "stdout: {}", String::from_utf8_lossy(&line).trim_end());
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading its stdout failed: {e}")),
            }
        }
    }
    let read_size = config.buffer_size.max(4096);
    let mut buf = BytesMut::with_capacity(read_size);
    loop {
        // At most `read_size` per read: a chunk is one read plus the partial
        // line before it, which bounds what one queued buffer can hold.
        buf.reserve(read_size);
        let n = if writer.has_pending() {
            match tokio::time::timeout(config.flush_interval, stdout.read_buf(&mut (&mut buf).limit(read_size))).await {
                Ok(r) => r,
                Err(_) => {
                    writer.flush().await.map_err(gone)?;
                    stdout.read_buf(&mut (&mut buf).limit(read_size)).await
                }
            }
        } else {
            stdout.read_buf(&mut (&mut buf).limit(read_size)).await
        }
        .map_err(|e| format!("reading its stdout failed: {e}"))?;
        if n == 0 {
            if !buf.is_empty() {
                // The last record had no newline: records are lines, add it.
                buf.extend_from_slice(b"\n");
                writer.write(&buf.split().freeze()).await.map_err(gone)?;
            }
            return Ok(());
        }
        let fresh_from = buf.len() - n;
        if let Some(i) = memchr::memrchr(b'\n', &buf[fresh_from..]) {
            let chunk = buf.split_to(fresh_from + i + 1).freeze();
            writer.write(&chunk).await.map_err(gone)?;
        } else if buf.len() > config.max_record_bytes {
            return Err(format!(
                "it wrote a record longer than {} bytes; raise `max_record_bytes` or emit shorter lines",
                config.max_record_bytes
            ));
        }
    }
}
