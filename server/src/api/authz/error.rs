//! The roles API's answers to refused requests, in Weaviate's shapes: `{"error":[{"message"}]}`
//! for its handlers' errors, `{"code","message"}` for what its request validation refuses,
//! and an empty body where Weaviate sends none.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// A refused `/v1/authz` request.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// 400 with a message.
    #[error("{0}")]
    BadRequest(String),
    /// 403 with a message.
    #[error("{0}")]
    Forbidden(String),
    /// 404 with an empty body.
    #[error("not found")]
    NotFoundEmpty,
    /// 404 with a message.
    #[error("{0}")]
    NotFound(String),
    /// 409 with a message.
    #[error("{0}")]
    Conflict(String),
    /// 422 with a message in the error-list shape.
    #[error("{0}")]
    Unprocessable(String),
    /// 422 from request validation (a bad enum value, a body that is not the schema's).
    #[error("{message}")]
    Validation {
        /// Weaviate's validation code (601 required, 602 parse, 606 enum).
        code: u16,
        /// What is wrong.
        message: String,
    },
    /// 500 with a message that names no internal detail.
    #[error("{0}")]
    Internal(String),
    /// 503 with `Retry-After: 1`: the user store cannot be reached, or the roles were not
    /// read from it yet.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl ResponseError for AuthzError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthzError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthzError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthzError::NotFoundEmpty | AuthzError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthzError::Conflict(_) => StatusCode::CONFLICT,
            AuthzError::Unprocessable(_) | AuthzError::Validation { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AuthzError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AuthzError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        if let AuthzError::Unavailable(_) = self {
            builder.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        match self {
            AuthzError::NotFoundEmpty => builder.finish(),
            AuthzError::Validation { code, message } => {
                builder.json(json!({ "code": code, "message": message }))
            }
            _ => builder.json(json!({ "error": [{ "message": self.to_string() }] })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(err: &AuthzError) -> (u16, Vec<u8>) {
        let response = err.error_response();
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .try_into_bytes()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        (status, bytes)
    }

    #[test]
    fn errors_take_weaviates_shapes() {
        assert_eq!(body(&AuthzError::NotFoundEmpty), (404, Vec::new()));
        let (status, bytes) = body(&AuthzError::Conflict(
            "role with name x already exists".into(),
        ));
        assert_eq!(status, 409);
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            value,
            json!({"error": [{"message": "role with name x already exists"}]})
        );
        let (status, bytes) = body(&AuthzError::Validation {
            code: 606,
            message: "bad".into(),
        });
        assert_eq!(status, 422);
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value, json!({"code": 606, "message": "bad"}));
        for (err, status) in [
            (AuthzError::BadRequest(String::new()), 400),
            (AuthzError::Forbidden(String::new()), 403),
            (AuthzError::NotFound(String::new()), 404),
            (AuthzError::Unprocessable(String::new()), 422),
            (AuthzError::Internal(String::new()), 500),
        ] {
            assert_eq!(err.status_code().as_u16(), status, "{err:?}");
        }
    }
}
