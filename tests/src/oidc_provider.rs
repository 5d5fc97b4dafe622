//! The real OpenID provider for the OIDC tests: `oidc-provider` (npm) run by Node from
//! `tests/oidc-provider/provider.mjs` on 127.0.0.1:0. The first use in a test process installs
//! its npm packages if `node_modules` is missing (`npm ci`, from the committed lock file).
//! Dropping an [`OidcProvider`] kills Node.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The provider's client that gets 10-minute tokens (client credentials and password grants).
pub const CLIENT: (&str, &str) = ("portcullis", "portcullis-secret");
/// The provider's client whose tokens live 2 seconds.
pub const SHORT_CLIENT: (&str, &str) = ("portcullis-short", "short-secret");
/// The username in client-credentials tokens of [`CLIENT`].
pub const SERVICE_USERNAME: &str = "svc-portcullis";
/// The groups in client-credentials tokens of [`CLIENT`].
pub const SERVICE_GROUPS: &[&str] = &["services"];
/// Password-grant users: name, password, groups (as in `provider.mjs`).
pub const USERS: &[(&str, &str, &[&str])] = &[
    ("alice", "alice-password", &["admins", "staff"]),
    ("bob", "bob-password", &["readers"]),
];
/// The audience of every token, the client id the tests configure.
pub const AUDIENCE: &str = "portcullis";

/// How long Node may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// Installs the provider's npm packages once per test process if they are missing.
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let dir = provider_dir();
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return Ok(());
        }
        let subcommand = if dir.join("package-lock.json").exists() {
            "ci"
        } else {
            "install"
        };
        let status = std::process::Command::new("npm")
            .args([subcommand, "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!(
                "`npm {subcommand}` in {} failed ({s}); run it by hand to see why",
                dir.display()
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "npm is not installed; the OIDC tests need Node.js >= 20 and npm \
                 (Debian: apt-get install -y nodejs npm), then `npm ci` in {}",
                dir.display()
            )),
            Err(err) => Err(format!("could not run npm: {err}")),
        }
    });
    if let Err(why) = result {
        panic!("{why}");
    }
}

/// A running provider. Dropping it kills the Node process.
pub struct OidcProvider {
    _child: Child,
    issuer: String,
    _log_dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

/// A refused token request.
#[derive(Debug)]
pub struct TokenError {
    /// The HTTP status.
    pub status: u16,
    /// The error body.
    pub body: Value,
}

impl OidcProvider {
    /// Starts the provider on 127.0.0.1:0 and waits for its address.
    pub async fn start() -> OidcProvider {
        tokio::task::spawn_blocking(ensure_installed)
            .await
            .expect("npm install task");
        let log_dir = tempfile::tempdir().expect("temp dir");
        let stderr_path = log_dir.path().join("provider.stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("provider log file");
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .args(["--port", "0", "--audience", AUDIENCE])
            .current_dir(provider_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run `node` ({err}): the OIDC tests need Node.js >= 20 (Debian: apt-get install -y nodejs npm)")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("oidc-provider listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        };
        let issuer = match tokio::time::timeout(START_TIMEOUT, wait).await {
            Ok(Some(url)) => url,
            _ => panic!(
                "oidc-provider did not start: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
        };
        // Nothing else is printed to stdout; keep draining it so Node never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        OidcProvider {
            _child: child,
            issuer,
            _log_dir: log_dir,
            stderr_path,
        }
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What Node wrote to standard error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    async fn token(
        &self,
        client: (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<String, TokenError> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = crate::client()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.0, Some(client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token endpoint reachable");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("token response JSON");
        match (status, body["access_token"].as_str()) {
            (200, Some(token)) => Ok(token.to_owned()),
            _ => Err(TokenError { status, body }),
        }
    }

    /// A client-credentials token of [`CLIENT`] (10 minutes).
    pub async fn token_client_credentials(&self) -> String {
        self.token(CLIENT, &[("grant_type", "client_credentials")])
            .await
            .expect("client-credentials token")
    }

    /// A password-grant token for `user`, or the provider's refusal.
    pub async fn try_token_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<String, TokenError> {
        self.token(
            CLIENT,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ],
        )
        .await
    }

    /// A password-grant token for `user` (10 minutes).
    pub async fn token_password(&self, user: &str, password: &str) -> String {
        self.try_token_password(user, password)
            .await
            .expect("password-grant token")
    }

    /// A client-credentials token of [`SHORT_CLIENT`], valid 2 seconds.
    pub async fn short_lived_token(&self) -> String {
        self.token(SHORT_CLIENT, &[("grant_type", "client_credentials")])
            .await
            .expect("short-lived token")
    }

    async fn control(&self, path: &str) -> Value {
        let response = crate::client()
            .post(format!("{}/__control/{path}", self.issuer))
            .send()
            .await
            .expect("control endpoint reachable");
        assert_eq!(response.status(), 200, "POST /__control/{path}");
        response.json().await.expect("control response JSON")
    }

    /// Rotates the signing key: a new key signs from now on, the old ones stay published.
    /// Returns the new `kid`.
    pub async fn rotate(&self) -> String {
        let reply = self.control("rotate").await;
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// Stops publishing every key but the newest. Returns the remaining `kid`.
    pub async fn drop_old_key(&self) -> String {
        let reply = self.control("drop-old").await;
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// The published JWKS.
    pub async fn jwks(&self) -> Value {
        crate::client()
            .get(format!("{}/jwks", self.issuer))
            .send()
            .await
            .expect("jwks reachable")
            .json()
            .await
            .expect("jwks JSON")
    }

    /// Requests the provider has served on `path` (JWKS: `/jwks`).
    pub async fn requests(&self, path: &str) -> u64 {
        let stats: Value = crate::client()
            .get(format!("{}/__control/stats", self.issuer))
            .send()
            .await
            .expect("stats reachable")
            .json()
            .await
            .expect("stats JSON");
        stats["requests"][path].as_u64().unwrap_or(0)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use portcullis_testkit::decode_unverified;

    fn verify(token: &str, jwks: &Value, issuer: &str) -> Value {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let (header, _) = decode_unverified(token);
        let jwk = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .unwrap_or_else(|| panic!("kid {} not published", header["kid"]));
        let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_jwk(&jwk).expect("key"),
            &validation,
        )
        .expect("token verifies against the published JWKS")
        .claims
    }

    #[tokio::test]
    async fn issues_verifiable_jwt_access_tokens_and_rotates_keys() {
        let provider = OidcProvider::start().await;
        let discovery: Value = crate::client()
            .get(format!(
                "{}/.well-known/openid-configuration",
                provider.issuer()
            ))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        assert_eq!(discovery["issuer"], provider.issuer());
        let jwks = provider.jwks().await;

        let token = provider.token_client_credentials().await;
        let (header, _) = decode_unverified(&token);
        assert_eq!(header["typ"], "at+jwt");
        let claims = verify(&token, &jwks, provider.issuer());
        assert_eq!(claims["preferred_username"], SERVICE_USERNAME);
        assert_eq!(claims["groups"], serde_json::json!(SERVICE_GROUPS));

        let (user, password, groups) = USERS[0];
        let claims = verify(
            &provider.token_password(user, password).await,
            &jwks,
            provider.issuer(),
        );
        assert_eq!(claims["preferred_username"], user);
        assert_eq!(claims["groups"], serde_json::json!(groups));
        let refused = provider
            .try_token_password(user, "wrong")
            .await
            .expect_err("wrong password");
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body["error"], "invalid_grant");

        let short = verify(
            &provider.short_lived_token().await,
            &jwks,
            provider.issuer(),
        );
        assert_eq!(
            short["exp"].as_i64().unwrap() - short["iat"].as_i64().unwrap(),
            2
        );

        let old_kid = header["kid"].as_str().expect("kid").to_owned();
        let new_kid = provider.rotate().await;
        assert_ne!(new_kid, old_kid);
        let rotated = provider.token_client_credentials().await;
        assert_eq!(decode_unverified(&rotated).0["kid"], new_kid.as_str());
        let jwks = provider.jwks().await;
        verify(&rotated, &jwks, provider.issuer());
        verify(&token, &jwks, provider.issuer());

        assert_eq!(provider.drop_old_key().await, new_kid);
        let jwks = provider.jwks().await;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert_eq!(kids, [new_kid.as_str()]);
        assert!(provider.requests("/jwks").await >= 3);
    }
}
