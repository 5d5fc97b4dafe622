//! Portcullis' own handlers: health, meta and own-info ([`meta`]), the database-users API
//! ([`users`]) and the roles API ([`authz`]). The document store's handlers live in `store/`, the proxy in `proxy.rs`.

pub mod authz;
pub mod meta;
pub mod users;
