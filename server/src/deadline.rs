//! The body read deadline (`PORTCULLIS_BODY_TIMEOUT`): a request that declares a body must
//! deliver all of it within the deadline, counted from when its headers arrived, or it gets
//! 408. actix-web's own `client_request_timeout` covers the headers only, so a client that sent
//! `Content-Length: 1000000` and one byte would otherwise hold a connection and a handler
//! forever, for the embedded store and for the proxy's upload alike.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use actix_web::ResponseError;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::error::ApiError;

/// Whether `err` is the deadline's error, as seen by a handler reading the body.
pub fn is_deadline(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut)
}

/// Wraps the body of a request that declares one in the deadline. The gate calls it first
/// thing, so the deadline counts from the headers' arrival and covers every route. `Some`
/// flag for a request with a body: set once the deadline is what stopped its read.
pub fn arm(timeout: Duration, req: &mut ServiceRequest) -> Option<Rc<Cell<bool>>> {
    // Without a payload stream there is nothing to read, whatever the headers say (the
    // usual GET: no header lookup).
    if matches!(req.parts_mut().1, Payload::None) || !declares_body(req) {
        return None;
    }
    let expired = Rc::new(Cell::new(false));
    let inner = req.take_payload();
    req.set_payload(Payload::from(Box::pin(Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        expired: expired.clone(),
    })
        as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>));
    Some(expired)
}

/// The answer to a request whose body the deadline stopped: 408 in place of whatever the
/// handler answered (it saw only a failed read, and the proxy would call it a bad gateway).
pub fn expired<B>(
    timeout: Duration,
    response: ServiceResponse<EitherBody<B>>,
) -> ServiceResponse<EitherBody<B>> {
    tracing::info!(
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        "request body not received in time"
    );
    let req = response.request().clone();
    ServiceResponse::new(req, ApiError::RequestTimeout.error_response()).map_into_right_body()
}

/// A body is declared by a non-zero `Content-Length` or by any `Transfer-Encoding`.
fn declares_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The payload, failing with a `TimedOut` I/O error once `sleep` fires before it has ended.
struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body was not received in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
