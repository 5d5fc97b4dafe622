//! Rows 24-28 of `docs/hostile-inputs.md`: the encoding (size, base64url, JSON objects in UTF-8,
//! duplicate keys, nesting and numbers).

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use portcullis_testkit::{b64, now, random_id, signed_segments, USERNAME_CLAIM};
use portcullis_tests::hostile::*;
use serde_json::{json, Value};

/// A token signed by the RSA key whose total length is exactly `len` bytes (a padding claim,
/// and if needed a short header member, are sized to fit), with this `kid`.
fn token_of_length(f: &Fixture, len: usize, kid: &str) -> String {
    let key = f.rsa.clone().with_kid(kid);
    let signature_len = b64(&key.sign("RS256", b"probe")).len();
    for header_pad in 0..4 {
        let mut header = key.header();
        if header_pad > 0 {
            header.insert("x".into(), json!("h".repeat(header_pad)));
        }
        let header = Value::Object(header).to_string();
        let payload_len = len - b64(header.as_bytes()).len() - 2 - signature_len;
        if payload_len % 4 == 1 {
            // No byte string has an unpadded base64 of that length.
            continue;
        }
        let mut claims = f.issuer.claims();
        claims.insert("pad".into(), json!(""));
        let base = Value::Object(claims.clone()).to_string().len();
        claims.insert("pad".into(), json!("p".repeat(payload_len * 3 / 4 - base)));
        let token = f.exact(
            header.as_bytes(),
            Value::Object(claims).to_string().as_bytes(),
        );
        assert_eq!(token.len(), len, "token length");
        return token;
    }
    unreachable!("one of four header sizes fits")
}

#[tokio::test]
async fn row_24_oversized_tokens_are_rejected_before_decoding() {
    // The issue's size rule is 8 KiB for the whole token, which also bounds the header; no
    // separate header limit is asserted.
    let f = fixture().await;
    f.wait_cooldown().await;
    let valid = f.issuer.token(&f.rsa);
    let unknown = random_id();
    let cases = vec![
        case(
            "8 KiB + 1, published kid",
            token_of_length(&f, 8193, "rsa-a"),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "8 KiB + 1, unknown kid",
            token_of_length(&f, 8193, &unknown),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "64 KiB, unknown kid",
            token_of_length(&f, 64 * 1024, &unknown),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "four segments",
            format!("{valid}.x"),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "five segments",
            format!("{valid}.x.y"),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "only dots",
            ".....".to_owned(),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "two empty segments",
            "..".to_owned(),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        case(
            "a thousand dots",
            ".".repeat(1000),
            Expect::DenyAnyPathNoFetch(MALFORMED_ANY_PATH),
        ),
        // The boundary: exactly 8 KiB is still a token.
        case(
            "exactly 8 KiB",
            token_of_length(&f, 8192, "rsa-a"),
            accept(),
        ),
    ];
    f.run(cases).await;
    f.assert_unknown_kid_fetches().await;
}

/// Finds standard claims whose base64url contains `-` or `_`, so that a standard-alphabet
/// variant (`+`, `/`) of the same bytes exists.
fn claims_with_url_alphabet(f: &Fixture) -> String {
    for i in 0..1000u32 {
        let mut claims = f.issuer.claims();
        claims.insert("n".into(), json!(format!("\u{ffff}\u{ffff}??>{i}")));
        let encoded = b64(Value::Object(claims).to_string().as_bytes());
        if encoded.contains('-') || encoded.contains('_') {
            return encoded;
        }
    }
    panic!("no claims with - or _ in their base64url");
}

/// Sets unused low bits of the last character of an unpadded base64url segment.
fn non_canonical(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(segment.len() % 4, 0, "segment has no spare bits");
    let mut bytes = segment.as_bytes().to_vec();
    let last = bytes.last_mut().expect("segment");
    let index = ALPHABET.iter().position(|c| c == last).expect("base64url") | 1;
    *last = ALPHABET[index];
    String::from_utf8(bytes).expect("ascii")
}

#[tokio::test]
async fn row_25_base64_must_be_strict_base64url() {
    let f = fixture().await;
    const STRICT: &[&str] = &["malformed_token", "invalid_key", "bad_signature"];
    let sign = |h: &str, p: &str| signed_segments(h, p, |m| f.rsa.sign("RS256", m));
    // A header whose base64url length is not a multiple of 4, so padding applies.
    let mut header = f.header_text();
    while b64(header.as_bytes()).len().is_multiple_of(4) {
        header = append_member(&header, "\"x\":1");
    }
    let h = b64(header.as_bytes());
    let mut claims = f.claims_text();
    while b64(claims.as_bytes()).len().is_multiple_of(4) {
        claims = append_member(&claims, "\"y\":1");
    }
    let p = b64(claims.as_bytes());
    let pad = |s: &str| format!("{s}{}", "=".repeat(4 - s.len() % 4));
    let url_claims = claims_with_url_alphabet(&f);
    let standard = url_claims.replace('-', "+").replace('_', "/");
    assert_eq!(
        STANDARD_NO_PAD
            .decode(&standard)
            .expect("standard alphabet"),
        URL_SAFE_NO_PAD.decode(&url_claims).expect("url alphabet"),
        "same bytes in both alphabets"
    );
    let valid = sign(&h, &p);
    let (message, signature) = valid.rsplit_once('.').expect("signature");
    let cases = vec![
        case(
            "padded header",
            sign(&pad(&h), &p),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "padded payload",
            sign(&h, &pad(&p)),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "padded signature",
            format!("{message}.{signature}=="),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "standard alphabet (+ and /)",
            sign(&h, &standard),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "non-canonical trailing bits in the header",
            sign(&non_canonical(&h), &p),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "non-canonical trailing bits in the payload",
            sign(&h, &non_canonical(&p)),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "non-canonical trailing bits in the signature",
            format!("{message}.{}", non_canonical(signature)),
            Expect::DenyAnyPath(STRICT),
        ),
        case(
            "a space inside the token",
            format!("{h}. {p}.{signature}"),
            Expect::BadRequest,
        ),
        case(
            "a tab inside the token",
            format!("{h}.\t{p}.{signature}"),
            Expect::BadRequest,
        ),
        // The control: the same segments, canonical, pass.
        case("canonical", valid.clone(), accept()),
    ];
    f.run(cases).await;
}

#[tokio::test]
async fn row_26_header_and_payload_must_be_json_objects_in_utf8() {
    let f = fixture().await;
    let header = f.header_text();
    let claims = f.claims_text();
    let mut cases = Vec::new();
    for (what, h) in [
        ("header an array", r#"["RS256"]"#.to_owned()),
        ("header a string", r#""RS256""#.to_owned()),
        ("header a number", "1".to_owned()),
        ("header null", "null".to_owned()),
        ("header an array holding the header", format!("[{header}]")),
        ("header empty", String::new()),
    ] {
        cases.push(case(
            what,
            f.exact(h.as_bytes(), claims.as_bytes()),
            Expect::DenyAnyPath(MALFORMED_ANY_PATH),
        ));
    }
    for (what, p) in [
        ("payload an array", "[]".to_owned()),
        ("payload a string", r#""claims""#.to_owned()),
        ("payload a number", "42".to_owned()),
        ("payload null", "null".to_owned()),
        ("payload empty", String::new()),
        ("payload an array holding the claims", format!("[{claims}]")),
    ] {
        cases.push(case(
            what,
            f.exact(header.as_bytes(), p.as_bytes()),
            Expect::Deny(&["malformed_token", "missing_claim"]),
        ));
    }
    let bad_utf8 = |json: &str| -> Vec<u8> {
        let mut bytes = json.as_bytes()[..json.len() - 1].to_vec();
        bytes.extend_from_slice(b",\"z\":\"\xff\xfe\xc0\xaf\"}");
        bytes
    };
    let bom = |json: &str| -> Vec<u8> {
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(json.as_bytes());
        bytes
    };
    cases.push(case(
        "invalid UTF-8 in the payload",
        f.exact(header.as_bytes(), &bad_utf8(&claims)),
        Expect::Deny(&["malformed_token"]),
    ));
    cases.push(case(
        "invalid UTF-8 in the header",
        f.exact(&bad_utf8(&header), claims.as_bytes()),
        Expect::DenyAnyPath(MALFORMED_ANY_PATH),
    ));
    cases.push(case(
        "BOM before the payload",
        f.exact(header.as_bytes(), &bom(&claims)),
        Expect::Deny(&["malformed_token"]),
    ));
    cases.push(case(
        "BOM before the header",
        f.exact(&bom(&header), claims.as_bytes()),
        Expect::DenyAnyPath(MALFORMED_ANY_PATH),
    ));
    cases.push(case(
        "a surrogate escape in the payload",
        f.exact(
            header.as_bytes(),
            append_member(&claims, r#""s":"\ud800""#).as_bytes(),
        ),
        Expect::Deny(&["malformed_token"]),
    ));
    f.run(cases).await;
}

#[tokio::test]
async fn row_27_duplicate_json_keys_are_rejected() {
    let f = fixture().await;
    let header = f.header_text();
    let claims = f.claims_text();
    let now = now();
    let header_dups = [
        (
            "alg none then RS256",
            prepend_member(&header, r#""alg":"none""#),
        ),
        (
            "alg RS256 then none",
            append_member(&header, r#""alg":"none""#),
        ),
        (
            "kid unknown then published",
            prepend_member(&header, r#""kid":"unknown-kid""#),
        ),
        (
            "kid published then unknown",
            append_member(&header, r#""kid":"unknown-kid""#),
        ),
        (
            "kid twice, same value",
            append_member(&header, r#""kid":"rsa-a""#),
        ),
    ];
    let mut cases = Vec::new();
    for (what, h) in header_dups {
        cases.push(case(
            format!("header: {what}"),
            f.exact(h.as_bytes(), claims.as_bytes()),
            Expect::DenyAnyPath(MALFORMED_ANY_PATH),
        ));
    }
    let claim_dups = [
        (
            "exp past then future",
            prepend_member(&claims, &format!("\"exp\":{}", now - 3600)),
        ),
        (
            "exp future then past",
            append_member(&claims, &format!("\"exp\":{}", now - 3600)),
        ),
        ("exp twice, same value", {
            let exp = f.issuer.claims()["exp"].clone();
            append_member(&claims, &format!("\"exp\":{exp}"))
        }),
        (
            "iss wrong then right",
            prepend_member(&claims, r#""iss":"http://issuer.invalid""#),
        ),
        (
            "iss right then wrong",
            append_member(&claims, r#""iss":"http://issuer.invalid""#),
        ),
        (
            "aud wrong then right",
            prepend_member(&claims, r#""aud":"other-client""#),
        ),
        (
            "username admin then alice",
            prepend_member(&claims, &format!("\"{USERNAME_CLAIM}\":\"admin\"")),
        ),
        (
            "username alice then admin",
            append_member(&claims, &format!("\"{USERNAME_CLAIM}\":\"admin\"")),
        ),
        (
            "an unknown claim twice",
            append_member(&append_member(&claims, r#""x":1"#), r#""x":2"#),
        ),
    ];
    for (what, p) in claim_dups {
        cases.push(case(
            format!("claims: {what}"),
            f.exact(header.as_bytes(), p.as_bytes()),
            Expect::Deny(&["malformed_token"]),
        ));
    }
    f.run(cases).await;
}

#[tokio::test]
async fn row_28_deep_nesting_and_huge_numbers() {
    let f = fixture().await;
    let header = f.header_text();
    let claims = f.claims_text();
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let cases = vec![
        case(
            "payload nested 2,500 deep (under 8 KiB)",
            f.exact(
                header.as_bytes(),
                append_member(&claims, &format!("\"x\":{}", nested(2500))).as_bytes(),
            ),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "payload nested 10,000 deep",
            f.exact(
                header.as_bytes(),
                append_member(&claims, &format!("\"x\":{}", nested(10_000))).as_bytes(),
            ),
            Expect::DenyAnyPath(MALFORMED_ANY_PATH),
        ),
        case(
            "unclosed nesting 3,000 deep",
            f.exact(
                header.as_bytes(),
                append_member(&claims, &format!("\"x\":{}", "[".repeat(3000))).as_bytes(),
            ),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "header nested 1,000 deep",
            f.exact(
                append_member(&header, &format!("\"x\":{}", nested(1000))).as_bytes(),
                claims.as_bytes(),
            ),
            Expect::DenyAnyPath(MALFORMED_ANY_PATH),
        ),
        case(
            "objects nested 1,000 deep",
            f.exact(
                header.as_bytes(),
                append_member(
                    &claims,
                    &format!("\"x\":{}1{}", "{\"a\":".repeat(1000), "}".repeat(1000)),
                )
                .as_bytes(),
            ),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "a 1e400 claim",
            f.exact(
                header.as_bytes(),
                append_member(&claims, "\"x\":1e400").as_bytes(),
            ),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "a 400-digit integer claim",
            f.exact(
                header.as_bytes(),
                append_member(&claims, &format!("\"x\":1{}", "0".repeat(400))).as_bytes(),
            ),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "exp 1e400",
            {
                let mut c = f.issuer.claims();
                c.remove("exp");
                f.exact(
                    header.as_bytes(),
                    append_member(&Value::Object(c).to_string(), "\"exp\":1e400").as_bytes(),
                )
            },
            Expect::Deny(&["malformed_token", "missing_claim", "expired"]),
        ),
    ];
    f.run(cases).await;
    f.assert_alive().await;
}
