//! Test helpers: fixed keys, token minting, settings, and a small issuer on 127.0.0.1 whose
//! discovery document and JWKS a test can change, slow down or break, and whose JWKS requests
//! it counts.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis_config::{OidcSettings, Settings};
use serde_json::{json, Value};

use super::unix_now;

/// An RSA 2048 key (PKCS#1). Generated for these tests only.
pub(crate) const RSA_A_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEAmA8nBvgQcz3nRejN4/vjhrvn9171T9iB+jOd1zmAXfrumKNE\n\
UqE0/Kn85hvAn3LA6wdtHTIWjIBmyICQuvDlg0IXfCHZdd6QKVhWiMzwxB9AltWr\n\
/j5LtkB/Lak7kcBdlYJ7sn4+odyYWsfp156xHDmjv0rgvjgur7QFGk1BJ1Q0iDL5\n\
8mzgWM9UmOrMYS3aBm7J+7GHngIS9eIAOfdrGMnqtI3btEov/owHsRtiO+UJCZ5h\n\
P3gygVifxMKRSe+8WaeCdB4+yWAxJSXSvtFNxVAMceQn4b051e0CX8G2da71IdlJ\n\
7QVI2GHlZwAxHRxPBgVUEJCecqzldRpdiZ49uwIDAQABAoIBAD2jKsE+7cAhEC38\n\
6/Slxrl3UtSpt8upaiqHIMy84MV3sZ7K06eg9A8VQs/t4PthM0UyCe9jPdOvOrq8\n\
rq4wdwBpWoa1W+ZVFN/FkLI8TL5bIr3hmCnji6Ixa7wRFPYEYYr4zPZyCSZoepOV\n\
5LrD92wHC1K/4fEJahdL5COgvC/Z6DbGzbrfGrV1WsidR+BoA4H7L4F8JB0hpbk0\n\
XefuRXzB/V+8gUHvJMXHZGwJJO/vgnSFsjFISjOImmUkcGAocgioLlpENXiqvmIe\n\
O/nV/U3jS3EMP1g+9yZky3gVzBjN2RBjnCcirv4V91r0hLOSqaJ/pDzW6mgeD3vE\n\
H9ZPo+UCgYEA1tUoCAXhDP7XdzzWDJAsE62yrGIyjrcxqHsxAUsFVEVw8z4Y38C8\n\
y+hUqjFm7iqOgmMqycO35ZCVDIk7PtKwR8zv6XJa1rJ178jw1XNzdE+gw8QQnsuk\n\
7/HiCc+mgDvZbc01cfPFDUOXrHL1i9894qe+SgKypSNO1f1CIEaF77UCgYEAtTKT\n\
3u2852AnfvDkmulTaqKyyGHBuAy9uO/NueYmjScQutAXs82UlSllcMSRLdS1yM9H\n\
uVsqUnbEWztsmE+HF3MsZIbVffwm+sdOe2cNghOaVLKDPqYWDwvnruW78+MJw86w\n\
rxfOITyxYoL/D5IR0CYByKuYx+/SPhxaqhB0fa8CgYB948LlkKxkdSHGGbxE+Gcb\n\
0PmW0qRVxTwwQqBg5Zll3JtnrsfctpDr3GVgpjpu7jk8Zug3+5zTxXnSMsio88Wh\n\
DZK49e4NSd6aeOHH8zOAwPiwP0CODT/F67RNk4U6N9gd49ahw/uA3k8PGv6QzGzz\n\
WODFdfdBlgMompQZXbo20QKBgDtXWBQfOclwtR6el8+f8GCw7eowEbhL++pQJsjl\n\
9eQuUg1MTybkge+jwgP/bChdTDd6otuyXpbpLH9QY80x5mUoo/Y8Ljj3VnC0yyAg\n\
7MyXzOhGGjNvQzQkSvj9ZeOGjFEjJLwDCM/bx6AilJOt28WWXOkyQXPhN7J9qLef\n\
cfcjAoGBAMw4KxXoNqsiZaxOIScacZRh5OrbL8y+YJIw2VkaaZRb97Z8KtePzydv\n\
xH577RjULH2OkhKKQJ3BcRSnpXJj/dGQss1UrLlylo6Aupg/uqu+H8Y4OmuySLHC\n\
y/RT1yOT/JyTnp4USSuOmI1u6J7hNCyA4U2KwM48yRTto+H3tfYa\n\
-----END RSA PRIVATE KEY-----\n\
";

/// A second RSA 2048 key (PKCS#1). Generated for these tests only.
pub(crate) const RSA_B_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEA5lOdPz1heXCMF1h0ynyDwjqGgDmfq9zhGqGRR+SA9QDmFZkv\n\
ki2YWB8PYaWHvUWEMXMnaPIXpMBkqYmBwE5S9o0GpgZZYySooqfc/v8RA4Io/KlK\n\
HkJcqqIJwC1c3CWqudjX4nbS0UhbsOa7ukN57iKrbHVo0kx4kmcLg4M0yQrV2gth\n\
Wd/UaVR/X3yhHEh0zpCp6JJnVrDyE4QBHIqeRJcNkOd8uBqIFJgFATRV8GjA3rGb\n\
N6ZndqP4AWgXGqY3W1mqtJyzW0S+SyWHVILI5x0799iDHjzoPP+RpBwfHVvcCIpY\n\
oc38MVaUMnJnQtzz148UARB2ZcT2YU36w+HySQIDAQABAoIBAAQs19jhn/a3l5KE\n\
w/k3sJvAu9dvM/nFkz8MVrna5ouKbKFPmZEoym4ugfTfL0q7C95pm/lHCi6uXiTE\n\
nVmDEfXuMISp8MzfST9Jk7P7o69QmLWbzAAoa82cClk1eU10UVf1GlS8mq24hhD6\n\
3cROnNM4Ras9pZzKThU5UPgdVMOgKdpwGUqCFd5guLgdUa0J85+saOPlSvRs6iKN\n\
oyfWeegjdoj7X9Txg96uPPYaMfRFrhuCkeLCsn8wo5R/gm5vqb9TEVuKfRSIW5oZ\n\
RbyOqMFqgMBuJTrSS9AXVCTaPsxgNoFg0ulhTi+5XUzCnm3lE+qengZCKqVXOS9M\n\
XM76DZECgYEA9QakrsiMQgqZCGKQ+Cyt6ORDclyqARaiCfixg7UzP3gNQJEK8zT1\n\
Lv/fbecMSA5lFGJPftsO3m/tE7RZg6AuBZ08iOowPAQAZEI+Ts74mgPOfCa1n25W\n\
Ff7deP0UuBB1qD1Unc/wzF2D/mXJb4NpC4tCCG6ph2GIkP94UUmnl9sCgYEA8KRv\n\
YB7SMpfsymrPsQwg3lABPmBW+iLHrL6kcCgRLRquSeMBbP/WvCnQzVTzdoJqmGeM\n\
6Fuatk2UrcDBOyPSqOkJKPxzOlpnqarDDeRE8axNa5NQNxaTgZEQznxHQyU/OXwO\n\
BHkJPWWW48eBfhoQZHwGOe26WSSWW1t3r6dLeasCgYAs2ot5B3NNf50mAM0i8SLg\n\
2DBUlgv06Qy+oIz2XExGWRar9CE6Bj6/3M0s1DfWVPRB+AEvarBdHcYbbk9YnhDu\n\
rCrxsVUlF2Ju+AVp7c9qejnpVji3N76AhkhKpqGNVE4FfzynKvKcpp3MCxwF0tt+\n\
5n4vBvr3sm4KhQmkb8RDMwKBgQDAny8TprgkjV2aTVNAae/pY+sK7fzRLoPcb6Ga\n\
sUfGbePy+sWKZWOSrHoZ0hUr2IrQwZqV57V4lbMcPf2uhCc804RkjWcC35i4xBps\n\
BTt2o7A5GusLnYOnI+JrFinIwojQT8+8ntHZlnbojyrFMMHMXUZymise7d149Udh\n\
kC0nDwKBgA3sOX9/FXq903/OPedy9oKImGG3BjEgHi0vD5SaIYTcpidHi1tu7+vk\n\
QXE7aFx7WYAPGw0fNcdO1kk95HkcZOTGIzhztRxxws6bRlNrN28G/Bwj1tS5hE/8\n\
VfvIsonBVZf0o94m+0mtIMhfArkTcj16TzAScGbz2UsQmb8SCR4R\n\
-----END RSA PRIVATE KEY-----\n\
";

/// The public modulus of an RSA 1024 key, too weak to be loaded (the crypto library refuses
/// to sign with it, so only the public half is kept). Generated for these tests only.
pub(crate) const RSA_WEAK_N: &str = "zZZ9ShMcgRjlrFCKxDCQHQ-j9q_kgKfvvIk7aIYIMY-XT39RUb21e9WAaipO80FKcv0N8VcqPgcsgDV-_K0GhLbTmtJdL6j5PAsDWHpjEKMDHR7TogLKI_jm289k1rdBzoa6MJY-ctN3CLWj74ym67dyzIZp3trSDPrVctPKNRs";

/// A P-256 key (PKCS#8). Generated for these tests only.
pub(crate) const EC_P256_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgY9yBUkutF8TvCoER\n\
9YDWVafkaldj/4Sdp2cFPAdAfd+hRANCAAQpsrvZewjGtDcK+2LvsFxt9ji7atDX\n\
JU6YODJHXKqdqQCpLqDaf7ZrZWNLTmbjGG63cH3yxo0ONkNIZNuwrevV\n\
-----END PRIVATE KEY-----\n\
";

/// An Ed25519 key (PKCS#8). Generated for these tests only.
pub(crate) const ED25519_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEIAVNS4u2BP0Od/7OZm2oqA+nHdYmxWyq+GUVb2tgL99R\n\
-----END PRIVATE KEY-----\n\
";

/// The client id test tokens carry in `aud`.
pub(crate) const CLIENT_ID: &str = "portcullis-test";

/// Base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch, whole.
pub(crate) fn now() -> i64 {
    unix_now() as i64
}

/// A private key that signs test tokens, with its public JWK.
pub(crate) struct TestKey {
    pub(crate) kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn build(key: EncodingKey, alg: Algorithm, kid: &str) -> Self {
        let jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        let mut jwk = serde_json::to_value(jwk).expect("JWK JSON");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
        }
    }

    /// An RSA key signing with `alg` (RS* or PS*).
    pub(crate) fn rsa(pem: &str, kid: &str, alg: Algorithm) -> Self {
        Self::build(
            EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
            alg,
            kid,
        )
    }

    /// The first RSA key, RS256.
    pub(crate) fn rsa_a(kid: &str) -> Self {
        Self::rsa(RSA_A_PEM, kid, Algorithm::RS256)
    }

    /// The second RSA key, RS256.
    pub(crate) fn rsa_b(kid: &str) -> Self {
        Self::rsa(RSA_B_PEM, kid, Algorithm::RS256)
    }

    /// The P-256 key, ES256.
    pub(crate) fn ec(kid: &str) -> Self {
        Self::build(
            EncodingKey::from_ec_pem(EC_P256_PEM.as_bytes()).expect("EC PEM"),
            Algorithm::ES256,
            kid,
        )
    }

    /// The Ed25519 key, EdDSA.
    pub(crate) fn ed(kid: &str) -> Self {
        Self::build(
            EncodingKey::from_ed_pem(ED25519_PEM.as_bytes()).expect("Ed25519 PEM"),
            Algorithm::EdDSA,
            kid,
        )
    }

    /// The public JWK (with `kid`, `alg` and `use: sig`).
    pub(crate) fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The JWS name of the algorithm.
    pub(crate) fn alg_name(&self) -> String {
        serde_json::to_value(self.alg)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("algorithm name")
    }

    /// Signs raw header and claims JSON text (so tests can write duplicates and odd types).
    pub(crate) fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.alg).expect("signature");
        format!("{input}.{signature}")
    }

    /// Signs `claims` under `header`.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// The usual header: this key's `alg` and `kid`, `typ: JWT`.
    pub(crate) fn header(&self) -> Value {
        json!({ "alg": self.alg_name(), "kid": self.kid, "typ": "JWT" })
    }

    /// A token with the usual header.
    pub(crate) fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

/// Valid claims for `issuer`: audience, five minutes of life, `email` and `groups`.
pub(crate) fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": CLIENT_ID,
        "sub": "user-1",
        "email": "alice@example.com",
        "groups": ["readers", "writers"],
        "iat": now,
        "nbf": now - 1,
        "exp": now + 300,
    })
}

/// A JWKS document holding `keys`.
pub(crate) fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// OIDC settings for `issuer` through the real parser, with `extra` variables.
pub(crate) fn settings(issuer: &str, extra: &[(&str, &str)]) -> OidcSettings {
    let mut vars = vec![
        ("AUTHENTICATION_OIDC_ENABLED", "true"),
        ("AUTHENTICATION_OIDC_ISSUER", issuer),
        ("AUTHENTICATION_OIDC_CLIENT_ID", CLIENT_ID),
        ("AUTHENTICATION_OIDC_USERNAME_CLAIM", "email"),
        ("AUTHENTICATION_OIDC_GROUPS_CLAIM", "groups"),
    ];
    vars.extend_from_slice(extra);
    match Settings::from_vars(vars) {
        Ok(settings) => settings.authentication.oidc.expect("OIDC on"),
        Err(err) => panic!("test settings: {err}"),
    }
}

/// What the issuer serves; tests change it through [`FakeIssuer::state`].
pub(crate) struct IssuerState {
    /// Status and body of the discovery document; `None` serves the right one.
    pub(crate) discovery: Option<(u16, String)>,
    /// Status of the JWKS response.
    pub(crate) jwks_status: u16,
    /// The JWKS body.
    pub(crate) jwks: String,
    /// `Cache-Control` of the JWKS response.
    pub(crate) cache_control: Option<String>,
    /// A `Location` for a 302 from the JWKS URL.
    pub(crate) redirect: Option<String>,
    /// Delay before every answer.
    pub(crate) delay: Duration,
    /// JWKS requests received.
    pub(crate) jwks_hits: usize,
    /// Discovery requests received.
    pub(crate) discovery_hits: usize,
    /// `id_token_signing_alg_values_supported`.
    pub(crate) algorithms: Vec<String>,
}

/// An issuer on 127.0.0.1 serving discovery at `/.well-known/openid-configuration` and the
/// JWKS at `/jwks`.
pub(crate) struct FakeIssuer {
    /// `http://127.0.0.1:<port>`: the issuer URL.
    pub(crate) url: String,
    state: Arc<Mutex<IssuerState>>,
    server: actix_web::dev::ServerHandle,
}

impl FakeIssuer {
    /// Starts an issuer serving `jwks`. Must run inside an actix system.
    pub(crate) fn start(jwks: String) -> FakeIssuer {
        let state = Arc::new(Mutex::new(IssuerState {
            discovery: None,
            jwks_status: 200,
            jwks,
            cache_control: None,
            redirect: None,
            delay: Duration::ZERO,
            jwks_hits: 0,
            discovery_hits: 0,
            algorithms: ["RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256"]
                .map(str::to_owned)
                .to_vec(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("issuer address"));
        let data = web::Data::new((state.clone(), url.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(serve_jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeIssuer {
            url,
            state,
            server: handle,
        }
    }

    /// The served state, to read or change.
    pub(crate) fn state(&self) -> MutexGuard<'_, IssuerState> {
        self.state.lock().expect("issuer state")
    }

    /// JWKS requests so far.
    pub(crate) fn jwks_hits(&self) -> usize {
        self.state().jwks_hits
    }

    /// Stops the issuer's server (connections are then refused).
    pub(crate) async fn stop(&self) {
        self.server.stop(false).await;
    }
}

type Shared = web::Data<(Arc<Mutex<IssuerState>>, String)>;

async fn discovery(data: Shared) -> HttpResponse {
    let (delay, answer) = {
        let mut state = data.0.lock().expect("issuer state");
        state.discovery_hits += 1;
        let answer = state.discovery.clone().unwrap_or_else(|| {
            let doc = json!({
                "issuer": data.1,
                "jwks_uri": format!("{}/jwks", data.1),
                "id_token_signing_alg_values_supported": state.algorithms,
            });
            (200, doc.to_string())
        });
        (state.delay, answer)
    };
    tokio::time::sleep(delay).await;
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answer.0).expect("status"))
        .content_type("application/json")
        .body(answer.1)
}

async fn serve_jwks(data: Shared) -> HttpResponse {
    let (delay, status, body, cache_control, redirect) = {
        let mut state = data.0.lock().expect("issuer state");
        state.jwks_hits += 1;
        (
            state.delay,
            state.jwks_status,
            state.jwks.clone(),
            state.cache_control.clone(),
            state.redirect.clone(),
        )
    };
    tokio::time::sleep(delay).await;
    if let Some(location) = redirect {
        return HttpResponse::Found()
            .insert_header(("Location", location))
            .finish();
    }
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    if let Some(cc) = cache_control {
        response.insert_header(("Cache-Control", cc));
    }
    response.content_type("application/json").body(body)
}

/// Polls `check` every 20 ms for up to `timeout`.
pub(crate) async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
