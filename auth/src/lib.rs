//! Portcullis authentication and authorization: who a caller is, and what they may do.
//!
//! This crate knows actix actors but not actix-web, and it never names an HTTP status code:
//! it answers with a [`Principal`] or a [`Reason`], and the server maps those to responses.

pub mod authz;
pub mod db_key;
mod digest_map;
pub mod key_registry;
pub mod oidc;
pub mod outcome;
pub mod principal;
pub mod user_store;

pub use authz::{Authorizer, Verb};
pub use key_registry::{
    digest, valid_user_name, KeyDigest, KeyRegistry, KeyRegistryHandle, UserError, UserInfo,
};
pub use oidc::OidcHandle;
pub use outcome::{AuthMethod, Reason};
pub use principal::{Principal, PrincipalKind};
pub use user_store::{StoreError, UserStore};
