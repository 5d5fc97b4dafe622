//! The JWS and claims parser (`auth/src/oidc/token.rs`): everything the verifier checks before
//! it touches a key.
//!
//! Input: a first byte choosing the claim rules and the mode, then either the token itself
//! (raw mode) or a header and a payload in JSON and signature bytes, separated by `\n`, which
//! the target encodes (structured mode: libFuzzer then mutates the JSON, not its base64).
//!
//! What must hold for an accepted token, checked with an independent decode: at most
//! `MAX_TOKEN_BYTES`; three segments, strict base64url; JSON objects; the header's `alg` and
//! `kid`, no `crit` or `enc`; `iss`, the audience, an unexpired integer `exp`; a non-empty user
//! name and groups without control characters, the groups taken from the token's; and the
//! router's `is_jwt_shaped` says it is a JWT. The same claims written canonically parse to the
//! same result. A refusal is one of the key-free reasons.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_auth::oidc::fuzzing::{parse_token, ParsedToken, Rules};
use portcullis_auth::oidc::{is_jwt_shaped, MAX_TOKEN_BYTES};
use portcullis_auth::Reason;
use serde_json::{json, Map, Value};

/// The issuer every rule set names.
pub const ISSUER: &str = "https://issuer.example";
/// The client id, when the audience is checked.
pub const CLIENT_ID: &str = "portcullis";
/// The clock the claims are judged at.
pub const NOW: f64 = 1_700_000_000.0;
const LEEWAY: f64 = 60.0;

/// The rules selected by the first byte's low three bits.
pub fn rules(selector: u8) -> Rules<'static> {
    Rules {
        issuer: ISSUER,
        audience: (selector & 1 == 0).then_some(CLIENT_ID),
        username_claim: if selector & 2 == 0 { "sub" } else { "email" },
        groups_claim: (selector & 4 == 0).then_some("groups"),
        leeway: LEEWAY,
    }
}

/// Builds the token of a structured input: `header \n payload \n signature`.
pub fn encode(rest: &[u8]) -> String {
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let signature = parts.next().unwrap_or_default();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn object(segment: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|_| panic!("an accepted segment is base64url"));
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => map,
        _ => panic!("an accepted segment is a JSON object"),
    }
}

fn check_accepted(token: &str, rules: &Rules<'_>, parsed: &ParsedToken) {
    assert!(
        token.len() <= MAX_TOKEN_BYTES,
        "accepted an oversized token"
    );
    assert!(
        is_jwt_shaped(token),
        "accepted a token the router does not take for a JWT"
    );
    let segments: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = segments[..] else {
        panic!("accepted a token without exactly three segments");
    };
    assert_eq!(signature, parsed.signature);
    assert!(signature
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    let header = object(header);
    assert_eq!(header.get("alg"), Some(&json!(parsed.alg.as_str())));
    assert_eq!(
        header.get("kid").and_then(Value::as_str),
        parsed.kid.as_deref()
    );
    assert!(!header.contains_key("crit") && !header.contains_key("enc"));

    let claims = object(payload);
    assert_eq!(claims.get("iss"), Some(&json!(rules.issuer)));
    let exp = claims.get("exp").and_then(Value::as_i64);
    assert_eq!(exp.map(|e| e as f64), Some(parsed.exp));
    assert!(parsed.exp + rules.leeway > NOW, "accepted an expired token");
    if let Some(audience) = rules.audience {
        let aud = claims.get("aud");
        let contains = aud == Some(&json!(audience))
            || aud
                .and_then(Value::as_array)
                .is_some_and(|a| a.contains(&json!(audience)));
        assert!(contains, "accepted a token for another audience");
    }
    assert_eq!(
        claims.get(rules.username_claim).and_then(Value::as_str),
        Some(parsed.username.as_str())
    );
    assert!(!parsed.username.is_empty() && !parsed.username.chars().any(is_unsafe));
    let offered: Vec<&str> = match rules.groups_claim.and_then(|c| claims.get(c)) {
        Some(Value::String(group)) => vec![group.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for group in &parsed.groups {
        assert!(!group.is_empty() && !group.chars().any(is_unsafe));
        assert!(
            offered.contains(&group.as_str()),
            "a group the token does not hold"
        );
    }

    // The same claims, written canonically, read the same.
    let mut header = Map::new();
    header.insert("alg".into(), json!(parsed.alg.as_str()));
    if let Some(kid) = &parsed.kid {
        header.insert("kid".into(), json!(kid));
    }
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(rules.issuer));
    claims.insert("exp".into(), json!(parsed.exp as i64));
    if let Some(audience) = rules.audience {
        claims.insert("aud".into(), json!(audience));
    }
    claims.insert(rules.username_claim.into(), json!(parsed.username));
    if let Some(groups_claim) = rules.groups_claim {
        claims.insert(groups_claim.into(), json!(parsed.groups));
    }
    let canonical = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()),
        parsed.signature
    );
    if canonical.len() <= MAX_TOKEN_BYTES {
        assert_eq!(
            parse_token(&canonical, rules, NOW).as_ref(),
            Ok(parsed),
            "the canonical form reads differently"
        );
    }
}

/// The target.
pub fn check(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let token = if selector & 8 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    } else {
        encode(rest)
    };
    let rules = rules(selector);
    match parse_token(&token, &rules, NOW) {
        Ok(parsed) => check_accepted(&token, &rules, &parsed),
        Err(reason) => assert!(
            matches!(
                reason,
                Reason::MalformedToken
                    | Reason::DisallowedAlg
                    | Reason::BadIssuer
                    | Reason::MissingClaim
                    | Reason::Expired
                    | Reason::NotYetValid
                    | Reason::BadAudience
            ),
            "a key-free check refused with {reason:?}"
        ),
    }
}
