//! `Caller`: the extractor through which handlers behind the gate read the principal the gate
//! put in the request's extensions.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use portcullis_auth::Principal;

use crate::error::ApiError;

/// The authenticated caller, for handlers behind the gate.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let principal = req.extensions().get::<Principal>().cloned();
        std::future::ready(principal.map(Caller).ok_or_else(|| {
            tracing::error!(path = ?req.path(), "handler reached without a principal");
            ApiError::Internal
        }))
    }
}
