//! Tests of token rules, key loading, the verifier and the JwksRefresher against a local
//! issuer (`portcullis_testkit::FaultIssuer`). "Row N" is row N of `docs/hostile-inputs.md`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::alg::Alg;
use super::cache::TokenCache;
use super::keys::{is_b64url, Ignored, IgnoredKeys, KeySet, Lookup};
use super::testkit::*;
use super::token::{self, ClaimRules};
use super::{is_jwt_shaped, start, start_with_capacity, FetchResult, FetchTrigger, OidcHandle};
use crate::{Principal, PrincipalKind, Reason};

const ISS: &str = "https://issuer.test";

// --- claims (rows 11-23) ---

fn rules(audience: Option<&str>) -> ClaimRules {
    ClaimRules {
        issuer: ISS.to_owned(),
        audience: audience.map(str::to_owned),
        username_claim: "email".to_owned(),
        groups_claim: Some("groups".to_owned()),
        leeway: 60.0,
    }
}

/// Valid claims for [`ISS`] with `changes` applied (a `null` change removes the claim).
fn with(changes: Value) -> String {
    let mut claims = claims(ISS);
    if let (Some(map), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    claims.to_string()
}

/// A claim check's outcome: the user name and groups, or the reason.
type Verdict = Result<(String, Vec<String>), Reason>;

fn check(claims: &str, rules: &ClaimRules) -> Verdict {
    token::claims(&b64(claims.as_bytes()), rules, now() as f64).map(|c| (c.username, c.groups))
}

#[test]
fn claim_rules_table() {
    let now = now();
    let ok = Ok((
        "alice@example.com".to_owned(),
        vec!["readers".to_owned(), "writers".to_owned()],
    ));
    let table: Vec<(&str, String, Verdict)> = vec![
        ("valid", with(json!({})), ok.clone()),
        ("expired beyond leeway", with(json!({"exp": now - 61})), Err(Reason::Expired)),
        ("expired at exactly the leeway", with(json!({"exp": now - 60})), Err(Reason::Expired)),
        ("expired within leeway", with(json!({"exp": now - 59})), ok.clone()),
        ("exp negative", with(json!({"exp": -1})), Err(Reason::MissingClaim)),
        ("exp missing", with(json!({"exp": null})), Err(Reason::MissingClaim)),
        ("exp as string", with(json!({"exp": (now + 100).to_string()})), Err(Reason::MissingClaim)),
        ("exp as bool", with(json!({"exp": true})), Err(Reason::MissingClaim)),
        ("exp as array", with(json!({"exp": [now + 100]})), Err(Reason::MissingClaim)),
        ("exp fractional", with(json!({"exp": now as f64 + 100.5})), Err(Reason::MissingClaim)),
        ("exp integral float", with(json!({"exp": (now + 100) as f64})), Err(Reason::MissingClaim)),
        ("exp above i64", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":9223372036854775808}"#.to_owned(), Err(Reason::MissingClaim)),
        ("exp at i64 max", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":9223372036854775807}"#.to_owned(), Ok(("a@b".to_owned(), vec![]))),
        ("exp 1e300", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":1e300}"#.to_owned(), Err(Reason::MissingClaim)),
        ("exp above u64", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":184467440737095516150}"#.to_owned(), Err(Reason::MissingClaim)),
        ("exp u64 max", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":18446744073709551615}"#.to_owned(), Err(Reason::MissingClaim)),
        ("exp -1e300", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":-1e300}"#.to_owned(), Err(Reason::MissingClaim)),
        ("nbf beyond leeway", with(json!({"nbf": now + 61})), Err(Reason::NotYetValid)),
        ("nbf within leeway", with(json!({"nbf": now + 59})), ok.clone()),
        ("nbf negative", with(json!({"nbf": -5})), Err(Reason::MissingClaim)),
        ("nbf zero", with(json!({"nbf": 0})), ok.clone()),
        ("iat fractional", with(json!({"iat": now as f64 - 0.5})), Err(Reason::MissingClaim)),
        ("nbf as string", with(json!({"nbf": "yesterday"})), Err(Reason::MissingClaim)),
        ("iat beyond leeway", with(json!({"iat": now + 61})), Err(Reason::NotYetValid)),
        ("iat 1e300", r#"{"iss":"https://issuer.test","aud":"portcullis-test","email":"a@b","exp":99999999999,"iat":1e300}"#.to_owned(), Err(Reason::MissingClaim)),
        ("iss trailing slash", with(json!({"iss": "https://issuer.test/"})), Err(Reason::BadIssuer)),
        ("iss http", with(json!({"iss": "http://issuer.test"})), Err(Reason::BadIssuer)),
        ("iss case", with(json!({"iss": "https://ISSUER.test"})), Err(Reason::BadIssuer)),
        ("iss number", with(json!({"iss": 5})), Err(Reason::BadIssuer)),
        ("iss missing", with(json!({"iss": null})), Err(Reason::BadIssuer)),
        ("aud other", with(json!({"aud": "other"})), Err(Reason::BadAudience)),
        ("aud missing", with(json!({"aud": null})), Err(Reason::BadAudience)),
        ("aud array with ours", with(json!({"aud": ["other", CLIENT_ID]})), ok.clone()),
        ("aud empty array", with(json!({"aud": []})), Err(Reason::BadAudience)),
        ("aud number", with(json!({"aud": 5})), Err(Reason::BadAudience)),
        ("aud object", with(json!({"aud": {"a": CLIENT_ID}})), Err(Reason::BadAudience)),
        ("aud array with a number", with(json!({"aud": [CLIENT_ID, 5]})), Err(Reason::BadAudience)),
        ("username missing", with(json!({"email": null})), Err(Reason::MissingClaim)),
        ("username number", with(json!({"email": 5})), Err(Reason::MissingClaim)),
        ("username array", with(json!({"email": ["a"]})), Err(Reason::MissingClaim)),
        ("username empty", with(json!({"email": ""})), Err(Reason::MissingClaim)),
        ("username with bidi override", with(json!({"email": "ad\u{202E}nim"})), Err(Reason::MissingClaim)),
        ("username with NUL", with(json!({"email": "a\u{0}b"})), Err(Reason::MissingClaim)),
        ("username with newline", with(json!({"email": "alice\n"})), Err(Reason::MissingClaim)),
        ("username with zero-width space", with(json!({"email": "ad\u{200B}min"})), Err(Reason::MissingClaim)),
        ("cyrillic username is byte-exact", with(json!({"email": "\u{0430}dmin"})), Ok(("\u{0430}dmin".to_owned(), vec!["readers".to_owned(), "writers".to_owned()]))),
        ("groups as one string", with(json!({"groups": "admins"})), Ok(("alice@example.com".to_owned(), vec!["admins".to_owned()]))),
        ("groups mixed array", with(json!({"groups": ["a", 1, null, {"x": 1}, "b"]})), Ok(("alice@example.com".to_owned(), vec!["a".to_owned(), "b".to_owned()]))),
        ("groups number", with(json!({"groups": 5})), Ok(("alice@example.com".to_owned(), vec![]))),
        ("groups missing", with(json!({"groups": null})), Ok(("alice@example.com".to_owned(), vec![]))),
        ("groups with bidi dropped", with(json!({"groups": ["ok", "ad\u{202E}"]})), Ok(("alice@example.com".to_owned(), vec!["ok".to_owned()]))),
    ];
    let rules = rules(Some(CLIENT_ID));
    for (name, claims, expected) in table {
        assert_eq!(check(&claims, &rules), expected, "{name}");
    }
}

#[test]
fn skipping_the_client_id_check_ignores_aud() {
    let rules = rules(None);
    for aud in [json!(null), json!(5), json!("other"), json!([])] {
        assert!(check(&with(json!({"aud": aud})), &rules).is_ok(), "{aud}");
    }
}

#[test]
fn claims_are_checked_in_order_issuer_first() {
    // Wrong issuer and expired: the issuer decides (route by iss before anything else).
    let claims = with(json!({"iss": "https://other.test", "exp": 1}));
    assert_eq!(
        check(&claims, &rules(Some(CLIENT_ID))),
        Err(Reason::BadIssuer)
    );
}

// --- header and shape (rows 1, 3, 8-10, 24-28) ---

#[test]
fn header_rules_table() {
    let h = |v: Value| b64(v.to_string().as_bytes());
    type Expected<'a> = Result<(Alg, Option<&'a str>), Reason>;
    let table: Vec<(&str, String, Expected<'_>)> = vec![
        (
            "plain",
            h(json!({"alg": "RS256", "kid": "k"})),
            Ok((Alg::Rs256, Some("k"))),
        ),
        ("no kid", h(json!({"alg": "ES256"})), Ok((Alg::Es256, None))),
        (
            "alg none",
            h(json!({"alg": "none"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg None",
            h(json!({"alg": "None"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg nOnE",
            h(json!({"alg": "nOnE"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg HS256",
            h(json!({"alg": "HS256"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg ES256K",
            h(json!({"alg": "ES256K"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg missing",
            h(json!({"kid": "k"})),
            Err(Reason::DisallowedAlg),
        ),
        (
            "alg number",
            h(json!({"alg": 256})),
            Err(Reason::MalformedToken),
        ),
        (
            "crit",
            h(json!({"alg": "RS256", "crit": ["exp"]})),
            Err(Reason::MalformedToken),
        ),
        (
            "crit empty",
            h(json!({"alg": "RS256", "crit": []})),
            Err(Reason::MalformedToken),
        ),
        (
            "cty JWT",
            h(json!({"alg": "RS256", "cty": "JWT"})),
            Err(Reason::MalformedToken),
        ),
        (
            "cty jwt",
            h(json!({"alg": "RS256", "cty": "jwt"})),
            Err(Reason::MalformedToken),
        ),
        (
            "JWE enc",
            h(json!({"alg": "RS256", "enc": "A256GCM"})),
            Err(Reason::MalformedToken),
        ),
        (
            "typ JWT",
            h(json!({"alg": "RS256", "typ": "JWT"})),
            Ok((Alg::Rs256, None)),
        ),
        (
            "typ at+jwt",
            h(json!({"alg": "RS256", "typ": "at+jwt"})),
            Ok((Alg::Rs256, None)),
        ),
        (
            "typ AT+JWT",
            h(json!({"alg": "RS256", "typ": "AT+JWT"})),
            Ok((Alg::Rs256, None)),
        ),
        (
            "typ application/at+jwt",
            h(json!({"alg": "RS256", "typ": "application/at+jwt"})),
            Ok((Alg::Rs256, None)),
        ),
        (
            "typ id_token",
            h(json!({"alg": "RS256", "typ": "id_token+jwt"})),
            Err(Reason::MalformedToken),
        ),
        (
            "typ JOSE+JSON",
            h(json!({"alg": "RS256", "typ": "JOSE+JSON"})),
            Err(Reason::MalformedToken),
        ),
        (
            "typ number",
            h(json!({"alg": "RS256", "typ": 1})),
            Err(Reason::MalformedToken),
        ),
        (
            "kid 300 bytes",
            h(json!({"alg": "RS256", "kid": "k".repeat(300)})),
            Err(Reason::MalformedToken),
        ),
        (
            "kid number",
            h(json!({"alg": "RS256", "kid": 7})),
            Err(Reason::MalformedToken),
        ),
        (
            "jku and friends ignored",
            h(
                json!({"alg": "RS256", "jku": "http://evil/jwks", "x5u": "http://evil/x5", "jwk": {"kty": "RSA"}, "x5c": ["AAAA"]}),
            ),
            Ok((Alg::Rs256, None)),
        ),
        (
            "duplicate alg",
            b64(br#"{"alg":"RS256","alg":"RS256"}"#),
            Err(Reason::MalformedToken),
        ),
        ("array", b64(b"[1]"), Err(Reason::MalformedToken)),
        (
            "invalid UTF-8",
            b64(b"{\"alg\":\"RS256\",\"x\":\"\xff\"}"),
            Err(Reason::MalformedToken),
        ),
        (
            "BOM",
            b64(b"\xef\xbb\xbf{\"alg\":\"RS256\"}"),
            Err(Reason::MalformedToken),
        ),
        (
            "padded base64",
            format!("{}=", h(json!({"alg": "RS256"})).trim_end_matches('=')),
            Err(Reason::MalformedToken),
        ),
        (
            "standard alphabet",
            "eyJhbGciOiJSUzI1NiJ9+/".to_owned(),
            Err(Reason::MalformedToken),
        ),
        (
            "whitespace",
            format!(" {}", h(json!({"alg": "RS256"}))),
            Err(Reason::MalformedToken),
        ),
    ];
    for (name, segment, expected) in table {
        let got = token::header(&segment).map(|h| (h.alg, h.kid));
        let expected = expected.map(|(alg, kid)| (alg, kid.map(str::to_owned)));
        // The router reads the header of a token it takes for a JWT, and the verification
        // uses that reading: it must be the header's own.
        let routed = token::routed_header(&format!("{segment}.e30.sig"));
        if expected.is_ok() {
            assert!(routed.is_some(), "{name}: not routed as a JWT");
        }
        if let Some(routed) = routed {
            assert_eq!(routed.map(|h| (h.alg, h.kid)), expected, "{name}: routed");
        }
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn payload_shape_is_checked() {
    let rules = rules(Some(CLIENT_ID));
    let deep = format!(r#"{{"x":{}}}"#, "[".repeat(10_000));
    for (name, payload) in [
        ("duplicate exp", r#"{"iss":"https://issuer.test","exp":99999999999,"exp":1,"aud":"portcullis-test","email":"a@b"}"#.to_owned()),
        ("not an object", "[]".to_owned()),
        ("deep nesting", deep),
        ("trailing garbage", format!("{} x", with(json!({})))),
    ] {
        assert_eq!(check(&payload, &rules), Err(Reason::MalformedToken), "{name}");
    }
    assert_eq!(
        token::claims("e30=", &rules, 0.0).err(),
        Some(Reason::MalformedToken),
        "padding"
    );
}

#[test]
fn unread_members_are_still_checked() {
    // Only the claims a rule reads are kept; the others must still be valid JSON, valid
    // UTF-8 and distinct.
    let rules = rules(Some(CLIENT_ID));
    let valid = with(json!({}));
    let body = valid.trim_start_matches('{');
    let many: String = (0..2000).map(|i| format!(r#""x{i}":{i},"#)).collect();
    assert!(
        check(&format!("{{{many}{body}"), &rules).is_ok(),
        "2000 members"
    );
    let nested = format!(
        r#"{{"x":{}{},"y":[1.5,-2,null,true,{{"a":"\u00e9"}}],{body}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(
        check(&nested, &rules).is_ok(),
        "unread values within the limits"
    );
    for (name, payload) in [
        (
            "duplicate unread member",
            format!(r#"{{"jti":"a","jti":"b",{body}"#),
        ),
        (
            "duplicate spelled with an escape",
            format!(r#"{{"\u0069ss":"https://issuer.test",{body}"#),
        ),
        (
            "duplicate after 2000 members",
            format!(r#"{{{many}"x7":0,{body}"#),
        ),
        ("unread member not JSON", format!(r#"{{"x":tru,{body}"#)),
        ("unread lone surrogate", format!(r#"{{"x":"\ud800",{body}"#)),
        (
            "unread number out of range",
            format!(r#"{{"x":1e400,{body}"#),
        ),
        (
            "unread 400-digit integer",
            format!(r#"{{"x":{},{body}"#, "9".repeat(400)),
        ),
        (
            "unread nesting past the limit",
            format!(r#"{{"x":{}{},{body}"#, "[".repeat(200), "]".repeat(200)),
        ),
        (
            "unread object nesting past the limit",
            format!(
                r#"{{"x":{}1{},{body}"#,
                r#"{"a":"#.repeat(200),
                "}".repeat(200)
            ),
        ),
    ] {
        assert_eq!(
            check(&payload, &rules),
            Err(Reason::MalformedToken),
            "{name}"
        );
    }
    let invalid_utf8 = [b"{\"x\":\"\xff\",".as_slice(), body.as_bytes()].concat();
    assert_eq!(
        token::claims(&b64(&invalid_utf8), &rules, now() as f64).err(),
        Some(Reason::MalformedToken),
        "invalid UTF-8 in an unread member"
    );
}

#[test]
fn a_configured_claim_may_name_a_standard_one() {
    // The user name read from `aud` (audience check skipped) and groups from the same claim.
    let mut rules = rules(None);
    rules.username_claim = "aud".to_owned();
    rules.groups_claim = Some("aud".to_owned());
    assert_eq!(
        check(&with(json!({"aud": "alice"})), &rules),
        Ok(("alice".to_owned(), vec!["alice".to_owned()]))
    );
    rules.groups_claim = None;
    rules.username_claim = "iss".to_owned();
    assert_eq!(
        check(&with(json!({})), &rules),
        Ok((ISS.to_owned(), vec![]))
    );
}

#[test]
fn the_base64url_alphabet_check_matches_its_definition() {
    for byte in 0..=u8::MAX {
        let expected = byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
        for at in [0, 170, 341] {
            let mut text = vec![b'A'; 342];
            text[at] = byte;
            // A byte over 0x7f becomes U+FFFD's three bytes, none in the alphabet.
            let text = String::from_utf8_lossy(&text).into_owned();
            assert_eq!(is_b64url(&text), expected, "{byte:#x} at {at}");
        }
    }
}

#[test]
fn split_refuses_wrong_segment_counts_sizes_and_signature_alphabets() {
    let big = format!("a.{}.c", "b".repeat(9000));
    for token in [
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        ".b.c",
        "a.b.c=",
        "a.b.c+/",
        "a.b.c d",
        big.as_str(),
    ] {
        assert_eq!(
            token::split(token).err(),
            Some(Reason::MalformedToken),
            "{token:.20}"
        );
    }
    assert!(
        token::split("a.b.").is_ok(),
        "an empty signature is judged by the key"
    );
}

#[test]
fn a_header_opening_with_json_whitespace_is_routed_as_a_jwt() {
    // Found by the `jws` fuzz target: the header parser accepts JSON that opens with
    // whitespace, so the router must send such a token to OIDC too, or a valid token would be
    // judged as an API key whenever API keys are on.
    for header in [&b" {\"alg\":\"RS256\"}"[..], b"\n\t\r {\"alg\":\"RS256\"}"] {
        let token = format!("{}.e30.sig", b64(header));
        assert!(is_jwt_shaped(&token), "{token}");
        assert!(token::header(&b64(header)).is_ok());
    }
    assert!(!is_jwt_shaped(&format!("{}.e30.sig", b64(b" [1]"))));
}

#[test]
fn jwt_shape_decides_the_route() {
    let header = b64(br#"{"alg":"RS256"}"#);
    assert!(is_jwt_shaped(&format!("{header}.e30.sig")));
    assert!(is_jwt_shaped(&format!("{header}..")));
    assert!(
        is_jwt_shaped(&format!("{header}.{}.x", "a".repeat(9000))),
        "oversized three-segment tokens go to OIDC to be refused"
    );
    for token in [
        "plain-api-key".to_owned(),
        "pk-abc.def".to_owned(),
        format!("{header}.e30"),
        format!("{header}.e30.s.t"),
        format!("{header}.e30.s.t.u"),
        format!("{}.e30.sig", b64(b"[1]")),
        format!("{}.e30.sig", b64(b"\"str\"")),
        format!("{header}=.e30.sig"),
        "a.b.c".to_owned(),
        "..".to_owned(),
    ] {
        assert!(!is_jwt_shaped(&token), "{token}");
    }
}

// --- key loading (rows 4, 29, 30) ---

fn load(keys: &[Value], accepted: &[Alg]) -> (KeySet, IgnoredKeys) {
    KeySet::from_jwks(jwks(keys).as_bytes(), accepted, Instant::now()).expect("valid JWKS")
}

fn edited(key: &TestKey, changes: Value) -> Value {
    let mut jwk = key.jwk();
    if let (Some(map), Some(changes)) = (jwk.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    jwk
}

#[test]
fn ignores_keys_that_cannot_verify_at_load() {
    let rsa = TestKey::rsa_a().with_kid("r");
    let ec = TestKey::ec_a().with_kid("e");
    let weak = TestKey::rsa_1024().with_kid("weak").jwk();
    let table = [
        (
            "use enc",
            edited(&rsa, json!({"use": "enc"})),
            Ignored::NotForSignatures,
        ),
        (
            "key_ops without verify",
            edited(&rsa, json!({"key_ops": ["encrypt"]})),
            Ignored::NoVerifyOperation,
        ),
        ("RSA 1024", weak, Ignored::WeakRsa),
        (
            "oct",
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "o"}),
            Ignored::UnsupportedType,
        ),
        (
            "unknown kty",
            json!({"kty": "XYZ", "kid": "x"}),
            Ignored::UnsupportedType,
        ),
        (
            "Ed448",
            json!({"kty": "OKP", "crv": "Ed448", "x": "AA", "kid": "x"}),
            Ignored::UnsupportedType,
        ),
        (
            "HS256 on RSA",
            edited(&rsa, json!({"alg": "HS256"})),
            Ignored::UnsupportedAlg,
        ),
        (
            "alg none",
            edited(&rsa, json!({"alg": "none"})),
            Ignored::UnsupportedAlg,
        ),
        (
            "ES256 on RSA",
            edited(&rsa, json!({"alg": "ES256"})),
            Ignored::AlgMismatch,
        ),
        (
            "ES384 on P-256",
            edited(&ec, json!({"alg": "ES384"})),
            Ignored::AlgMismatch,
        ),
        (
            "padded n",
            edited(&rsa, json!({"n": "AQAB="})),
            Ignored::Malformed,
        ),
        (
            "short EC x",
            edited(&ec, json!({"x": "AQAB"})),
            Ignored::Malformed,
        ),
        (
            "kid number",
            edited(&rsa, json!({"kid": 5})),
            Ignored::Malformed,
        ),
        (
            "kid too long",
            edited(&rsa, json!({"kid": "k".repeat(300)})),
            Ignored::Malformed,
        ),
        ("not an object", json!("key"), Ignored::Malformed),
    ];
    for (name, jwk, why) in table {
        let (set, ignored) = load(&[jwk], &Alg::ALL);
        assert_eq!(set.len(), 0, "{name}");
        assert_eq!(
            ignored.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
            [why],
            "{name}"
        );
    }
    let (set, _) = load(&[edited(&rsa, json!({"key_ops": ["verify"]}))], &Alg::ALL);
    assert_eq!(set.len(), 1, "key_ops with verify");
}

#[test]
fn binds_each_key_to_one_algorithm() {
    let rsa = TestKey::rsa_a().with_kid("r");
    let bare = edited(&rsa, json!({"alg": null}));
    let cases: [(&[Alg], Option<Alg>, Option<Ignored>); 4] = [
        (&[Alg::Rs256, Alg::Ps256], Some(Alg::Rs256), None),
        (&[Alg::Ps256], Some(Alg::Ps256), None),
        (&[Alg::Ps256, Alg::Ps384], None, Some(Ignored::NoBinding)),
        (&[Alg::Es256], None, Some(Ignored::NotAdvertised)),
    ];
    for (accepted, bound, ignored) in cases {
        let (set, why) = load(std::slice::from_ref(&bare), accepted);
        let found = Alg::ALL
            .into_iter()
            .find(|alg| matches!(set.find(Some("r"), *alg), Lookup::Found(_)));
        assert_eq!(found, bound, "{accepted:?}");
        assert_eq!(why.first().map(|(_, w)| *w), ignored, "{accepted:?}");
    }
    let (set, _) = load(&[rsa.jwk()], &Alg::ALL);
    assert!(matches!(set.find(Some("r"), Alg::Ps256), Lookup::WrongAlg));
}

#[test]
fn duplicate_kids_prefer_the_matching_algorithm_and_refuse_ambiguity() {
    let a = TestKey::rsa_a().with_kid("dup");
    let b = TestKey::rsa_b().with_kid("dup");
    let ec = TestKey::ec_a().with_kid("dup");
    let (set, ignored) = load(&[a.jwk(), ec.jwk()], &Alg::ALL);
    assert!(ignored.is_empty());
    assert!(matches!(set.find(Some("dup"), Alg::Rs256), Lookup::Found(ref k) if k.len() == 1));
    assert!(matches!(set.find(Some("dup"), Alg::Es256), Lookup::Found(ref k) if k.len() == 1));

    let (set, ignored) = load(&[a.jwk(), b.jwk(), ec.jwk()], &Alg::ALL);
    assert!(matches!(
        set.find(Some("dup"), Alg::Rs256),
        Lookup::Ambiguous
    ));
    assert!(matches!(
        set.find(Some("dup"), Alg::Es256),
        Lookup::Found(_)
    ));
    assert_eq!(ignored.len(), 1);
    assert!(set.knows_kid("dup"));

    let (set, ignored) = load(&[a.jwk(), a.jwk()], &Alg::ALL);
    assert_eq!(
        (set.len(), ignored.len()),
        (1, 0),
        "identical entries collapse"
    );
}

#[test]
fn refuses_invalid_jwks_documents() {
    for body in ["not json", "[]", r#"{"keys": 5}"#, r#"{"other": []}"#] {
        assert!(
            KeySet::from_jwks(body.as_bytes(), &Alg::ALL, Instant::now()).is_err(),
            "{body}"
        );
    }
}

// --- the verifier against a local issuer ---

/// An issuer serving `keys` and a handle whose keys have loaded.
async fn ready(keys: &[&TestKey], extra: &[(&str, &str)]) -> (FaultIssuer, OidcHandle) {
    let issuer = start_issuer(keys.iter().map(|k| k.jwk()).collect()).await;
    let handle = start(&settings(&issuer.url(), extra)).expect("OIDC starts");
    assert!(
        eventually(Duration::from_secs(10), || handle.is_ready()).await,
        "keys loaded"
    );
    (issuer, handle)
}

#[actix::test]
async fn accepts_a_valid_token_with_username_and_groups() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[]).await;
    let principal = handle
        .authenticate(&key.token(&claims(&issuer.url())))
        .await
        .expect("accepted");
    assert_eq!(principal.username(), "alice@example.com");
    assert_eq!(principal.groups(), ["readers", "writers"]);
    assert_eq!(principal.kind(), PrincipalKind::Oidc);
    let stats = handle.stats();
    assert_eq!(
        stats.fetches(FetchTrigger::Startup, FetchResult::Success),
        1
    );
    assert_eq!(stats.keys(), 1);
    assert!(!stats.stale());
    assert_eq!(issuer.discovery_fetches(), 1);
}

#[actix::test]
async fn verifies_every_supported_algorithm() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P521_SHA512_FIXED_SIGNING};

    let rs = TestKey::rsa_a().with_kid("rs");
    let ps = TestKey::rsa_b().with_kid("ps").with_alg("PS256");
    let ec = TestKey::ec_a().with_kid("ec");
    let ed = TestKey::ed25519().with_kid("ed");
    let p521 = EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).expect("P-521 key");
    let point = p521.public_key().as_ref().to_vec();
    let es512 = json!({
        "kty": "EC", "crv": "P-521", "kid": "es512", "alg": "ES512", "use": "sig",
        "x": b64(&point[1..67]), "y": b64(&point[67..]),
    });
    let issuer = start_issuer(vec![rs.jwk(), ps.jwk(), ec.jwk(), ed.jwk(), es512]).await;
    let handle = start(&settings(&issuer.url(), &[])).expect("start");
    assert!(eventually(Duration::from_secs(10), || handle.is_ready()).await);
    let claims = claims(&issuer.url());
    for key in [&rs, &ps, &ec, &ed] {
        let result = handle.authenticate(&key.token(&claims)).await;
        assert!(result.is_ok(), "{}: {result:?}", key.alg());
    }
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "ES512", "kid": "es512"})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = p521
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("ES512 signature");
    let token = format!("{input}.{}", b64(signature.as_ref()));
    assert!(handle.authenticate(&token).await.is_ok(), "ES512");
    let forged = format!("{input}.{}", b64(&[0u8; 132]));
    assert_eq!(
        handle.authenticate(&forged).await.err(),
        Some(Reason::BadSignature)
    );
}

#[actix::test]
async fn hostile_tokens_are_refused_without_a_fetch() {
    let key = TestKey::rsa_a().with_kid("k1");
    let other = TestKey::rsa_b().with_kid("k1");
    let ec = TestKey::ec_a().with_kid("ec");
    let (issuer, handle) = ready(&[&key, &ec], &[]).await;
    let claims = claims(&issuer.url());
    let body = claims.to_string();
    let unsigned = |header: Value| {
        format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(body.as_bytes())
        )
    };
    let hs256 = {
        let secret = key.jwk()["n"].to_string();
        jws(br#"{"alg":"HS256","kid":"k1"}"#, body.as_bytes(), |input| {
            hmac("HS256", secret.as_bytes(), input)
        })
    };
    let mut big = claims.clone();
    big["pad"] = json!("x".repeat(9000));
    let valid = key.token(&claims);
    let (valid_input, _) = valid.rsplit_once('.').expect("three segments");
    let table: Vec<(&str, String, Reason)> = vec![
        ("row 1: alg none", unsigned(json!({"alg": "none", "kid": "k1"})), Reason::DisallowedAlg),
        ("row 1: alg nOnE", unsigned(json!({"alg": "nOnE", "kid": "k1"})), Reason::DisallowedAlg),
        ("row 2: HS256 with the public key", hs256, Reason::DisallowedAlg),
        ("row 3: RS512 not advertised", key.signed(&json!({"alg": "RS512", "kid": "k1"}), &claims), Reason::DisallowedAlg),
        ("row 4: PS256 on an RS256 key", key.clone().with_alg("PS256").token(&claims), Reason::DisallowedAlg),
        ("row 7: embedded jwk of another key", other.signed(&json!({"alg": "RS256", "kid": "k1", "jwk": other.jwk()}), &claims), Reason::BadSignature),
        ("row 8: crit", key.signed(&json!({"alg": "RS256", "kid": "k1", "crit": ["b64"], "b64": false}), &claims), Reason::MalformedToken),
        ("row 9: cty JWT", key.signed(&json!({"alg": "RS256", "kid": "k1", "cty": "JWT"}), &claims), Reason::MalformedToken),
        ("row 9: JWE", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d".to_owned(), Reason::MalformedToken),
        ("row 10: typ id_token", key.signed(&json!({"alg": "RS256", "kid": "k1", "typ": "id_token+jwt"}), &claims), Reason::MalformedToken),
        ("row 24: over 8 KiB", key.token(&big), Reason::MalformedToken),
        ("row 25: padded signature", format!("{valid}="), Reason::MalformedToken),
        ("row 25: standard alphabet", format!("{valid_input}.ab+/"), Reason::MalformedToken),
        ("row 27: duplicate exp", key.signed_text(r#"{"alg":"RS256","kid":"k1"}"#, &format!(r#"{{"iss":"{}","aud":"{CLIENT_ID}","email":"a@b","exp":{},"exp":1}}"#, issuer.url(), now() + 100)), Reason::MalformedToken),
        ("row 29: ES256 r=s=0", format!("{}.{}", ec.token(&claims).rsplit_once('.').expect("token").0, b64(&[0u8; 64])), Reason::BadSignature),
        ("row 29: DER ES256 signature", format!("{}.{}", ec.token(&claims).rsplit_once('.').expect("token").0, b64(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])), Reason::BadSignature),
        ("row 29: short RSA signature", format!("{valid_input}.{}", b64(&[1u8; 255])), Reason::BadSignature),
        ("empty signature", format!("{valid_input}."), Reason::BadSignature),
        ("another key's signature", other.token(&claims), Reason::BadSignature),
        ("expired", key.token(&json!({"iss": issuer.url(), "aud": CLIENT_ID, "email": "a@b", "exp": now() - 3600})), Reason::Expired),
        ("expired with an unknown kid", TestKey::rsa_a().with_kid("unknown").token(&json!({"iss": issuer.url(), "aud": CLIENT_ID, "email": "a@b", "exp": now() - 3600})), Reason::Expired),
        ("wrong issuer with an unknown kid", TestKey::rsa_a().with_kid("unknown").token(&json!({"iss": "https://other", "aud": CLIENT_ID, "email": "a@b", "exp": now() + 60})), Reason::BadIssuer),
    ];
    for (name, token, reason) in table {
        let before = issuer.jwks_fetches();
        assert_eq!(
            handle.authenticate(&token).await.err(),
            Some(reason),
            "{name}"
        );
        assert_eq!(issuer.jwks_fetches(), before, "{name}: no JWKS fetch");
    }
    let ignored = key.signed(
        &json!({"alg": "RS256", "kid": "k1", "jku": "http://127.0.0.1:9/jwks", "x5u": "http://127.0.0.1:9/x", "x5c": ["AAAA"]}),
        &claims,
    );
    assert!(
        handle.authenticate(&ignored).await.is_ok(),
        "row 7: jku/x5u/x5c ignored"
    );
}

#[actix::test]
async fn a_token_without_kid_is_tried_against_keys_of_its_algorithm() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[]).await;
    let token = key.signed(&json!({"alg": "RS256"}), &claims(&issuer.url()));
    assert!(handle.authenticate(&token).await.is_ok());
    let ec_token = TestKey::ec_a()
        .with_kid("x")
        .signed(&json!({"alg": "ES256"}), &claims(&issuer.url()));
    let before = issuer.jwks_fetches();
    assert_eq!(
        handle.authenticate(&ec_token).await.err(),
        Some(Reason::UnknownKid)
    );
    assert_eq!(issuer.jwks_fetches(), before, "no kid, no refetch");
}

// --- the JwksRefresher ---

#[actix::test]
async fn unknown_kid_refetches_at_once_and_accepts_the_rotated_key() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let k2 = TestKey::rsa_b().with_kid("k2");
    let (issuer, handle) = ready(&[&k1], &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "100ms")]).await;
    issuer.publish(&[&k1, &k2]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let principal = handle
        .authenticate(&k2.token(&claims(&issuer.url())))
        .await
        .expect("rotated key accepted on the first request");
    assert_eq!(principal.username(), "alice@example.com");
    assert_eq!(issuer.jwks_fetches(), 2);
    assert_eq!(
        handle
            .stats()
            .fetches(FetchTrigger::KidMiss, FetchResult::Success),
        1
    );
}

#[actix::test]
async fn a_published_key_is_checked_without_waiting_and_an_unknown_kid_waits_for_the_refresher() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let k2 = TestKey::rsa_b().with_kid("k2");
    let (issuer, handle) = ready(&[&k1], &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "100ms")]).await;
    fn miss<'a>(handle: &OidcHandle, token: &'a str) -> super::Unverified<'a> {
        match handle.lookup(token) {
            super::CacheLookup::Miss(unverified) => unverified,
            super::CacheLookup::Hit(_) => panic!("a new token was in the cache"),
        }
    }

    // Under a published key: decided at once, no message, no new fetch.
    let token = k1.token(&claims(&issuer.url()));
    let verdict = handle
        .verify_now(miss(&handle, &token))
        .ok()
        .expect("decided without waiting");
    assert_eq!(
        verdict.expect("accepted").principal.username(),
        "alice@example.com"
    );
    let forged = TestKey::rsa_b()
        .with_kid("k1")
        .token(&claims(&issuer.url()));
    let verdict = handle
        .verify_now(miss(&handle, &forged))
        .ok()
        .expect("decided without waiting");
    assert_eq!(verdict.err().map(|d| d.reason), Some(Reason::BadSignature));
    assert_eq!(issuer.jwks_fetches(), 1);

    // An unknown kid is left for the refresher, which finds the rotated key.
    issuer.publish(&[&k1, &k2]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let rotated = k2.token(&claims(&issuer.url()));
    let Err(unknown) = handle.verify_now(miss(&handle, &rotated)) else {
        panic!("an unknown kid was decided without asking the refresher");
    };
    assert_eq!(issuer.jwks_fetches(), 1);
    let accepted = handle
        .verify_after_refresh(unknown)
        .await
        .expect("rotated key accepted");
    assert_eq!(accepted.principal.username(), "alice@example.com");
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[actix::test]
async fn a_flood_of_random_kids_fetches_at_most_once_per_cooldown() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let cooldown = Duration::from_millis(1500);
    let issuer = start_issuer(vec![k1.jwk()]).await;
    let claims = claims(&issuer.url());
    let rounds: Vec<Vec<String>> = (0..2)
        .map(|round| {
            (0..200)
                .map(|i| {
                    TestKey::rsa_a()
                        .with_kid(&format!("random-{round}-{i}"))
                        .token(&claims)
                })
                .collect()
        })
        .collect();
    let repeat = rounds[1][7].clone();
    let handle = start(&settings(
        &issuer.url(),
        &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "1500ms")],
    ))
    .expect("start");
    assert!(eventually(Duration::from_secs(10), || handle.is_ready()).await);
    let started = Instant::now();
    let flood = |tokens: Vec<String>| {
        tokens
            .into_iter()
            .map(|token| {
                let handle = handle.clone();
                actix_web::rt::spawn(async move { handle.authenticate(&token).await })
            })
            .collect::<Vec<_>>()
    };
    let mut rounds = rounds.into_iter();
    // Inside the cooldown of the start-up fetch: nothing is fetched now.
    for task in flood(rounds.next().expect("round 0")) {
        assert_eq!(task.await.expect("task").err(), Some(Reason::UnknownKid));
    }
    assert_eq!(issuer.jwks_fetches(), 1);
    // One fetch at the end of the cooldown judges them; the next flood costs at most one more.
    tokio::time::sleep(cooldown + Duration::from_millis(300)).await;
    for task in flood(rounds.next().expect("round 1")) {
        assert_eq!(task.await.expect("task").err(), Some(Reason::UnknownKid));
    }
    tokio::time::sleep(cooldown + Duration::from_millis(300)).await;
    let hits = issuer.jwks_fetches();
    let allowed = 1 + (started.elapsed().as_millis() / cooldown.as_millis()) as usize;
    assert!(hits <= allowed, "{hits} fetches in {:?}", started.elapsed());
    assert!(handle.stats().refetch_suppressed() >= 399);
    // The flood's kids are negatively cached: repeating one within the cooldown of the fetch
    // that judged it costs no fetch.
    let before = issuer.jwks_fetches();
    assert_eq!(
        handle.authenticate(&repeat).await.err(),
        Some(Reason::UnknownKid)
    );
    assert_eq!(issuer.jwks_fetches(), before);
}

#[actix::test]
async fn rotation_inside_the_cooldown_is_picked_up_at_its_end() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let k2 = TestKey::rsa_b().with_kid("k2");
    let (issuer, handle) = ready(&[&k1], &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "300ms")]).await;
    issuer.publish(&[&k1, &k2]);
    let token = k2.token(&claims(&issuer.url()));
    assert_eq!(
        handle.authenticate(&token).await.err(),
        Some(Reason::UnknownKid)
    );
    assert!(eventually(Duration::from_secs(3), || handle.keys().knows_kid("k2")).await);
    assert!(handle.authenticate(&token).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// Issue 11, item 3: a forged token naming a `kid` before the issuer publishes it once kept
/// that kid in the negative cache for the whole refresh interval, so genuine tokens signed
/// with the new key were refused for up to that long. Now the key is accepted within one
/// cooldown, whatever was sent before.
#[actix::test]
async fn a_kid_forged_before_its_key_is_published_blocks_it_for_one_cooldown_at_most() {
    let cooldown = Duration::from_millis(400);
    let k1 = TestKey::rsa_a().with_kid("k1");
    let k2 = TestKey::rsa_b().with_kid("k2");
    let (issuer, handle) = ready(
        &[&k1],
        &[
            ("PORTCULLIS_OIDC_REFRESH_INTERVAL", "1h"),
            ("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "400ms"),
        ],
    )
    .await;
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    // Forged: the right kid, any signature (another key's).
    let forged = TestKey::rsa_c()
        .with_kid("k2")
        .token(&claims(&issuer.url()));
    assert_eq!(
        handle.authenticate(&forged).await.err(),
        Some(Reason::UnknownKid)
    );
    assert_eq!(issuer.jwks_fetches(), 2, "the forged kid fetched once");
    issuer.publish(&[&k1, &k2]);
    let genuine = k2.token(&claims(&issuer.url()));
    // Within the cooldown: refused without a fetch (the flood rule).
    assert_eq!(
        handle.authenticate(&genuine).await.err(),
        Some(Reason::UnknownKid)
    );
    assert_eq!(issuer.jwks_fetches(), 2, "no fetch inside the cooldown");
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    let principal = handle
        .authenticate(&genuine)
        .await
        .expect("the new key is accepted once the cooldown has passed");
    assert_eq!(principal.username(), "alice@example.com");
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[actix::test]
async fn odd_kids_are_opaque_map_keys() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&k1], &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "100ms")]).await;
    for kid in ["../../dev/null", "' OR 1=1--", "a\u{0}b\u{1b}[31m", "k1 "] {
        let token = TestKey::rsa_a().with_kid(kid).token(&claims(&issuer.url()));
        assert_eq!(
            handle.authenticate(&token).await.err(),
            Some(Reason::UnknownKid),
            "{kid:?}"
        );
    }
}

#[actix::test]
async fn issuer_down_at_start_gives_issuer_unavailable_then_recovers() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    issuer.set_jwks_body(JwksBody::Status(503));
    let handle = start(&settings(&issuer.url(), &[])).expect("starts without the issuer");
    let stats = handle.stats();
    assert!(
        eventually(Duration::from_secs(5), || {
            stats.fetches(FetchTrigger::Startup, FetchResult::HttpError) == 1
        })
        .await
    );
    let token = key.token(&claims(&issuer.url()));
    assert_eq!(
        handle.authenticate(&token).await.err(),
        Some(Reason::IssuerUnavailable)
    );
    assert_eq!(
        handle.authenticate("x.y.z").await.err(),
        Some(Reason::MalformedToken),
        "a token refused without keys is still a 401"
    );
    assert!(!handle.is_ready());
    assert!(stats.stale());
    assert!((1..=300).contains(&handle.retry_after_seconds()));
    issuer.set_jwks_body(JwksBody::Keys);
    assert!(
        eventually(Duration::from_secs(6), || handle.is_ready()).await,
        "recovers"
    );
    assert!(handle.authenticate(&token).await.is_ok());
    assert!(stats.fetches(FetchTrigger::Retry, FetchResult::Success) == 1);
}

#[actix::test]
async fn a_failed_refresh_keeps_the_last_good_keys_and_marks_them_stale() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[("PORTCULLIS_OIDC_REFRESH_INTERVAL", "200ms")]).await;
    issuer.down().await;
    let stats = handle.stats();
    assert!(eventually(Duration::from_secs(5), || stats.stale()).await);
    assert!(
        stats.fetches(FetchTrigger::Interval, FetchResult::NetworkError) >= 1,
        "counted as a network error"
    );
    assert!(handle
        .authenticate(&key.token(&claims(&issuer.url())))
        .await
        .is_ok());
    assert!(handle.is_ready());
}

/// The staleness rule behind `is_ready` and every verification. End to end, new and cached
/// tokens are refused past it: `keys_past_max_staleness_stop_being_used` in
/// `tests/tests/oidc_faults.rs`.
#[test]
fn keys_past_max_staleness_are_not_usable() {
    let loaded = Instant::now();
    let body = jwks(&[TestKey::rsa_a().jwk()]);
    let (set, _) = KeySet::from_jwks(body.as_bytes(), &Alg::ALL, loaded).expect("valid JWKS");
    let max = Duration::from_millis(400);
    assert!(set.is_usable(loaded, max));
    assert!(set.is_usable(loaded + max, max), "at exactly the limit");
    assert!(!set.is_usable(loaded + max + Duration::from_millis(1), max));
    assert!(
        !KeySet::empty().is_usable(loaded, max),
        "nothing loaded yet"
    );
}

#[actix::test]
async fn oversized_and_malformed_jwks_are_refused_and_the_last_keys_kept() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "50ms")]).await;
    let stats = handle.stats();
    let good = key.token(&claims(&issuer.url()));
    let cases = [
        ("x".repeat(2 * 1024 * 1024), FetchResult::TooLarge),
        ("{not json".to_owned(), FetchResult::Invalid),
        (r#"{"keys": []}"#.to_owned(), FetchResult::Invalid),
        (
            jwks(&[edited(&key, json!({"use": "enc"}))]),
            FetchResult::Invalid,
        ),
    ];
    for (i, (body, result)) in cases.into_iter().enumerate() {
        issuer.set_jwks_body(JwksBody::Raw(body));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let probe = TestKey::rsa_a()
            .with_kid(&format!("probe-{i}"))
            .token(&claims(&issuer.url()));
        assert_eq!(
            handle.authenticate(&probe).await.err(),
            Some(Reason::UnknownKid)
        );
        assert!(
            eventually(Duration::from_secs(3), || stats
                .fetches(FetchTrigger::KidMiss, result)
                + stats.fetches(FetchTrigger::Retry, result)
                >= 1)
            .await,
            "{result:?}"
        );
        assert!(
            handle.authenticate(&good).await.is_ok(),
            "{result:?}: last keys kept"
        );
    }
}

#[actix::test]
async fn a_slow_issuer_times_out_and_no_request_hangs() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    issuer.set_mode(Mode::Slow(Duration::from_secs(3)));
    let handle = start(&settings(
        &issuer.url(),
        &[("PORTCULLIS_OIDC_FETCH_TIMEOUT", "300ms")],
    ))
    .expect("start");
    let stats = handle.stats();
    let asked = Instant::now();
    assert_eq!(
        handle
            .authenticate(&key.token(&claims(&issuer.url())))
            .await
            .err(),
        Some(Reason::IssuerUnavailable)
    );
    assert!(
        asked.elapsed() < Duration::from_millis(100),
        "answered without waiting"
    );
    assert!(
        eventually(Duration::from_secs(2), || {
            stats.fetches(FetchTrigger::Startup, FetchResult::Timeout) == 1
        })
        .await
    );
}

#[actix::test]
async fn discovery_naming_another_issuer_is_refused() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    issuer.set_discovery_issuer(Some(format!("{}/", issuer.url())));
    let handle = start(&settings(&issuer.url(), &[])).expect("start");
    let stats = handle.stats();
    assert!(
        eventually(Duration::from_secs(5), || {
            stats.fetches(FetchTrigger::Startup, FetchResult::Invalid) == 1
        })
        .await
    );
    assert!(!handle.is_ready());
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[actix::test]
async fn redirects_to_another_host_are_not_followed() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    let other_host = issuer.url().replace("127.0.0.1", "localhost");
    issuer.set_jwks_body(JwksBody::Redirect(format!("{other_host}/jwks")));
    let handle = start(&settings(&issuer.url(), &[])).expect("start");
    let stats = handle.stats();
    assert!(
        eventually(Duration::from_secs(5), || {
            stats.fetches(FetchTrigger::Startup, FetchResult::HttpError) == 1
        })
        .await
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "the redirect target was not fetched"
    );
}

#[actix::test]
async fn cache_control_shortens_the_refresh_but_not_below_the_cooldown() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    issuer.set_max_age(Some(0));
    let handle = start(&settings(
        &issuer.url(),
        &[("PORTCULLIS_OIDC_KID_MISS_COOLDOWN", "300ms")],
    ))
    .expect("start");
    assert!(eventually(Duration::from_secs(5), || handle.is_ready()).await);
    let loaded = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let hits = issuer.jwks_fetches();
    let most = 2 + (loaded.elapsed().as_millis() / 300) as usize;
    assert!((3..=most).contains(&hits), "{hits} fetches");
    assert!(
        handle
            .stats()
            .fetches(FetchTrigger::Interval, FetchResult::Success)
            >= 2
    );
}

/// Without discovery nothing is advertised and `fetch` accepts RS256 alone; the key set then
/// leaves keys of other algorithms unloaded. End to end, with the JWKS URL configured:
/// `jwks_url_skips_discovery` and `jwks_url_allows_rs256_only_as_weaviate_does` in
/// `tests/tests/oidc_faults.rs`.
#[test]
fn keys_of_algorithms_not_accepted_are_not_loaded() {
    let rsa = TestKey::rsa_a().with_kid("k1");
    let ec = TestKey::ec_a().with_kid("ec");
    let (set, ignored) = load(&[rsa.jwk(), ec.jwk()], &[Alg::Rs256]);
    assert_eq!(set.len(), 1, "the ES256 key is not loaded");
    assert!(set.knows_kid("k1") && !set.knows_kid("ec"));
    assert_eq!(
        ignored.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        [Ignored::NotAdvertised]
    );
}

#[actix::test]
async fn a_bad_certificate_fails_start() {
    let settings = settings(
        "https://issuer.test",
        &[(
            "AUTHENTICATION_OIDC_CERTIFICATE",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )],
    );
    assert!(start(&settings).is_err());
}

// --- the verified-token cache ---

#[actix::test]
async fn a_verified_token_is_answered_from_the_cache() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[]).await;
    let token = key.token(&claims(&issuer.url()));
    for _ in 0..3 {
        assert!(handle.authenticate(&token).await.is_ok());
    }
    let stats = handle.stats();
    assert_eq!((stats.cache_misses(), stats.cache_hits()), (1, 2));
    assert_eq!(handle.cached_tokens(), 1);
}

/// A cached token is refused once its key has left the published set, and dropped when the
/// next set is published. End to end: `verified_tokens_are_cached_until_their_key_leaves` in
/// `tests/tests/oidc_faults.rs`.
#[test]
fn cached_tokens_of_a_key_that_left_are_refused_and_dropped() {
    let k1 = TestKey::rsa_a().with_kid("k1");
    let k2 = TestKey::rsa_b().with_kid("k2");
    let (both, _) = load(&[k1.jwk(), k2.jwk()], &Alg::ALL);
    let (after, _) = load(&[k2.jwk()], &Alg::ALL);
    let left: Vec<u64> = both.uids().difference(after.uids()).copied().collect();
    let [uid] = left[..] else {
        panic!("one key left: {left:?}")
    };
    let cache = TokenCache::new(8);
    let principal = Principal::new("alice@example.com", Vec::new(), PrincipalKind::Oidc);
    let (now, exp) = (1e9, 2e9);
    cache.insert([1; 32], principal, exp, uid, now);
    assert!(cache.get(&[1; 32], now, &both).is_some());
    assert!(
        cache.get(&[1; 32], now, &after).is_none(),
        "refused once its key left"
    );
    cache.retain(after.uids(), now);
    assert_eq!(cache.len(), 0, "dropped at the next publication");
}

#[actix::test]
async fn cached_tokens_expire_with_their_token() {
    let key = TestKey::rsa_a().with_kid("k1");
    let (issuer, handle) = ready(&[&key], &[("PORTCULLIS_OIDC_LEEWAY", "0s")]).await;
    let mut claims = claims(&issuer.url());
    let exp = now() + 2;
    claims["exp"] = json!(exp);
    let token = key.token(&claims);
    assert!(handle.authenticate(&token).await.is_ok());
    assert!(handle.authenticate(&token).await.is_ok());
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        handle.authenticate(&token).await.err(),
        Some(Reason::Expired)
    );
}

#[actix::test]
async fn the_cache_is_bounded() {
    let key = TestKey::rsa_a().with_kid("k1");
    let issuer = start_issuer(vec![key.jwk()]).await;
    let handle = start_with_capacity(&settings(&issuer.url(), &[]), 3).expect("start");
    assert!(eventually(Duration::from_secs(5), || handle.is_ready()).await);
    for i in 0..5 {
        let mut claims = claims(&issuer.url());
        claims["sub"] = json!(format!("user-{i}"));
        assert!(handle.authenticate(&key.token(&claims)).await.is_ok());
    }
    assert_eq!(handle.cached_tokens(), 3);
}
