//! JWKS parsing (`auth/src/oidc/keys.rs`, `KeySet::from_jwks`), as the refresher loads the
//! issuer's keys.
//!
//! Input: a first byte choosing the advertised algorithms (a bit per algorithm of
//! `Alg::ALL`, the low byte; RS256 always on when the byte is 0), then the document.
//!
//! What must hold: every loaded key is bound to an advertised algorithm; at most one key per
//! (`kid`, algorithm); no more keys than entries, nor than 256; loading the same document
//! twice gives the same keys and uids (a refetch must not look like a rotation); every loaded
//! key with a `kid` is found by it under its algorithm and not under another one's; a `kid`
//! the set does not know is `UnknownKid`; a lookup without `kid` offers only keys of the
//! token's algorithm, at most 8.

use std::collections::HashSet;

use portcullis_auth::oidc::fuzzing::{Found, Jwks};
use portcullis_auth::oidc::Alg;
use serde_json::Value;

/// The algorithms a selector byte advertises.
pub fn algorithms(selector: u8) -> Vec<Alg> {
    if selector == 0 {
        return vec![Alg::Rs256];
    }
    // Bits 0-7 pick among the first eight; the two left over ride on bits 6 and 7 as well, so
    // EdDSA and ES512 are reachable.
    let mut algs: Vec<Alg> = Alg::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| selector & (1 << (i % 8)) != 0)
        .map(|(_, alg)| *alg)
        .collect();
    algs.dedup();
    algs
}

/// The target.
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let algs = algorithms(selector);
    let Ok(jwks) = Jwks::parse(body, &algs) else {
        // Refused as a whole: then it is not a JSON object with a `keys` array.
        let doc: Option<Value> = serde_json::from_slice(body).ok();
        assert!(
            doc.as_ref()
                .and_then(|d| d.get("keys"))
                .and_then(Value::as_array)
                .is_none(),
            "a document with a keys array was refused whole"
        );
        return;
    };
    let entries = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|d| d.get("keys").and_then(Value::as_array).map(Vec::len))
        .unwrap_or_else(|| panic!("an accepted JWKS has a keys array"));
    let keys = jwks.keys();
    assert!(keys.len() <= entries.min(256), "more keys than entries");

    let again = Jwks::parse(body, &algs).unwrap_or_else(|_| panic!("parses twice"));
    assert_eq!(again.keys(), keys, "the same document loaded differently");

    let mut slots = HashSet::new();
    for key in &keys {
        assert!(
            algs.contains(&key.alg),
            "a key bound to an algorithm not advertised"
        );
        assert!(
            slots.insert((key.kid.clone(), key.alg)),
            "two keys for one kid and alg"
        );
        assert!(jwks.has_uid(key.uid));
        let Some(kid) = &key.kid else { continue };
        assert!(jwks.knows_kid(kid));
        assert_eq!(jwks.find(Some(kid), key.alg), Found::Keys(vec![key.uid]));
        for other in Alg::ALL {
            if other != key.alg && !slots_hold(&keys, kid, other) {
                // Ambiguous when two different keys claimed (kid, other) and both were dropped.
                let found = jwks.find(Some(kid), other);
                assert!(
                    matches!(found, Found::WrongAlg | Found::Ambiguous),
                    "{found:?}"
                );
            }
        }
    }
    let unknown = "fuzz-kid-that-no-entry-has\u{1}";
    if !jwks.knows_kid(unknown) {
        assert_eq!(jwks.find(Some(unknown), Alg::Rs256), Found::UnknownKid);
    }
    for alg in Alg::ALL {
        match jwks.find(None, alg) {
            Found::Keys(uids) => {
                assert!(!uids.is_empty() && uids.len() <= 8);
                for uid in uids {
                    let key = keys.iter().find(|k| k.uid == uid);
                    assert_eq!(key.map(|k| k.alg), Some(alg), "a candidate of another alg");
                }
            }
            Found::NoKey => assert!(keys.iter().all(|k| k.alg != alg)),
            other => panic!("a lookup without kid answered {other:?}"),
        }
    }
}

/// Whether a loaded key has this `kid` and algorithm.
fn slots_hold(keys: &[portcullis_auth::oidc::fuzzing::LoadedKey], kid: &str, alg: Alg) -> bool {
    keys.iter()
        .any(|k| k.kid.as_deref() == Some(kid) && k.alg == alg)
}
