//! Rows 29-30 of `docs/hostile-inputs.md`: signatures and keys (malformed signatures, weak
//! keys, duplicate kids).

use portcullis_testkit::{b64, TestKey};
use portcullis_tests::hostile::*;
use serde_json::Value;

/// The order of P-256, for r = s = n.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The DER encoding of an ECDSA signature given as r || s.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| *b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let mut body = integer(&raw[..32]);
    body.extend(integer(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[tokio::test]
async fn row_29_malformed_signatures_and_weak_keys() {
    let weak = TestKey::rsa_1024();
    let f = fixture_with(vec![weak.jwk()], &[]).await;
    const BAD: &[&str] = &["bad_signature", "malformed_token"];
    let ec_header = Value::Object(f.ec.header()).to_string();
    let claims = f.claims_text();
    let message = format!("{}.{}", b64(ec_header.as_bytes()), b64(claims.as_bytes()));
    let ec_valid = f.ec.sign("ES256", message.as_bytes());
    let ec = |signature: &[u8]| format!("{message}.{}", b64(signature));
    let mut r_zero = ec_valid.clone();
    r_zero[..32].fill(0);
    let mut longer = ec_valid.clone();
    longer.push(0);
    let n_n = [P256_ORDER, P256_ORDER].concat();

    let rsa_header = f.header_text();
    let rsa_message = format!("{}.{}", b64(rsa_header.as_bytes()), b64(claims.as_bytes()));
    let rsa_valid = f.rsa.sign("RS256", rsa_message.as_bytes());
    let rsa = |signature: &[u8]| format!("{rsa_message}.{}", b64(signature));
    let mut leading_zero = vec![0u8];
    leading_zero.extend_from_slice(&rsa_valid);

    let weak_token = f.issuer.token(&weak);
    let cases = vec![
        case("ES256 r = s = 0", ec(&[0; 64]), Expect::Deny(BAD)),
        case("ES256 r = 0", ec(&r_zero), Expect::Deny(BAD)),
        case("ES256 r = s = n", ec(&n_n), Expect::Deny(BAD)),
        case(
            "ES256 DER-encoded",
            ec(&der_signature(&ec_valid)),
            Expect::Deny(BAD),
        ),
        case("ES256 63 bytes", ec(&ec_valid[..63]), Expect::Deny(BAD)),
        case("ES256 65 bytes", ec(&longer), Expect::Deny(BAD)),
        case("ES256 empty", ec(&[]), Expect::Deny(BAD)),
        case(
            "RS256 with a leading zero byte (257 bytes)",
            rsa(&leading_zero),
            Expect::Deny(BAD),
        ),
        case(
            "RS256 missing its first byte (255 bytes)",
            rsa(&rsa_valid[1..]),
            Expect::Deny(BAD),
        ),
        case("RS256 empty", rsa(&[]), Expect::Deny(BAD)),
        case(
            "RS256 by the published 1024-bit key",
            weak_token,
            Expect::Deny(&["unknown_kid", "bad_signature"]),
        ),
        // Controls: the untouched signatures pass.
        case("ES256 valid", ec(&ec_valid), accept()),
        case("RS256 valid", rsa(&rsa_valid), accept()),
    ];
    f.run(cases).await;
    assert_eq!(
        f.server.metric("portcullis_jwks_keys", &[]).await,
        base_jwks().len() as f64,
        "the 1024-bit RSA key is ignored at load"
    );
}

#[tokio::test]
async fn row_30_duplicate_kids_in_the_jwks() {
    let f = fixture_with(
        vec![
            TestKey::rsa_a().with_kid("dup").jwk(),
            TestKey::ec_a().with_kid("dup").jwk(),
            TestKey::rsa_b().with_kid("twin").jwk(),
            TestKey::rsa_c().with_kid("twin").jwk(),
        ],
        &[],
    )
    .await;
    const AMBIGUOUS: &[&str] = &["bad_signature", "unknown_kid", "malformed_token"];
    let cases = vec![
        case(
            "kid dup, RS256: the RSA key's algorithm matches",
            f.issuer.token(&f.rsa.clone().with_kid("dup")),
            accept(),
        ),
        case(
            "kid dup, ES256: the EC key's algorithm matches",
            f.issuer.token(&f.ec.clone().with_kid("dup")),
            accept(),
        ),
        case(
            "kid twin, both RS256, signed by the first",
            f.issuer.token(&TestKey::rsa_b().with_kid("twin")),
            Expect::Deny(AMBIGUOUS),
        ),
        case(
            "kid twin, both RS256, signed by the second",
            f.issuer.token(&TestKey::rsa_c().with_kid("twin")),
            Expect::Deny(AMBIGUOUS),
        ),
    ];
    f.run(cases).await;
}
