//! The fuzz targets' entry points into the token and JWKS parsers, which are otherwise private
//! to this module. Compiled only with the `fuzzing` feature (`fuzz/`); not a stable API.

use std::time::Instant;

use super::alg::Alg;
use super::keys::{KeySet, Lookup};
use super::token::{self, ClaimRules};
use crate::Reason;

/// What the parsers made of a token, before any key is looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedToken {
    /// The header's algorithm.
    pub alg: Alg,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The user name claim.
    pub username: String,
    /// The groups kept.
    pub groups: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub exp: f64,
    /// The signature segment, still encoded.
    pub signature: String,
}

/// The claim rules a token is judged by (the settings' fields, spelled out).
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// The configured issuer.
    pub issuer: &'a str,
    /// The client id the audience must contain; `None` skips the check.
    pub audience: Option<&'a str>,
    /// The claim read as the user name.
    pub username_claim: &'a str,
    /// The claim read as the groups.
    pub groups_claim: Option<&'a str>,
    /// Clock skew allowed, in seconds.
    pub leeway: f64,
}

/// The verifier's checks that need no key, in its order: split, header, claims at `now`.
pub fn parse_token(token: &str, rules: &Rules<'_>, now: f64) -> Result<ParsedToken, Reason> {
    let rules = ClaimRules {
        issuer: rules.issuer.to_owned(),
        audience: rules.audience.map(str::to_owned),
        username_claim: rules.username_claim.to_owned(),
        groups_claim: rules.groups_claim.map(str::to_owned),
        leeway: rules.leeway,
    };
    let segments = token::split(token)?;
    let header = token::header(segments.header);
    // The verification uses the router's reading of the header when the router read it
    // (`Gatekeeper::judge_now` with API keys on): the two must agree on every token.
    if let Some(routed) = token::routed_header(token) {
        assert_eq!(routed, header, "the router read the header otherwise");
    }
    let header = header?;
    let claims = token::claims(segments.payload, &rules, now)?;
    Ok(ParsedToken {
        alg: header.alg,
        kid: header.kid,
        username: claims.username,
        groups: claims.groups,
        exp: claims.exp,
        signature: segments.signature.to_owned(),
    })
}

/// One key a JWKS document loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedKey {
    /// Its `kid`, if any.
    pub kid: Option<String>,
    /// The one algorithm it verifies.
    pub alg: Alg,
    /// Its stable id.
    pub uid: u64,
}

/// A parsed JWKS document.
pub struct Jwks {
    set: KeySet,
    /// How many entries were not loaded.
    pub ignored: usize,
}

/// What [`Jwks::find`] found for a token's `kid` and algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The uids of the candidate keys.
    Keys(Vec<u64>),
    /// The `kid` is known, under another algorithm.
    WrongAlg,
    /// The `kid` and algorithm name more than one key.
    Ambiguous,
    /// Unknown `kid`.
    UnknownKid,
    /// No `kid`, and no key of the algorithm.
    NoKey,
}

impl Jwks {
    /// Parses a JWKS as the refresher does, keeping keys whose algorithm is in `algorithms`.
    pub fn parse(body: &[u8], algorithms: &[Alg]) -> Result<Jwks, &'static str> {
        let (set, ignored) = KeySet::from_jwks(body, algorithms, Instant::now())?;
        Ok(Jwks {
            set,
            ignored: ignored.len(),
        })
    }

    /// The keys loaded, in the set's order.
    pub fn keys(&self) -> Vec<LoadedKey> {
        self.set
            .all_keys()
            .map(|(kid, alg, uid)| LoadedKey {
                kid: kid.map(str::to_owned),
                alg,
                uid,
            })
            .collect()
    }

    /// The lookup a token with this `kid` and algorithm gets.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Found {
        match self.set.find(kid, alg) {
            Lookup::Found(keys) => Found::Keys(keys.iter().map(|k| k.uid()).collect()),
            Lookup::WrongAlg => Found::WrongAlg,
            Lookup::Ambiguous => Found::Ambiguous,
            Lookup::UnknownKid => Found::UnknownKid,
            Lookup::NoKey => Found::NoKey,
        }
    }

    /// Whether the set knows this `kid`.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.set.knows_kid(kid)
    }

    /// Whether the set holds a key with this uid.
    pub fn has_uid(&self, uid: u64) -> bool {
        self.set.has_uid(uid)
    }
}
