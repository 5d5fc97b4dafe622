//! OpenID Connect bearer tokens: the JwksRefresher actor that owns the issuer's keys, and the
//! verifier that judges tokens on the caller's thread against the keys it publishes.
//!
//! Start it with [`start`]; the returned [`OidcHandle`] authenticates tokens. The
//! [`crate::Gatekeeper`] routes a bearer token here when [`is_jwt_shaped`] says so
//! (`docs/architecture.md`, "One request"). Every refusal is a [`crate::Denied`] with a
//! [`crate::Reason`]; this module never names an HTTP status.

use std::time::{SystemTime, UNIX_EPOCH};

mod alg;
mod cache;
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod memo;
mod refresher;
mod slot;
mod stats;
mod token;
mod verifier;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use alg::Alg;
pub use cache::DEFAULT_CAPACITY as DEFAULT_TOKEN_CACHE_CAPACITY;
pub use refresher::JwksRefresher;
pub use slot::OidcSlot;
pub use stats::{FetchResult, FetchTrigger, OidcStats};
pub(crate) use token::{count_dots, routed_header_of_two_dots};
pub use token::{is_jwt_shaped, MAX_TOKEN_BYTES};
pub use verifier::{start, start_with_capacity, CacheLookup, OidcHandle, UnknownKid, Unverified};

/// Seconds since the epoch, with fractions: the clock token claims and cache entries are
/// judged by (the verifier, the refresher's purge and the test kit read it).
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why OIDC could not start. Only local problems: the issuer is never contacted at start.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// `AUTHENTICATION_OIDC_CERTIFICATE` could not be parsed as PEM certificates.
    #[error("AUTHENTICATION_OIDC_CERTIFICATE is not a usable PEM certificate: {0}")]
    Certificate(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client for the issuer could not be built: {0}")]
    Client(String),
}
