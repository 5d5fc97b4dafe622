//! The test signing keys: the PEM files in `tests/fixtures/oidc/` (see its README), each with
//! the `kid` it is published under and the algorithm it signs with.

use std::sync::Once;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Map, Value};

use crate::token::jws;

/// A signing key, the `kid` it is published under and the algorithm it signs with.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    alg: &'static str,
    material: Material,
}

#[derive(Clone)]
enum Material {
    /// RSA. `encoding` is None for keys too weak for aws-lc (they are signed with `rsa`).
    Rsa {
        private: Box<rsa::RsaPrivateKey>,
        encoding: Option<EncodingKey>,
    },
    /// ECDSA P-256 or Ed25519: `jwk` holds the public parameters.
    Other { encoding: EncodingKey, jwk: Value },
}

pub(crate) fn install_crypto() {
    static ONCE: Once = Once::new();
    // If the workspace ever enables both backends, jsonwebtoken needs one chosen explicitly.
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/oidc/", $name))
    };
}

impl TestKey {
    fn rsa(pem: &str, kid: &str) -> TestKey {
        install_crypto();
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("RSA fixture");
        let encoding = (private.size() >= 256)
            .then(|| EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA fixture"));
        TestKey {
            kid: kid.to_owned(),
            alg: "RS256",
            material: Material::Rsa {
                private: Box::new(private),
                encoding,
            },
        }
    }

    fn other(encoding: EncodingKey, alg: &'static str, kid: &str) -> TestKey {
        install_crypto();
        let algorithm: Algorithm = alg.parse().expect("algorithm");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, algorithm)
            .expect("public JWK of a fixture key");
        let jwk = serde_json::to_value(jwk).expect("jwk json");
        TestKey {
            kid: kid.to_owned(),
            alg,
            material: Material::Other { encoding, jwk },
        }
    }

    /// RSA 2048, kid `rsa-a`, RS256.
    pub fn rsa_a() -> TestKey {
        Self::rsa(fixture!("rsa-a.pem"), "rsa-a")
    }

    /// RSA 2048, kid `rsa-b`, RS256.
    pub fn rsa_b() -> TestKey {
        Self::rsa(fixture!("rsa-b.pem"), "rsa-b")
    }

    /// RSA 2048, kid `rsa-c`, RS256 (the "attacker" key in the hostile tests; it has a
    /// self-signed certificate for `x5c`).
    pub fn rsa_c() -> TestKey {
        Self::rsa(fixture!("rsa-c.pem"), "rsa-c")
    }

    /// RSA 1024 (too weak: must be ignored when published), kid `rsa-1024`, RS256.
    pub fn rsa_1024() -> TestKey {
        Self::rsa(fixture!("rsa-1024.pem"), "rsa-1024")
    }

    /// ECDSA P-256, kid `ec-a`, ES256.
    pub fn ec_a() -> TestKey {
        let encoding =
            EncodingKey::from_ec_pem(fixture!("ec-p256-a.pem").as_bytes()).expect("EC fixture");
        Self::other(encoding, "ES256", "ec-a")
    }

    /// ECDSA P-256, kid `ec-b`, ES256.
    pub fn ec_b() -> TestKey {
        let encoding =
            EncodingKey::from_ec_pem(fixture!("ec-p256-b.pem").as_bytes()).expect("EC fixture");
        Self::other(encoding, "ES256", "ec-b")
    }

    /// Ed25519, kid `ed-a`, EdDSA.
    pub fn ed25519() -> TestKey {
        let encoding =
            EncodingKey::from_ed_pem(fixture!("ed25519.pem").as_bytes()).expect("Ed fixture");
        Self::other(encoding, "EdDSA", "ed-a")
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: &str) -> TestKey {
        self.kid = kid.to_owned();
        self
    }

    /// The same RSA key signing with another RS* or PS* algorithm (published with it too).
    pub fn with_alg(mut self, alg: &'static str) -> TestKey {
        assert!(
            matches!(self.material, Material::Rsa { .. }),
            "with_alg is for RSA keys"
        );
        self.alg = alg;
        self
    }

    /// The `kid` it is published under.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its algorithm (`RS256`, `PS256`, `ES256`, `EdDSA`).
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// `{"alg", "kid", "typ": "JWT"}`.
    pub fn header(&self) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("alg".into(), json!(self.alg));
        header.insert("kid".into(), json!(self.kid));
        header.insert("typ".into(), json!("JWT"));
        header
    }

    /// The public JWK: `kty`, its parameters, `kid`, `alg`, `use: sig`.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Rsa { private, .. } => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
            }),
            Material::Other { jwk, .. } => {
                let mut public = Map::new();
                for name in ["kty", "crv", "x", "y"] {
                    if let Some(v) = jwk.get(name) {
                        public.insert(name.into(), v.clone());
                    }
                }
                Value::Object(public)
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public key as an SPKI PEM (RSA keys only), e.g. for HS256 key-confusion tokens.
    pub fn public_pem(&self) -> String {
        match &self.material {
            Material::Rsa { private, .. } => private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public PEM"),
            Material::Other { .. } => panic!("public_pem is for RSA keys"),
        }
    }

    /// The self-signed certificate of `rsa_c` as an `x5c` entry (standard base64 DER).
    pub fn attacker_x5c() -> String {
        let pem = fixture!("rsa-c.crt.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // Re-encode to prove it is base64 DER.
        STANDARD.encode(STANDARD.decode(body).expect("certificate base64"))
    }

    /// Signs `message` with `alg` (raw signature bytes: r||s for ECDSA). RSA keys sign any
    /// RS*/PS* algorithm; the weak RSA key only RS256.
    pub fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        match &self.material {
            Material::Rsa {
                encoding: Some(encoding),
                ..
            }
            | Material::Other { encoding, .. } => {
                let algorithm: Algorithm = alg
                    .parse()
                    .unwrap_or_else(|_| panic!("cannot sign with {alg}"));
                let signature = jsonwebtoken::crypto::sign(message, encoding, algorithm)
                    .unwrap_or_else(|err| panic!("sign with {alg} and {}: {err}", self.kid));
                URL_SAFE_NO_PAD.decode(signature).expect("signature base64")
            }
            Material::Rsa {
                private,
                encoding: None,
            } => {
                assert_eq!(alg, "RS256", "the weak key signs RS256 only");
                let signer = SigningKey::<sha2::Sha256>::new((**private).clone());
                signer.sign(message).to_vec()
            }
        }
    }

    /// A token of `claims` under this key's [`header`](Self::header), signed with its algorithm.
    pub fn token(&self, claims: &Value) -> String {
        self.signed(&Value::Object(self.header()), claims)
    }

    /// A token of `claims` under `header` (as given, whatever its `alg`), signed with this
    /// key's algorithm.
    pub fn signed(&self, header: &Value, claims: &Value) -> String {
        self.signed_text(&header.to_string(), &claims.to_string())
    }

    /// A token of exactly these header and claims texts (so tests can write duplicate members
    /// and odd types), signed with this key's algorithm.
    pub fn signed_text(&self, header: &str, claims: &str) -> String {
        jws(header.as_bytes(), claims.as_bytes(), |message| {
            self.sign(self.alg, message)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_key_signs_valid_pkcs1_signatures() {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        let key = TestKey::rsa_1024();
        let message = b"header.payload";
        let signature = key.sign("RS256", message);
        assert_eq!(signature.len(), 128);
        let Material::Rsa { private, .. } = &key.material else {
            panic!("rsa key")
        };
        let verifier = VerifyingKey::<sha2::Sha256>::new(private.to_public_key());
        let signature = Signature::try_from(signature.as_slice()).expect("signature");
        verifier.verify(message, &signature).expect("verifies");
        assert_eq!(key.jwk()["kty"], "RSA");
    }

    #[test]
    fn hand_built_tokens_keep_the_exact_bytes() {
        use crate::token::hmac;
        let key = TestKey::rsa_a();
        let header = br#"{"alg":"RS256","alg":"none","kid":"rsa-a"}"#;
        let token = jws(header, b"\xff\xfe", |m| key.sign("RS256", m));
        let first = token.split('.').next().expect("segment");
        assert_eq!(URL_SAFE_NO_PAD.decode(first).expect("b64"), header);
        assert_eq!(token.split('.').count(), 3);
        // HS256 with the public key as the secret, the classic key confusion.
        assert_eq!(hmac("HS256", key.public_pem().as_bytes(), b"a.b").len(), 32);
        assert_eq!(hmac("HS512", b"k", b"a.b").len(), 64);
        assert!(TestKey::attacker_x5c().starts_with("MII"));
        assert_eq!(
            key.public_pem().lines().next(),
            Some("-----BEGIN PUBLIC KEY-----")
        );
    }
}
