//! What a listener allows a peer before it has proved the secret. gRPC
//! authenticates per call (the bearer secret in the headers), so until then a
//! peer may only open HTTP/2: it has [`ListenerLimits::handshake`] to send the
//! connection preface, headers are capped, and the frame size is h2's default.
//! A request with no or a wrong secret is refused on its headers, before its
//! body is read. The REST server applies the same limits over HTTP/1 (see
//! `am::rest`), and the data plane its own fixed-size handshake.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The HTTP/2 client connection preface (RFC 9113 section 3.4).
const H2_PREFACE_LEN: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// From accepting a connection to the end of its first bytes (the HTTP/2
    /// preface; a request head over HTTP/1). A peer that says nothing is dropped then.
    pub handshake: Duration,
    /// Request headers, all together.
    pub max_header_bytes: u32,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits { handshake: Duration::from_secs(10), max_header_bytes: 16 << 10 }
    }
}

impl ListenerLimits {
    /// A gRPC server with these limits. Messages stay within tonic's 4 MiB
    /// decoding limit; frames within h2's default of 16 KiB.
    pub fn grpc_server(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder()
            .http2_max_header_list_size(self.max_header_bytes)
            .max_concurrent_streams(256)
            // A peer that stops answering pings holds nothing for long.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .tcp_nodelay(true)
    }

    /// `listener`'s connections, each to be dropped unless its first
    /// `first_bytes` arrive within the handshake time.
    pub fn incoming(&self, listener: TcpListener, first_bytes: usize) -> Incoming {
        Incoming { listener, handshake: self.handshake, first_bytes }
    }

    /// For a gRPC server: the first bytes are the HTTP/2 preface.
    pub fn grpc_incoming(&self, listener: TcpListener) -> Incoming {
        self.incoming(listener, H2_PREFACE_LEN)
    }
}

/// Serves HTTP/1 on `listener` until `shutdown`, with bounds on what a peer
/// may send before a handler (and so any secret check) sees its request: the
/// head must arrive whole within the handshake time and fit in the header
/// limit (431 above it). `handle` gets each request and its peer's address.
/// On shutdown, open requests get a few seconds to finish. The AM's REST API
/// and every TaskManager's `/metrics` page are served so.
pub async fn serve_http1<F, Fut, B>(
    listener: TcpListener,
    limits: ListenerLimits,
    shutdown: tokio_util::sync::CancellationToken,
    handle: F,
) where
    F: Fn(hyper::Request<hyper::body::Incoming>, Option<std::net::IpAddr>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = hyper::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let incoming = limits.incoming(listener, 1);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.handshake)
        // hyper's floor is 8 KiB.
        .max_buf_size((limits.max_header_bytes as usize).max(8192));
    loop {
        let stream = tokio::select! {
            s = incoming.accept() => s,
            _ = shutdown.cancelled() => break,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!("accepting an HTTP connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = stream.connect_info().remote_addr().map(|a| a.ip().to_canonical());
        let handle = handle.clone();
        let service = hyper::service::service_fn(move |req| {
            let reply = handle(req, peer);
            async move { Ok::<_, std::convert::Infallible>(reply.await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("an HTTP connection ended: {e}");
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Accepted connections, wrapped in [`Handshaking`]. Accept errors (out of
/// file descriptors, say) are passed on for the server to log and go on.
pub struct Incoming {
    listener: TcpListener,
    handshake: Duration,
    first_bytes: usize,
}

impl Incoming {
    pub async fn accept(&self) -> io::Result<Handshaking<TcpStream>> {
        let (stream, _) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(Handshaking::new(stream, self.first_bytes, self.handshake))
    }
}

impl Stream for Incoming {
    type Item = io::Result<Handshaking<TcpStream>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, _))) => {
                let _ = stream.set_nodelay(true);
                Poll::Ready(Some(Ok(Handshaking::new(stream, this.first_bytes, this.handshake))))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A stream whose reads fail (so the server drops it) if its first `needed`
/// bytes have not arrived by the deadline; afterwards it is transparent.
pub struct Handshaking<S> {
    inner: S,
    needed: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Handshaking<S> {
    pub fn new(inner: S, needed: usize, within: Duration) -> Self {
        let deadline = (needed > 0).then(|| Box::pin(tokio::time::sleep(within)));
        Handshaking { inner, needed, deadline }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Handshaking<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not complete its handshake in time",
                )));
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.needed > 0 {
            this.needed = this.needed.saturating_sub(buf.filled().len() - before);
            if this.needed == 0 {
                this.deadline = None;
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Handshaking<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for Handshaking<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_silent_peer_fails_at_the_deadline_and_a_prompt_one_never_does() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut silent = Handshaking::new(a, 4, Duration::from_millis(50));
        let started = std::time::Instant::now();
        let err = silent.read_u8().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(50));

        let (a, mut b2) = tokio::io::duplex(64);
        let mut prompt = Handshaking::new(a, 4, Duration::from_millis(50));
        b2.write_all(b"PRI *").await.unwrap();
        let mut got = [0u8; 5];
        prompt.read_exact(&mut got).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        b2.write_all(b"!").await.unwrap();
        assert_eq!(prompt.read_u8().await.unwrap(), b'!', "past its first bytes it is a plain stream");
        let _ = b.write_all(b"x").await;
    }
}
