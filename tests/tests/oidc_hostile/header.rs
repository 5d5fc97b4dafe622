//! Rows 1-10 of `docs/hostile-inputs.md`: the JOSE header (`alg`, `kid`, `jku` and friends, `crit`,
//! nested tokens, `typ`).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis_config::vars;
use portcullis_testkit::{b64, hmac, jws, random_id, TestKey};
use portcullis_tests::assert::CHALLENGE_INVALID_TOKEN;
use portcullis_tests::hostile::*;
use portcullis_tests::oidc_support::{own_info_within, AuthCounts};
use serde_json::{json, Value};

#[tokio::test]
async fn row_01_alg_none_in_any_case() {
    let f = fixture().await;
    f.wait_cooldown().await;
    let claims = f.claims_text();
    let mut cases = Vec::new();
    for alg in ["none", "None", "nOnE", "NONE"] {
        for kid in [random_id(), f.rsa.kid().to_owned()] {
            let header = json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string();
            let token = format!("{}.{}.", b64(header.as_bytes()), b64(claims.as_bytes()));
            cases.push(case(
                format!("alg {alg}, kid {kid}"),
                token,
                Expect::DenyNoFetch(&["disallowed_alg"]),
            ));
        }
    }
    // none with a (valid RS256) signature attached.
    let header = json!({"alg": "none", "kid": f.rsa.kid()}).to_string();
    cases.push(case(
        "alg none with a signature",
        f.exact(header.as_bytes(), claims.as_bytes()),
        Expect::DenyNoFetch(&["disallowed_alg"]),
    ));
    let header = json!({"kid": random_id(), "typ": "JWT"}).to_string();
    cases.push(case(
        "no alg at all",
        format!("{}.{}.", b64(header.as_bytes()), b64(claims.as_bytes())),
        Expect::DenyNoFetch(&["disallowed_alg", "malformed_token"]),
    ));
    f.run(cases).await;
    f.assert_unknown_kid_fetches().await;
}

#[tokio::test]
async fn row_02_hs256_signed_with_the_public_key() {
    let f = fixture().await;
    let pem = f.rsa.public_pem();
    let jwk = f.rsa.jwk().to_string();
    let modulus = URL_SAFE_NO_PAD
        .decode(f.rsa.jwk()["n"].as_str().expect("n"))
        .expect("modulus");
    let secrets: [(&str, &[u8]); 3] = [
        ("PEM", pem.as_bytes()),
        ("JWK JSON", jwk.as_bytes()),
        ("modulus bytes", &modulus),
    ];
    let mut cases = Vec::new();
    for alg in ["HS256", "HS384", "HS512"] {
        for (name, secret) in secrets {
            for kid in [Some(f.rsa.kid()), None] {
                let mut header = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                let header = header.to_string();
                let claims = f.claims_text();
                let token = jws(header.as_bytes(), claims.as_bytes(), |m| {
                    hmac(alg, secret, m)
                });
                cases.push(case(
                    format!("{alg} with the {name}, kid {kid:?}"),
                    token,
                    Expect::Deny(&["disallowed_alg"]),
                ));
            }
        }
    }
    f.run(cases).await;
}

#[tokio::test]
async fn row_03_alg_outside_the_allowlist() {
    let f = fixture().await;
    f.wait_cooldown().await;
    let claims = f.claims_text();
    let mut cases = Vec::new();
    // Signed for real where the key can; garbage where it cannot (the alg must be refused
    // before any signature or key work).
    let algs = [
        "RS384", "RS512", "PS256", "PS384", "PS512", "ES384", "ES512", "ES256K", "HS256", "HS512",
        "rs256", "Rs256", "RS256 ", " RS256", "RSA256", "",
    ];
    for alg in algs {
        let header = json!({"alg": alg, "kid": random_id(), "typ": "JWT"}).to_string();
        let sign = |m: &[u8]| -> Vec<u8> {
            if ["RS384", "RS512", "PS256", "PS384", "PS512"].contains(&alg) {
                f.rsa.sign(alg, m)
            } else {
                vec![0x5a; 64]
            }
        };
        cases.push(case(
            format!("alg {alg:?}, unknown kid"),
            jws(header.as_bytes(), claims.as_bytes(), sign),
            Expect::DenyNoFetch(&["disallowed_alg"]),
        ));
    }
    for alg in ["RS512", "PS256"] {
        let header = json!({"alg": alg, "kid": f.rsa.kid(), "typ": "JWT"}).to_string();
        cases.push(case(
            format!("{alg} validly signed by the published RSA key"),
            jws(header.as_bytes(), claims.as_bytes(), |m| f.rsa.sign(alg, m)),
            Expect::DenyNoFetch(&["disallowed_alg"]),
        ));
    }
    let header = json!({"alg": 256, "kid": random_id()}).to_string();
    cases.push(case(
        "alg not a string",
        jws(header.as_bytes(), claims.as_bytes(), |_| vec![1; 64]),
        Expect::DenyNoFetch(&["disallowed_alg", "malformed_token"]),
    ));
    f.run(cases).await;
    f.assert_unknown_kid_fetches().await;
}

#[tokio::test]
async fn row_04_header_alg_must_match_the_keys_and_enc_keys_are_never_used() {
    let mut ps_bound = TestKey::rsa_b().with_kid("rsa-b-ps").jwk();
    ps_bound["alg"] = json!("PS256");
    let mut enc = TestKey::rsa_c().with_kid("rsa-enc").jwk();
    enc["use"] = json!("enc");
    let mut ops = TestKey::rsa_c().with_kid("rsa-ops").jwk();
    ops.as_object_mut().expect("jwk").remove("use");
    ops["key_ops"] = json!(["encrypt", "wrapKey"]);
    let mut ec_no_alg = TestKey::ec_b().with_kid("ec-noalg").jwk();
    ec_no_alg.as_object_mut().expect("jwk").remove("alg");
    let f = fixture_with(vec![ps_bound, enc, ops, ec_no_alg], &[]).await;

    let claims = f.claims_text();
    let signed = |alg: &str, kid: &str, key: &TestKey| {
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string();
        jws(header.as_bytes(), claims.as_bytes(), |m| key.sign(alg, m))
    };
    const MISMATCH: &[&str] = &["disallowed_alg", "bad_signature", "unknown_kid"];
    let rsa_b = TestKey::rsa_b();
    let rsa_c = TestKey::rsa_c();
    let ec_b = TestKey::ec_b();
    let cases = vec![
        case(
            "ES256 naming the RSA key",
            signed("ES256", "rsa-a", &f.ec),
            Expect::Deny(MISMATCH),
        ),
        case(
            "RS256 naming the EC key",
            signed("RS256", "ec-a", &f.rsa),
            Expect::Deny(MISMATCH),
        ),
        case(
            "EdDSA naming the RSA key",
            signed("EdDSA", "rsa-a", &f.ed),
            Expect::Deny(MISMATCH),
        ),
        case(
            "ES256 naming the Ed25519 key",
            signed("ES256", "ed-a", &f.ec),
            Expect::Deny(MISMATCH),
        ),
        case(
            "RS256 with a key whose JWK says PS256",
            signed("RS256", "rsa-b-ps", &rsa_b),
            Expect::Deny(MISMATCH),
        ),
        case(
            "RS256 with a use:enc key",
            signed("RS256", "rsa-enc", &rsa_c),
            Expect::Deny(MISMATCH),
        ),
        case(
            "RS256 with a key whose key_ops lack verify",
            signed("RS256", "rsa-ops", &rsa_c),
            Expect::Deny(MISMATCH),
        ),
        case(
            "RS256 naming a P-256 key without alg",
            signed("RS256", "ec-noalg", &f.rsa),
            Expect::Deny(MISMATCH),
        ),
        // Controls: the right algorithm for each key passes.
        case(
            "ES256 with a P-256 key without alg",
            signed("ES256", "ec-noalg", &ec_b),
            accept(),
        ),
        case(
            "EdDSA with the Ed25519 key",
            signed("EdDSA", "ed-a", &f.ed),
            accept(),
        ),
        case(
            "ES256 with the EC key",
            signed("ES256", "ec-a", &f.ec),
            accept(),
        ),
    ];
    f.run(cases).await;
}

#[tokio::test]
async fn row_05_unknown_random_kids_fetch_at_most_once_per_cooldown() {
    let f = fixture().await;
    f.wait_cooldown().await;
    let before = AuthCounts::read(&f.server).await;
    let fetched = f.issuer.jwks_fetches();
    let started = std::time::Instant::now();
    let tokens: Vec<String> = (0..20).map(|_| f.random_kid_token()).collect();
    let answers = futures_util::future::join_all(
        tokens
            .iter()
            .map(|t| own_info_within(&f.server, t, Duration::from_secs(10))),
    )
    .await;
    let elapsed = started.elapsed();
    tokio::time::sleep(FETCH_GRACE).await;
    for (response, _) in &answers {
        assert_eq!(response.status, 401, "random kid: {}", text(response));
        assert_eq!(
            response.header("www-authenticate"),
            Some(CHALLENGE_INVALID_TOKEN)
        );
    }
    let fetches = f.issuer.jwks_fetches() - fetched;
    assert!(fetches >= 1, "an unknown kid triggers one refetch");
    let allowed = (elapsed.as_secs_f64() / COOLDOWN.as_secs_f64()).floor() as usize + 1;
    assert!(
        fetches <= allowed,
        "{fetches} JWKS fetches for 20 concurrent unknown kids in {elapsed:?} (cooldown {COOLDOWN:?})"
    );
    let grown = AuthCounts::read(&f.server).await.grown_since(&before);
    let unknown: f64 = grown
        .iter()
        .filter(|(s, _)| s.method == "oidc" && s.reason == "unknown_kid")
        .map(|(_, d)| d)
        .sum();
    assert_eq!(unknown, 20.0, "counted as unknown_kid: {grown:?}");
}

#[tokio::test]
async fn row_06_hostile_kid_values_are_opaque_and_logged_escaped() {
    let f = fixture_with(Vec::new(), &[(vars::LOG_LEVEL, "debug")]).await;
    const UNKNOWN: &[&str] = &["unknown_kid", "malformed_token"];
    let kids: Vec<(&str, String, Expect)> = vec![
        (
            "path traversal",
            "../../dev/null".into(),
            Expect::Deny(UNKNOWN),
        ),
        (
            "path traversal to a file",
            "../../../../etc/passwd".into(),
            Expect::Deny(UNKNOWN),
        ),
        ("SQL injection", "' OR 1=1--".into(), Expect::Deny(UNKNOWN)),
        (
            "LDAP injection",
            "*)(uid=*))(|(uid=*".into(),
            Expect::Deny(UNKNOWN),
        ),
        (
            "JNDI lookup",
            "${jndi:ldap://127.0.0.1:1/a}".into(),
            Expect::Deny(UNKNOWN),
        ),
        ("NUL byte", "rsa-a\u{0}".into(), Expect::Deny(UNKNOWN)),
        (
            "escape sequences",
            "\u{1b}[31mred\u{1b}[0m".into(),
            Expect::Deny(UNKNOWN),
        ),
        (
            "forged log line",
            "x\r\nINJECTED forged log line".into(),
            Expect::Deny(UNKNOWN),
        ),
        ("URL-encoded NUL", "%00".into(), Expect::Deny(UNKNOWN)),
        (
            "empty kid",
            String::new(),
            Expect::Deny(&["unknown_kid", "malformed_token", "bad_signature"]),
        ),
        ("1,000-byte kid", "k".repeat(1000), Expect::Deny(UNKNOWN)),
        (
            "10 KiB kid",
            "k".repeat(10 * 1024),
            Expect::DenyAnyPath(&["unknown_kid", "malformed_token", "invalid_key"]),
        ),
    ];
    let mut cases = Vec::new();
    for (what, kid, expect) in kids {
        let token = f.with_header(|h| {
            h.insert("kid".into(), json!(kid));
        });
        cases.push(case(format!("kid: {what}"), token, expect));
    }
    let token = f.with_header(|h| {
        h.insert("kid".into(), json!(["rsa-a"]));
    });
    cases.push(case(
        "kid not a string",
        token,
        Expect::Deny(&["unknown_kid", "malformed_token"]),
    ));
    f.run(cases).await;

    let log = f.server.stderr();
    assert!(
        !log.contains('\u{0}'),
        "a raw NUL from a kid reached the log"
    );
    assert!(
        !log.contains('\u{1b}'),
        "a raw escape sequence from a kid reached the log"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("INJECTED")),
        "a kid forged a log line"
    );
    f.assert_alive().await;
}

#[tokio::test]
async fn row_07_jku_x5u_jwk_x5c_headers_are_never_followed() {
    let f = fixture().await;
    let attacker = TestKey::rsa_c().with_kid("attacker");
    f.issuer.publish_attacker(&[&attacker]);
    let attacker_jwks = format!("{}/attacker/jwks", f.issuer.url());
    let attacker_x5u = format!("{}/attacker/x5u.pem", f.issuer.url());
    let x5c = TestKey::attacker_x5c();
    let claims = f.claims_text();
    let forged = |header: Value| {
        let header = header.to_string();
        jws(header.as_bytes(), claims.as_bytes(), |m| {
            attacker.sign("RS256", m)
        })
    };
    const REFUSED: &[&str] = &["unknown_kid", "bad_signature", "malformed_token"];
    let cases = vec![
        case(
            "jku to the attacker's JWKS",
            forged(json!({"alg": "RS256", "kid": "attacker", "jku": attacker_jwks})),
            Expect::Deny(REFUSED),
        ),
        case(
            "x5u to the attacker's certificate",
            forged(json!({"alg": "RS256", "kid": "attacker", "x5u": attacker_x5u})),
            Expect::Deny(REFUSED),
        ),
        case(
            "embedded jwk, no kid",
            forged(json!({"alg": "RS256", "jwk": attacker.jwk()})),
            Expect::Deny(REFUSED),
        ),
        case(
            "embedded jwk with its kid",
            forged(json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.jwk()})),
            Expect::Deny(REFUSED),
        ),
        case(
            "x5c chain, no kid",
            forged(json!({"alg": "RS256", "x5c": [x5c]})),
            Expect::Deny(REFUSED),
        ),
        case(
            "x5c chain with a kid",
            forged(json!({"alg": "RS256", "kid": "attacker", "x5c": [x5c]})),
            Expect::Deny(REFUSED),
        ),
        case(
            "published kid, attacker's key, jku",
            forged(json!({"alg": "RS256", "kid": "rsa-a", "jku": attacker_jwks})),
            Expect::Deny(&["bad_signature"]),
        ),
        case(
            "published kid, attacker's key, embedded jwk",
            forged(json!({"alg": "RS256", "kid": "rsa-a", "jwk": attacker.jwk()})),
            Expect::Deny(&["bad_signature"]),
        ),
    ];
    f.run(cases).await;
    tokio::time::sleep(FETCH_GRACE).await;
    assert_eq!(
        f.issuer.attacker_requests(),
        0,
        "a URL from a token header was fetched"
    );
}

#[tokio::test]
async fn row_08_crit_is_rejected() {
    let f = fixture().await;
    const CRIT: &[&str] = &["malformed_token"];
    let variants: Vec<(&str, Value)> = vec![
        (
            "crit naming a registered header",
            json!({"crit": ["exp"], "exp": 1}),
        ),
        (
            "crit naming an unknown extension",
            json!({"crit": ["x-ext"], "x-ext": true}),
        ),
        ("crit b64", json!({"crit": ["b64"], "b64": true})),
        ("crit empty", json!({"crit": []})),
        ("crit not an array", json!({"crit": "x-ext", "x-ext": 1})),
        ("crit null", json!({"crit": null})),
    ];
    let mut cases = Vec::new();
    for (what, extra) in variants {
        let token = f.with_header(|h| {
            for (k, v) in extra.as_object().expect("object") {
                h.insert(k.clone(), v.clone());
            }
        });
        cases.push(case(what, token, Expect::Deny(CRIT)));
    }
    f.run(cases).await;
}

#[tokio::test]
async fn row_09_nested_jwts_and_jwe_are_rejected() {
    let f = fixture().await;
    let inner = f.issuer.token(&f.rsa);
    let header = json!({"alg": "RS256", "kid": "rsa-a", "cty": "JWT"}).to_string();
    let jwe_header = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa-a"}).to_string();
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(jwe_header.as_bytes()),
        b64(&[7; 256]),
        b64(&[1; 12]),
        b64(f.claims_text().as_bytes()),
        b64(&[2; 16])
    );
    let cases = vec![
        case(
            "cty JWT wrapping a valid token",
            f.exact(header.as_bytes(), inner.as_bytes()),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "cty JWT over ordinary claims",
            f.exact(header.as_bytes(), f.claims_text().as_bytes()),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "cty jwt, lower case",
            f.with_header(|h| {
                h.insert("cty".into(), json!("jwt"));
            }),
            Expect::Deny(&["malformed_token"]),
        ),
        case(
            "JWE, five segments",
            jwe,
            Expect::DenyAnyPath(MALFORMED_ANY_PATH),
        ),
    ];
    f.run(cases).await;
}

#[tokio::test]
async fn row_10_typ_must_be_absent_jwt_or_at_jwt() {
    let f = fixture().await;
    const TYP: &[&str] = &["malformed_token"];
    let mut cases = Vec::new();
    for typ in [
        "dpop+jwt",
        "secevent+jwt",
        "logout+jwt",
        "JWE",
        "id_token",
        "",
    ] {
        let token = f.with_header(|h| {
            h.insert("typ".into(), json!(typ));
        });
        cases.push(case(format!("typ {typ:?}"), token, Expect::Deny(TYP)));
    }
    let token = f.with_header(|h| {
        h.insert("typ".into(), json!(42));
    });
    cases.push(case("typ not a string", token, Expect::Deny(TYP)));
    for typ in ["JWT", "at+jwt"] {
        let token = f.with_header(|h| {
            h.insert("typ".into(), json!(typ));
        });
        cases.push(case(format!("typ {typ}"), token, accept()));
    }
    let token = f.with_header(|h| {
        h.remove("typ");
    });
    cases.push(case("typ absent", token, accept()));
    f.run(cases).await;
}
