//! Hostile tokens: rows 1-30 of `docs/hostile-inputs.md`, one test per row (`row_NN_*`), each
//! a table of cases, in one test binary with a module per topic. Every case asserts the
//! status, the body and challenge, the outcome counted in `portcullis_auth_requests_total`
//! (one request, the expected reasons), and, where the row says "no fetch", that the issuer
//! saw no request at all. The engine is `portcullis_tests::hostile`.
//!
//! The server runs with OIDC and a static API key (so a credential that is not JWT-shaped goes
//! the API-key path, as the design routes it), a 1 h refresh interval (no background fetch
//! during a case) and a 1 s kid-miss cooldown. Rows whose cases must not fetch first wait out
//! the cooldown and end with a control: a random `kid` does trigger a fetch, so "no fetch" was
//! not just the cooldown talking.
//!
//! Where `docs/oidc.md` fixes the reason (expired, not_yet_valid, bad_signature, unknown_kid,
//! bad_issuer, bad_audience, disallowed_alg, missing_claim; `malformed_token` for tokens that
//! are not acceptable JWTs) a case expects exactly it; where a row admits more than one
//! reading, the case lists the readings it accepts.

mod claims;
mod encoding;
mod header;
mod keys;
