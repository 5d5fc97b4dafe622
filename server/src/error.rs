//! `ApiError`: the only type that knows HTTP status codes, and the one place errors become
//! responses. Bodies never echo internal errors or secrets.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// `WWW-Authenticate` for a request that carried no credential (RFC 6750 §3: no error code).
const CHALLENGE_MISSING: &str = r#"Bearer realm="portcullis""#;
/// `WWW-Authenticate` for a credential that was present but invalid.
const CHALLENGE_INVALID_TOKEN: &str = r#"Bearer realm="portcullis", error="invalid_token""#;
/// `WWW-Authenticate` for an Authorization header that could not be understood.
const CHALLENGE_INVALID_REQUEST: &str = r#"Bearer realm="portcullis", error="invalid_request""#;

/// The 503 message while the user store shared by replicas cannot be read
/// (`docs/replicas.md`).
pub const STORE_UNAVAILABLE: &str = "store_unavailable: the user store cannot be reached or has \
     not been read within PORTCULLIS_KEY_REVOCATION_BOUND, so users cannot be managed; retry later";

/// The 503 message while the roles were not read yet: the replica started with the user store
/// down and has not reached it since (`docs/replicas.md`); only the settings' holders of the
/// built-in roles are authorized meanwhile.
pub const ROLES_NOT_READ: &str = "store_unavailable: the roles have not been read from the user \
     store yet (it could not be reached at start), so this cannot be authorized; retry later";

/// Every error a client can see.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The Authorization header is ambiguous or malformed: a 400 with RFC 6750's
    /// `invalid_request` challenge. The message says what is wrong, never what was sent.
    #[error("invalid_request: {0}")]
    MalformedAuthorization(&'static str),
    /// No credential and anonymous access is off. The message names the enabled methods.
    #[error("{0}")]
    MissingCredential(String),
    /// A credential was present and is not valid. The message is the same for every cause.
    #[error("unauthorized: invalid credential")]
    InvalidCredential,
    /// A credential was sent to a server with no authentication scheme configured.
    #[error("unauthorized: no authentication scheme is configured (API Key or OIDC), but an 'Authorization' header was provided. Please configure an auth scheme or remove the header for anonymous access")]
    NoSchemeConfigured,
    /// The caller is known but has no information to show (anonymous own-info).
    #[error("unauthorized: {0}")]
    NotAuthenticated(&'static str),
    /// Authenticated, but not allowed to perform this verb on this path.
    #[error("forbidden: user '{user}' has insufficient permissions to {verb} {path}")]
    Forbidden {
        /// The caller's user name.
        user: String,
        /// `read` or `write`.
        verb: &'static str,
        /// The request path, without the query string.
        path: String,
    },
    /// Refused by RBAC: Weaviate's message, naming the user, their groups, the action and
    /// the resource (`rbac: authorization, forbidden action: user 'alice' has insufficient
    /// permissions to read_data [[Domain: data, ...]]`).
    #[error("{0}")]
    RbacForbidden(String),
    /// No such route: the generic `not found` body, which names nothing the client sent.
    #[error("not found")]
    NotFound,
    /// A named resource (a user, a class, an object) does not exist; the message names it,
    /// never a secret.
    #[error("{0}")]
    NotFoundWith(String),
    /// The resource already exists, or is already in the requested state.
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but cannot be processed (bad name, wrong property type, ...).
    #[error("{0}")]
    Unprocessable(String),
    /// The request body could not be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than `PORTCULLIS_MAX_BODY`.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A write whose body is not declared `application/json` (a cross-site form or `text/plain`
    /// post would otherwise be read as JSON).
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body did not arrive within `PORTCULLIS_BODY_TIMEOUT`.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// The upstream database could not be reached or answered badly.
    #[error("upstream unavailable: {0}")]
    BadGateway(&'static str),
    /// The upstream database did not answer in time.
    #[error("upstream timed out")]
    GatewayTimeout,
    /// The server cannot judge the request now; the client may retry after the given seconds.
    #[error("{message}")]
    ServiceUnavailable {
        /// What is unavailable.
        message: &'static str,
        /// Seconds for `Retry-After`.
        retry_after: u32,
    },
    /// The client has spent its budget of failed credential checks; its credential was not
    /// judged. The client may retry after the given seconds.
    #[error("too many failed authentication attempts from this address; retry later")]
    TooManyFailures {
        /// Seconds for `Retry-After`: until one more failure would be within budget.
        retry_after: u32,
    },
    /// An internal failure; details go to the log, never to the client.
    #[error("internal error")]
    Internal,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedAuthorization(_) => StatusCode::BAD_REQUEST,
            ApiError::MissingCredential(_)
            | ApiError::InvalidCredential
            | ApiError::NoSchemeConfigured
            | ApiError::NotAuthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::RbacForbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NotFoundWith(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut builder = HttpResponse::build(status);
        let challenge = match self {
            ApiError::MalformedAuthorization(_) => Some(CHALLENGE_INVALID_REQUEST),
            ApiError::MissingCredential(_) | ApiError::NotAuthenticated(_) => {
                Some(CHALLENGE_MISSING)
            }
            ApiError::InvalidCredential | ApiError::NoSchemeConfigured => {
                Some(CHALLENGE_INVALID_TOKEN)
            }
            ApiError::Forbidden { .. }
            | ApiError::RbacForbidden(_)
            | ApiError::NotFound
            | ApiError::NotFoundWith(_)
            | ApiError::Conflict(_)
            | ApiError::Unprocessable(_)
            | ApiError::BadRequest(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType
            | ApiError::RequestTimeout
            | ApiError::BadGateway(_)
            | ApiError::GatewayTimeout
            | ApiError::ServiceUnavailable { .. }
            | ApiError::TooManyFailures { .. }
            | ApiError::Internal => None,
        };
        if let Some(challenge) = challenge {
            builder.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        if let ApiError::ServiceUnavailable { retry_after, .. }
        | ApiError::TooManyFailures { retry_after } = self
        {
            builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        // Weaviate's shapes: `{"code","message"}` for authentication and gateway errors,
        // `{"error":[{"message"}]}` for handler errors such as 403 and 422.
        let body = match self {
            ApiError::Forbidden { .. }
            | ApiError::RbacForbidden(_)
            | ApiError::NotFound
            | ApiError::NotFoundWith(_)
            | ApiError::Conflict(_)
            | ApiError::Unprocessable(_)
            | ApiError::BadRequest(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType
            | ApiError::RequestTimeout
            | ApiError::Internal => {
                json!({ "error": [{ "message": self.to_string() }] })
            }
            ApiError::BadGateway(_)
            | ApiError::GatewayTimeout
            | ApiError::ServiceUnavailable { .. }
            | ApiError::TooManyFailures { .. }
            | ApiError::MalformedAuthorization(_)
            | ApiError::MissingCredential(_)
            | ApiError::InvalidCredential
            | ApiError::NoSchemeConfigured
            | ApiError::NotAuthenticated(_) => {
                json!({ "code": status.as_u16(), "message": self.to_string() })
            }
        };
        builder.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(err: &ApiError) -> serde_json::Value {
        let bytes = err
            .error_response()
            .into_body()
            .try_into_bytes()
            .expect("sized body");
        serde_json::from_slice(&bytes).expect("json body")
    }

    #[test]
    fn invalid_credential_is_generic_with_invalid_token_challenge() {
        let resp = ApiError::InvalidCredential.error_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE_INVALID_TOKEN
        );
        assert_eq!(
            body_of(&ApiError::InvalidCredential),
            json!({"code": 401, "message": "unauthorized: invalid credential"})
        );
    }

    #[test]
    fn forbidden_uses_weaviate_error_shape() {
        let err = ApiError::Forbidden {
            user: "reader".into(),
            verb: "write",
            path: "/v1/objects".into(),
        };
        assert_eq!(err.error_response().status(), 403);
        assert_eq!(
            body_of(&err),
            json!({"error": [{"message": "forbidden: user 'reader' has insufficient permissions to write /v1/objects"}]})
        );
    }

    #[test]
    fn malformed_header_is_400_invalid_request() {
        let resp = ApiError::MalformedAuthorization("two Authorization headers").error_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE_INVALID_REQUEST
        );
        assert_eq!(
            body_of(&ApiError::MalformedAuthorization(
                "two Authorization headers"
            )),
            json!({"code": 400, "message": "invalid_request: two Authorization headers"})
        );
    }

    #[test]
    fn too_many_failures_is_429_with_retry_after_and_no_challenge() {
        let err = ApiError::TooManyFailures { retry_after: 7 };
        let resp = err.error_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "7");
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body_of(&err),
            json!({"code": 429, "message": "too many failed authentication attempts from this address; retry later"})
        );
    }
}
