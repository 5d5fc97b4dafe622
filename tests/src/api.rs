//! One way for a test to send a request to the server and read the answer, modelled on axum's
//! `TestClient`: `server.get(path).bearer(key).json(&body).send().await` gives a [`Reply`] with
//! the status, the headers and the body. For bytes an HTTP client would refuse or normalise,
//! use [`Server::raw`](crate::Server::raw) instead.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{client, Server};

impl Server {
    /// A request `method path` on the API address.
    pub fn request(&self, method: Method, path: &str) -> Request {
        Request {
            what: format!("{method} {}", without_query(path)),
            inner: client().request(method, self.url(path)),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Request {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> Request {
        self.request(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> Request {
        self.request(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> Request {
        self.request(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Request {
        self.request(Method::DELETE, path)
    }

    /// `HEAD path`.
    pub fn head(&self, path: &str) -> Request {
        self.request(Method::HEAD, path)
    }
}

/// The query may hold a credential (`access_token=`): messages name the path alone.
fn without_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// A request being built; [`Request::send`] sends it.
pub struct Request {
    what: String,
    inner: reqwest::RequestBuilder,
}

impl Request {
    /// `Authorization: Bearer <key>`.
    pub fn bearer(self, key: &str) -> Self {
        self.authorization(&format!("Bearer {key}"))
    }

    /// `Authorization: <value>`, exactly as given (for malformed schemes).
    pub fn authorization(self, value: &str) -> Self {
        self.header(AUTHORIZATION, value)
    }

    /// Any header (names in any case; the value as given).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.inner = self.inner.header(name.as_ref(), value.as_ref());
        self
    }

    /// Several headers at once.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.inner = self.inner.headers(headers);
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    pub fn json(mut self, body: &Value) -> Self {
        self.inner = self.inner.json(body);
        self
    }

    /// A body of exactly these bytes (set `Content-Type` with [`Request::header`]).
    pub fn body(mut self, body: impl Into<reqwest::Body>) -> Self {
        self.inner = self.inner.body(body);
        self
    }

    /// A longer deadline than the harness client's 10 s, for large bodies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner = self.inner.timeout(timeout);
        self
    }

    /// Sends the request and reads the whole answer. A transport error panics naming the
    /// method and path, never the URL's query or a header (they may hold a credential).
    pub async fn send(self) -> Reply {
        let what = self.what;
        let response = self
            .inner
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(reqwest::Error::without_url)
            .unwrap_or_else(|err| panic!("{what}: reading the body: {err}"))
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A whole answer.
pub struct Reply {
    /// The status code (compares with a `u16`: `reply.status == 401`).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The only value of a header, if present (panics if it is not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("an ASCII header value"))
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `Value::Null` when it is empty; panics when it is not JSON.
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {:?}", self.text()))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status.as_u16())
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}
