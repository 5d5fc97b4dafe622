//! The bodies that cross the proxy, streamed chunk by chunk, never buffered whole: the client's
//! request body on its way to the upstream ([`RequestBody`]) and the upstream's response body
//! on its way back ([`ResponseBody`], with the per-chunk read timeout).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::Method as ActixMethod;
use actix_web::web::{self, Bytes};
use futures_util::StreamExt;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Request-body chunks in flight between the client connection and the upstream connection.
/// Bounds the memory a request body can take in the proxy (actix reads chunks of at most a
/// few tens of KiB).
const BODY_CHANNEL_CHUNKS: usize = 4;

/// The body of a forwarded request.
pub(crate) enum RequestBody {
    /// The client declared none: the upstream gets none either.
    Empty,
    /// The client's body, fed by a task on the worker (see [`RequestBody::stream`]).
    Stream(mpsc::Receiver<Result<Bytes, io::Error>>),
}

impl RequestBody {
    /// Streams the client's body to the upstream. The actix payload lives on its worker
    /// thread (it is not `Send`, and the client's connection tasks must be), so a local task
    /// feeds a small bounded channel that the upstream connection reads: memory stays at a
    /// few chunks however large the body, and a slow upstream slows the client down instead
    /// of filling a buffer.
    pub(crate) fn stream(mut payload: web::Payload) -> Self {
        let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(BODY_CHANNEL_CHUNKS);
        actix_web::rt::spawn(async move {
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|err| io::Error::other(err.to_string()));
                let failed = chunk.is_err();
                // A send error means the upstream request is gone (answered early or failed).
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        RequestBody::Stream(rx)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RequestBody::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            // The client's own Content-Length, forwarded, frames it; else chunked.
            RequestBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Why a response body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResponseBodyError {
    /// The upstream connection failed mid-body.
    #[error("the upstream response body failed: {0}")]
    Upstream(#[from] hyper::Error),
    /// No data for longer than the upstream timeout.
    #[error("no data from the upstream within the timeout")]
    Stalled,
}

/// The upstream's response body, handed to actix as it arrives. A stalled body fails after
/// `timeout` without data instead of holding the client connection forever; the timer is
/// armed only while a read waits, so a body already received costs none.
pub(crate) struct ResponseBody {
    inner: Incoming,
    size: BodySize,
    timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
    /// Whether `stall` runs for the current wait.
    waiting: bool,
    /// For the log line when the body fails.
    method: ActixMethod,
}

impl ResponseBody {
    /// `inner`, announced to the client as `length` bytes when the upstream said so.
    pub(crate) fn new(
        inner: Incoming,
        length: Option<u64>,
        timeout: Duration,
        method: ActixMethod,
    ) -> Self {
        ResponseBody {
            inner,
            size: length.map_or(BodySize::Stream, BodySize::Sized),
            timeout,
            stall: None,
            waiting: false,
            method,
        }
    }
}

impl MessageBody for ResponseBody {
    type Error = ResponseBodyError;

    fn size(&self) -> BodySize {
        self.size
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.waiting = false;
                    // Trailers are not forwarded (`Trailer` is hop-by-hop here).
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Poll::Ready(Some(Ok(data)));
                        }
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::warn!(error = %err, method = %this.method, "upstream response body failed");
                    return Poll::Ready(Some(Err(err.into())));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        if !this.waiting {
            this.waiting = true;
            let deadline = Instant::now() + this.timeout;
            match &mut this.stall {
                Some(stall) => stall.as_mut().reset(deadline),
                None => this.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        if let Some(stall) = &mut this.stall {
            if stall.as_mut().poll(cx).is_ready() {
                tracing::warn!(
                    timeout_ms = u64::try_from(this.timeout.as_millis()).unwrap_or(u64::MAX),
                    method = %this.method,
                    "upstream response body stalled"
                );
                return Poll::Ready(Some(Err(ResponseBodyError::Stalled)));
            }
        }
        Poll::Pending
    }
}
