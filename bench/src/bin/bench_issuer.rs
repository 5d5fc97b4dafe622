//! The benchmark's OpenID issuer: serves discovery and a JWKS (one RS256 key) on 127.0.0.1,
//! mints valid tokens for the load generator, and measures two single-core RS256 rates: the
//! signature check with aws-lc-rs and a key parsed once (what the server does since it verifies
//! every algorithm with aws-lc-rs directly), and jsonwebtoken's whole `decode` (the reference
//! the benchmark's new-token bar was first set against; jsonwebtoken now only signs test tokens).
//!
//! Usage: `bench_issuer <tokens-file> <count>`. Prints `issuer <url>`, `tokens <n>`,
//! `rs256_parsed_verify_per_sec <rate>` (the signature alone, with a key parsed once) and
//! `rs256_verify_per_sec <rate>` (jsonwebtoken's `decode`: key rebuilt, signature and claims
//! checked, per token), then serves until killed.

use std::io::Write;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_testkit::{FaultIssuer, TestKey, CLIENT_ID};
use serde_json::{json, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: bench_issuer <tokens-file> <count>");
    let count: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .expect("usage: bench_issuer <tokens-file> <count>");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let key = TestKey::rsa_a();
        let issuer = FaultIssuer::start(&[&key]).await;
        println!("issuer {}", issuer.url());

        // Tokens valid for an hour, each distinct (random jti), minted on two threads.
        let halves: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|part| {
                    let issuer = &issuer;
                    let key = &key;
                    let n = count / 2 + if part == 0 { count % 2 } else { 0 };
                    scope.spawn(move || {
                        (0..n)
                            .map(|_| {
                                issuer.token_with(key, |_, claims| {
                                    let exp = claims["iat"].as_i64().unwrap_or(0) + 3600;
                                    claims.insert("exp".into(), json!(exp));
                                })
                            })
                            .collect::<Vec<String>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("minting thread"))
                .collect()
        });
        let tokens: Vec<String> = halves.into_iter().flatten().collect();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("tokens file"));
        for token in &tokens {
            writeln!(file, "{token}").expect("write token");
        }
        file.flush().expect("flush tokens");
        println!("tokens {}", tokens.len());

        // Single-core RS256 signature checks with a key parsed once (what the server does).
        let b64 = |field: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(key.jwk()[field].as_str().expect("jwk field"))
                .expect("base64url")
        };
        let (n, e) = (b64("n"), b64("e"));
        let parsed = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
            .expect("parsed key");
        let split: Vec<(String, Vec<u8>)> = tokens[..tokens.len().min(2000)]
            .iter()
            .map(|t| {
                let (input, sig) = t.rsplit_once('.').expect("three segments");
                use base64::Engine;
                let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(sig)
                    .expect("signature");
                (input.to_owned(), sig)
            })
            .collect();
        let started = Instant::now();
        let mut checked = 0usize;
        while started.elapsed() < Duration::from_secs(2) {
            for (input, sig) in &split {
                if parsed.verify_sig(input.as_bytes(), sig).is_ok() {
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "no signature verified");
        let parsed_rate = checked as f64 / started.elapsed().as_secs_f64();
        println!("rs256_parsed_verify_per_sec {parsed_rate:.0}");

        // Single-core RS256 verification rate with jsonwebtoken, signature and claims.
        let jwk: Jwk = serde_json::from_value(key.jwk()).expect("jwk");
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[issuer.url()]);
        let sample = &tokens[..tokens.len().min(2000)];
        let started = Instant::now();
        let mut verified = 0usize;
        while started.elapsed() < Duration::from_secs(2) {
            for token in sample {
                if jsonwebtoken::decode::<Value>(token, &decoding, &validation).is_ok() {
                    verified += 1;
                }
            }
        }
        let rate = verified as f64 / started.elapsed().as_secs_f64();
        assert!(
            verified > 0,
            "no token verified: the benchmark tokens are wrong"
        );
        println!("rs256_verify_per_sec {rate:.0}");
        std::io::stdout().flush().expect("flush stdout");
        std::future::pending::<()>().await;
    });
}
