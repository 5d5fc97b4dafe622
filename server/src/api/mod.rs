//! Portcullis' own handlers: health, meta and own-info ([`meta`]) and the database-users API
//! ([`users`]). The document store's handlers live in `store/`, the proxy in `proxy.rs`.

pub mod meta;
pub mod users;
