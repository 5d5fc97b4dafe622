//! The engine of the hostile-token suite (`tests/tests/oidc_hostile/`): a [`Fixture`] (a
//! server with OIDC against a fault issuer), [`Case`]s with what each must get ([`Expect`]),
//! and [`Fixture::run`], which checks every case (status, body, challenge, the outcome counted
//! in `portcullis_auth_requests_total`, and "no fetch" where the row says so) and then fails
//! listing every case that went wrong. Rows are those of `docs/hostile-inputs.md`.

use std::time::Duration;

use portcullis_config::vars;
use portcullis_testkit::{jws, random_id, FaultIssuer, TestKey, JWKS_PATH};
use serde_json::{json, Map, Value};

use crate::assert::{invalid_credential_body, CHALLENGE_INVALID_REQUEST, CHALLENGE_INVALID_TOKEN};
use crate::oidc_support::{
    oidc_server, own_info_within, wait_until_accepted, with_api_key, AuthCounts,
};
use crate::{client, RawResponse, Server};

/// The kid-miss cooldown every fixture runs with.
pub const COOLDOWN: Duration = Duration::from_secs(1);
/// How long after a "no fetch" case a late fetch is still caught.
pub const FETCH_GRACE: Duration = Duration::from_millis(200);
/// The default leeway (60 s) is what the fixture runs with.
pub const DEFAULT_LEEWAY: i64 = 60;

/// Reasons a malformed token may be counted under: `malformed_token` on the OIDC path, or
/// `invalid_key` where it is not JWT-shaped and so goes the API-key path.
pub const MALFORMED_ANY_PATH: &[&str] = &["malformed_token", "invalid_key"];

/// What a case expects.
#[derive(Clone, Debug)]
pub enum Expect {
    /// 401 `invalid_token`, counted under method `oidc` with one of these reasons.
    Deny(&'static [&'static str]),
    /// As `Deny`, and the issuer sees no request.
    DenyNoFetch(&'static [&'static str]),
    /// 401 `invalid_token` with one of these reasons, under any method (the token may not be
    /// JWT-shaped, which routes it to the API-key path).
    DenyAnyPath(&'static [&'static str]),
    /// As `DenyAnyPath`, and the issuer sees no request.
    DenyAnyPathNoFetch(&'static [&'static str]),
    /// 400 `invalid_request` (the Authorization header itself is malformed).
    BadRequest,
    /// 200 for `alice` with these groups.
    Accept(Vec<&'static str>),
}

/// One hostile token and what the server must answer.
pub struct Case {
    /// What the case tries, for the failure list.
    pub what: String,
    /// The bearer token sent.
    pub token: String,
    /// The expected answer.
    pub expect: Expect,
}

/// A case.
pub fn case(what: impl Into<String>, token: String, expect: Expect) -> Case {
    Case {
        what: what.into(),
        token,
        expect,
    }
}

/// Accepted as `alice` with the standard groups.
pub fn accept() -> Expect {
    Expect::Accept(vec!["staff"])
}

/// A server with OIDC against a fault issuer publishing [`base_jwks`], its keys loaded.
pub struct Fixture {
    /// The issuer the server trusts.
    pub issuer: FaultIssuer,
    /// The server under test.
    pub server: Server,
    /// The published RSA key (`rsa-a`).
    pub rsa: TestKey,
    /// The published P-256 key (`ec-a`).
    pub ec: TestKey,
    /// The published Ed25519 key (`ed-a`).
    pub ed: TestKey,
}

/// The keys every fixture publishes: RSA (kid `rsa-a`), P-256 (`ec-a`), Ed25519 (`ed-a`).
pub fn base_jwks() -> Vec<Value> {
    vec![
        TestKey::rsa_a().jwk(),
        TestKey::ec_a().jwk(),
        TestKey::ed25519().jwk(),
    ]
}

/// A fixture publishing [`base_jwks`] with the default variables.
pub async fn fixture() -> Fixture {
    fixture_with(Vec::new(), &[]).await
}

/// A fixture publishing [`base_jwks`] plus `extra_jwks`, with extra server variables.
pub async fn fixture_with(extra_jwks: Vec<Value>, env: &[(&str, &str)]) -> Fixture {
    let mut jwks = base_jwks();
    jwks.extend(extra_jwks);
    let issuer = FaultIssuer::start_with_jwks(jwks).await;
    let mut builder = with_api_key(oidc_server(&issuer.url()))
        .env(vars::OIDC_REFRESH_INTERVAL, "1h")
        .env(vars::OIDC_KID_MISS_COOLDOWN, "1s");
    for (name, value) in env {
        builder = builder.env(name, *value);
    }
    let server = builder.start().await;
    let rsa = TestKey::rsa_a();
    wait_until_accepted(&server, &issuer.token(&rsa), Duration::from_secs(10)).await;
    Fixture {
        issuer,
        server,
        rsa,
        ec: TestKey::ec_a(),
        ed: TestKey::ed25519(),
    }
}

impl Fixture {
    /// A token signed by the RSA key after `edit` changed the standard header and claims.
    pub fn token(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        self.issuer.token_with(&self.rsa, edit)
    }

    /// A token of the standard header and `edit`ed claims.
    pub fn with_claims(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        self.token(|_, claims| edit(claims))
    }

    /// A token of the `edit`ed header and standard claims.
    pub fn with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        self.token(|header, _| edit(header))
    }

    /// The standard claims as JSON text.
    pub fn claims_text(&self) -> String {
        Value::Object(self.issuer.claims()).to_string()
    }

    /// The RSA key's standard header as JSON text.
    pub fn header_text(&self) -> String {
        Value::Object(self.rsa.header()).to_string()
    }

    /// A token of these exact header and payload bytes, signed RS256 by the RSA key.
    pub fn exact(&self, header: &[u8], payload: &[u8]) -> String {
        jws(header, payload, |m| self.rsa.sign("RS256", m))
    }

    /// A token whose kid the issuer never published.
    pub fn random_kid_token(&self) -> String {
        self.issuer.token(&self.rsa.clone().with_kid(&random_id()))
    }

    /// Waits until an unknown kid may trigger a fetch again.
    pub async fn wait_cooldown(&self) {
        self.issuer.wait_past_cooldown(COOLDOWN).await;
    }

    /// The control for "no fetch" rows: after the cooldown, an unknown kid does fetch.
    pub async fn assert_unknown_kid_fetches(&self) {
        self.wait_cooldown().await;
        let n = self.issuer.jwks_fetches();
        let (response, _) = own_info_within(
            &self.server,
            &self.random_kid_token(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(response.status, 401, "control: random kid");
        assert!(
            self.issuer
                .wait_for_count(JWKS_PATH, n + 1, Duration::from_secs(3))
                .await,
            "control: an unknown kid after the cooldown should fetch the JWKS, so the \
             no-fetch assertions above prove nothing"
        );
    }

    /// The server still answers, and a valid token still works.
    pub async fn assert_alive(&self) {
        let live = client()
            .get(self.server.url("/v1/.well-known/live"))
            .send()
            .await
            .expect("server alive");
        assert_eq!(live.status(), 200, "server still live");
        let (response, _) = own_info_within(
            &self.server,
            &self.issuer.token(&self.rsa),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(response.status, 200, "a valid token still works");
    }

    /// Runs one case; returns what went wrong.
    pub async fn check(&self, case: &Case) -> Vec<String> {
        let before = AuthCounts::read(&self.server).await;
        let requests = self.issuer.total_requests();
        let (response, _) =
            own_info_within(&self.server, &case.token, Duration::from_secs(10)).await;
        let mut problems = Vec::new();
        let grown = AuthCounts::read(&self.server).await.grown_since(&before);
        let outcome = match grown.as_slice() {
            [(series, delta)] if *delta == 1.0 => Some(series.clone()),
            _ => {
                problems.push(format!("counted {grown:?}, expected one request"));
                None
            }
        };
        let (reasons, oidc_only, no_fetch) = match &case.expect {
            Expect::Deny(r) => (*r, true, false),
            Expect::DenyNoFetch(r) => (*r, true, true),
            Expect::DenyAnyPath(r) => (*r, false, false),
            Expect::DenyAnyPathNoFetch(r) => (*r, false, true),
            Expect::BadRequest => {
                if response.status != 400 {
                    problems.push(format!(
                        "status {} {}, expected 400",
                        response.status,
                        text(&response)
                    ));
                } else if response.header("www-authenticate") != Some(CHALLENGE_INVALID_REQUEST) {
                    problems.push(format!(
                        "WWW-Authenticate {:?}",
                        response.header("www-authenticate")
                    ));
                }
                return problems;
            }
            Expect::Accept(groups) => {
                if response.status != 200 {
                    problems.push(format!(
                        "status {} {}, expected 200",
                        response.status,
                        text(&response)
                    ));
                } else {
                    let body = response.json();
                    if body["username"] != "alice" || body["groups"] != json!(groups) {
                        problems.push(format!(
                            "accepted as {body}, expected alice with {groups:?}"
                        ));
                    }
                }
                if let Some(o) = outcome {
                    if (o.method.as_str(), o.result.as_str()) != ("oidc", "accept") {
                        problems.push(format!("counted as {o:?}"));
                    }
                }
                return problems;
            }
        };
        if response.status != 401 {
            problems.push(format!(
                "status {} {}, expected 401",
                response.status,
                text(&response)
            ));
        } else {
            if response.header("www-authenticate") != Some(CHALLENGE_INVALID_TOKEN) {
                problems.push(format!(
                    "WWW-Authenticate {:?}",
                    response.header("www-authenticate")
                ));
            }
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            if body != invalid_credential_body() {
                problems.push(format!("body {}", text(&response)));
            }
        }
        if let Some(o) = outcome {
            if o.result != "deny" || !reasons.contains(&o.reason.as_str()) {
                problems.push(format!(
                    "counted as {}/{}, expected reason in {reasons:?}",
                    o.result, o.reason
                ));
            }
            if oidc_only && o.method != "oidc" {
                problems.push(format!("counted under method {}, expected oidc", o.method));
            }
        }
        if no_fetch {
            tokio::time::sleep(FETCH_GRACE).await;
            let after = self.issuer.total_requests();
            if after != requests {
                problems.push(format!(
                    "{} request(s) to the issuer; the row says no fetch",
                    after - requests
                ));
            }
        }
        problems
    }

    /// Runs every case, then fails listing every case that went wrong.
    pub async fn run(&self, cases: Vec<Case>) {
        let mut failures = Vec::new();
        for case in &cases {
            let problems = self.check(case).await;
            if !problems.is_empty() {
                failures.push(format!("  {}: {}", case.what, problems.join("; ")));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

/// The first 200 characters of a body, for failure messages.
pub fn text(response: &RawResponse) -> String {
    String::from_utf8_lossy(&response.body)
        .chars()
        .take(200)
        .collect()
}

/// `{member,` + the rest of a JSON object text: a member placed first (for duplicate keys).
pub fn prepend_member(object: &str, member: &str) -> String {
    format!("{{{member},{}", &object[1..])
}

/// The JSON object text with a member added last.
pub fn append_member(object: &str, member: &str) -> String {
    format!("{},{member}}}", &object[..object.len() - 1])
}
