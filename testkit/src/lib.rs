//! What the tests of every Portcullis crate share: the test signing keys (the PEM files in
//! `tests/fixtures/oidc/`), token minting byte for byte, a fault-injecting OpenID issuer on
//! 127.0.0.1:0, and polling with a deadline.
//!
//! It depends on no Portcullis crate, so `portcullis-auth` can use it for its unit tests and
//! `portcullis-tests` against the built binary.

mod issuer;
mod key;
mod token;
mod wait;

pub use issuer::{
    huge_jwks, FaultIssuer, JwksBody, Mode, Received, ATTACKER_PREFIX, CLIENT_ID, DEFAULT_ALGS,
    DISCOVERY_PATH, GROUPS_CLAIM, HUGE_BODY_BYTES, JWKS_PATH, USERNAME_CLAIM,
};
pub use key::TestKey;
pub use token::{b64, decode_unverified, hmac, jws, now, random_id, signed_segments};
pub use wait::{eventually, poll, poll_every};
