//! Where the real Hadoop 3.3.6 captures are: `shared/wire/hadoop-3.3.6` beside
//! the checkout (`../shared`), or wherever `HADOOP_WIRE_FIXTURES` says.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub(crate) fn wire_dir() -> PathBuf {
    std::env::var_os("HADOOP_WIRE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire/hadoop-3.3.6"))
}

/// (path, mode) of every entry of a `.tar.gz`, in order.
pub(crate) fn tar_entries(gz: &[u8]) -> Vec<(String, u32)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
        })
        .collect()
}

/// The bytes of `rest/<name>`.
pub(crate) fn rest(name: &str) -> Vec<u8> {
    let path = wire_dir().join("rest").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The body of a raw HTTP/1.1 response, chunked or not.
pub(crate) fn http_body(raw: &[u8]) -> Vec<u8> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut rest = &raw[split..];
    if !head.contains("transfer-encoding: chunked") {
        return rest.to_vec();
    }
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Serves `response` (raw HTTP bytes, as captured) to one request; returns the
/// base URL and a handle giving the request's head + body.
pub(crate) async fn replay(response: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        sock.write_all(&response).await.unwrap();
        sock.shutdown().await.unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    (base, handle)
}
