//! Serving connections with limits a hostile or broken client cannot get
//! around: a deadline for each request head (an idle keep-alive connection
//! included), a deadline for each request body, a cap on open connections
//! (beyond it a connection gets a 503 at once, before any byte is read), and
//! a shutdown that ends within a bounded time whatever the clients do.
//! axum's `serve` has none of these knobs; this is the same hyper-util
//! server it uses, configured.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// From waiting for a request to having its whole head.
    pub header_timeout: Duration,
    /// From the head to the body's last byte (an upload of 6 MB at 100 KB/s fits).
    pub body_timeout: Duration,
    /// After SIGTERM, how long requests in flight may finish.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The defaults, with the connection cap under the open-file limit
    /// (raised to its hard limit first), leaving room for files, SQLite and
    /// connections to AWS.
    pub fn for_this_process(args: &crate::config::ServeArgs) -> Limits {
        let files = raise_open_file_limit();
        let fit = (files.saturating_sub(256) as usize).clamp(64, 8192);
        Limits {
            max_connections: if args.max_connections == 0 { fit } else { args.max_connections.min(fit) },
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
        }
    }
}

/// Raises the soft limit on open files to the hard one; returns the limit now.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max.min(1 << 20), rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish for up to `limits.shutdown_grace` and returns.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors (EMFILE) or the like: wait, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body_timeout = limits.body_timeout;
        let service = app.clone().map_request(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(|body| Body::new(Deadline::new(body, body_timeout)))
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        // HTTP/1.1 only (browsers speak it to a plain-HTTP console): the
        // automatic HTTP/2 detection would wait for a first byte with no
        // deadline, so an idle connection would never be cut.
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        // No span per connection: the request span (TraceLayer) names what
        // a line is about, and the accept loop stays as short as it can.
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight (at most {} s)", limits.shutdown_grace.as_secs());
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still open after {} s are cut off", limits.shutdown_grace.as_secs());
    }
}

/// The answer to a connection over the cap: written at once, then closed.
async fn refuse(mut stream: tokio::net::TcpStream, cap: usize) {
    let body = format!(r#"{{"kind":"Throttled","message":"the console has {cap} connections open, its limit; retry in a moment"}}"#);
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// A request body that fails once its deadline passes: a client sending a
/// byte every few seconds cannot hold a handler (or a decode slot) forever.
pub struct Deadline<B> {
    inner: B,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl<B> Deadline<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Deadline { inner, sleep: Box::pin(tokio::time::sleep(timeout)), timeout }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body took longer than {0:?} to arrive")]
pub struct TooSlow(Duration);

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body<Data = axum::body::Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(TooSlow(this.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_that_arrives_too_slowly_fails_at_its_deadline() {
        // A byte every 50 ms, ten times: 500 ms for the whole body.
        let drip = futures_util::stream::unfold(0, |n| async move {
            if n == 10 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::convert::Infallible>(http_body::Frame::data(axum::body::Bytes::from_static(b"x"))), n + 1))
        });
        let mut slow = Deadline::new(http_body_util::StreamBody::new(Box::pin(drip)), Duration::from_millis(200));
        let started = std::time::Instant::now();
        let mut got = 0;
        let error = loop {
            match slow.frame().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("the body ended before its deadline"),
            }
        };
        assert!(error.to_string().contains("took longer than"), "{error}");
        assert!((2..10).contains(&got) && started.elapsed() < Duration::from_millis(450), "{got} frames in {:?}", started.elapsed());
    }
}
