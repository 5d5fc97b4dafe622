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
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        match self {
            AuthzError::NotFoundEmpty => builder.finish(),
            AuthzError::Validation { code, message } => {
                builder.json(json!({ "code": code, "message": message }))
            }
            _ => builder.json(json!({ "error": [{ "message": self.to_string() }] })),
        }
    }
}
