//! OpenID Connect against a real OpenID provider (`oidc-provider` from npm, run by Node on
//! 127.0.0.1): tokens from its client-credentials and password grants, its key rotation,
//! short-lived tokens, the discovery pointer, and API keys next to OIDC (`docs/oidc.md`).

use std::time::Duration;

use portcullis_config::vars;
use portcullis_testkit::{decode_unverified, now, poll_every, CLIENT_ID};
use portcullis_tests::assert::assert_invalid_token;
use portcullis_tests::oidc_provider::{OidcProvider, SERVICE_GROUPS, SERVICE_USERNAME, USERS};
use portcullis_tests::oidc_support::{
    assert_accepted, counted_outcome, fetches, oidc_server, own_info, wait_until_accepted,
    with_api_key, AuthCounts, API_KEY, API_KEY_USER,
};
use portcullis_tests::{client, Server, ServerBuilder};
use serde_json::json;

/// How long a server may take to load the provider's keys after it starts.
const KEYS_LOADED: Duration = Duration::from_secs(10);

async fn start(
    provider: &OidcProvider,
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> Server {
    configure(oidc_server(provider.issuer())).start().await
}

#[tokio::test]
async fn client_credentials_token_is_accepted_with_its_username_and_groups() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| b).await;
    let token = provider.token_client_credentials().await;
    let response = wait_until_accepted(&server, &token, KEYS_LOADED).await;
    assert_accepted(
        &response,
        SERVICE_USERNAME,
        SERVICE_GROUPS,
        "client credentials",
    );

    let before = AuthCounts::read(&server).await;
    let response = own_info(&server, &token).await;
    assert_accepted(&response, SERVICE_USERNAME, SERVICE_GROUPS, "again");
    let outcome = counted_outcome(&server, &before, "client credentials").await;
    assert_eq!(
        (
            outcome.method.as_str(),
            outcome.result.as_str(),
            outcome.reason.as_str()
        ),
        ("oidc", "accept", "ok")
    );
}

#[tokio::test]
async fn password_grant_tokens_carry_each_users_name_and_groups() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| b).await;
    for (user, password, groups) in USERS {
        let token = provider.token_password(user, password).await;
        let response = wait_until_accepted(&server, &token, KEYS_LOADED).await;
        assert_accepted(&response, user, groups, user);
    }
}

#[tokio::test]
async fn first_request_with_a_rotated_kid_is_accepted() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| {
        b.env(vars::OIDC_REFRESH_INTERVAL, "1h")
            .env(vars::OIDC_KID_MISS_COOLDOWN, "1s")
    })
    .await;
    let old = provider.token_client_credentials().await;
    wait_until_accepted(&server, &old, KEYS_LOADED).await;
    // The start-up fetch is done; the cooldown counts from it.
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let new_kid = provider.rotate().await;
    let fetched_before = provider.requests("/jwks").await;
    let new = provider.token_client_credentials().await;
    assert_eq!(decode_unverified(&new).0["kid"], new_kid.as_str());

    let response = own_info(&server, &new).await;
    assert_accepted(
        &response,
        SERVICE_USERNAME,
        SERVICE_GROUPS,
        "first request with the new kid",
    );
    assert_eq!(
        provider.requests("/jwks").await,
        fetched_before + 1,
        "one JWKS fetch for the unknown kid"
    );
    assert!(fetches(&server.metrics_text().await, "kid_miss") >= 1.0);

    // The old key is still published, so its tokens still pass.
    let response = own_info(&server, &old).await;
    assert_accepted(
        &response,
        SERVICE_USERNAME,
        SERVICE_GROUPS,
        "old kid while still published",
    );
}

#[tokio::test]
async fn tokens_signed_by_a_removed_key_are_rejected() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| {
        b.env(vars::OIDC_REFRESH_INTERVAL, "1s")
            .env(vars::OIDC_KID_MISS_COOLDOWN, "1s")
    })
    .await;
    // One old token is verified (and so cached) before the key goes, one never is.
    let cached = provider.token_client_credentials().await;
    wait_until_accepted(&server, &cached, KEYS_LOADED).await;
    let unseen = provider.token_client_credentials().await;

    provider.rotate().await;
    provider.drop_old_key().await;
    let new = provider.token_client_credentials().await;

    // Within a few refresh intervals the server has dropped the old key.
    let refused = poll_every(
        Duration::from_millis(100),
        Duration::from_secs(8),
        || async { (own_info(&server, &unseen).await.status != 200).then_some(()) },
    )
    .await;
    assert!(
        refused.is_some(),
        "a token signed by the removed key is still accepted 8 s after the removal"
    );
    for (what, token) in [
        ("never-seen old token", &unseen),
        ("cached old token", &cached),
    ] {
        let before = AuthCounts::read(&server).await;
        let response = own_info(&server, token).await;
        assert_invalid_token(&response, what);
        let outcome = counted_outcome(&server, &before, what).await;
        assert_eq!(
            (outcome.method.as_str(), outcome.reason.as_str()),
            ("oidc", "unknown_kid"),
            "{what}"
        );
    }
    let response = wait_until_accepted(&server, &new, Duration::from_secs(3)).await;
    assert_accepted(
        &response,
        SERVICE_USERNAME,
        SERVICE_GROUPS,
        "token of the new key",
    );
}

#[tokio::test]
async fn expired_short_lived_token_is_rejected_as_expired() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| b.env(vars::OIDC_LEEWAY, "1s")).await;
    wait_until_accepted(
        &server,
        &provider.token_client_credentials().await,
        KEYS_LOADED,
    )
    .await;

    let used = provider.short_lived_token().await;
    let used_exp = decode_unverified(&used).1["exp"].as_i64().expect("exp");
    let response = own_info(&server, &used).await;
    // (On a machine too loaded to send one request within the token's 3 s, skip the check.)
    if now() < used_exp {
        assert_eq!(response.status, 200, "a 2-second token right after issue");
    }
    let unseen = provider.short_lived_token().await;
    let exp = decode_unverified(&unseen).1["exp"].as_i64().expect("exp");

    // Past exp plus the 1 s leeway, with a second for clock granularity.
    let wait = (exp + 2 - now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    for (what, token) in [
        ("token used while valid", &used),
        ("token never used", &unseen),
    ] {
        let before = AuthCounts::read(&server).await;
        let response = own_info(&server, token).await;
        assert_invalid_token(&response, what);
        let outcome = counted_outcome(&server, &before, what).await;
        assert_eq!(
            (outcome.method.as_str(), outcome.reason.as_str()),
            ("oidc", "expired"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn openid_configuration_points_clients_to_the_issuer() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, |b| b.env(vars::OIDC_SCOPES, "openid,email")).await;
    // No credential, and anonymous access is off: clients call this before they have a token.
    let response = client()
        .get(server.url("/v1/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "href": format!("{}/.well-known/openid-configuration", provider.issuer()),
            "clientId": CLIENT_ID,
            "scopes": ["openid", "email"],
        })
    );
    // The href really is the provider's discovery document.
    let discovery: serde_json::Value = client()
        .get(body["href"].as_str().expect("href"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery json");
    assert_eq!(discovery["issuer"], provider.issuer());

    // No credential is needed, but one that is sent is still judged (as Weaviate does).
    let response = server
        .raw(
            "GET",
            "/v1/.well-known/openid-configuration",
            &[b"Authorization: Bearer not-a-configured-key"],
        )
        .await;
    assert_invalid_token(&response, "well-known with an invalid credential");
}

#[tokio::test]
async fn openid_configuration_is_404_with_oidc_off() {
    let server = with_api_key(ServerBuilder::new()).start().await;
    let response = client()
        .get(server.url("/v1/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn api_key_and_jwt_each_take_their_own_path() {
    let provider = OidcProvider::start().await;
    let server = start(&provider, with_api_key).await;
    let token = provider.token_client_credentials().await;
    wait_until_accepted(&server, &token, KEYS_LOADED).await;

    // A JWT with a broken signature: judged by OIDC, never tried as an API key.
    // (A character well inside the signature changes, so the base64 stays canonical.)
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii token");

    let cases: [(&str, &str, u16, &str, &str); 4] = [
        ("API key", API_KEY, 200, "apikey", "ok"),
        ("JWT", &token, 200, "oidc", "ok"),
        (
            "JWT with a bad signature",
            &forged,
            401,
            "oidc",
            "bad_signature",
        ),
        (
            "unknown API key",
            "not-a-configured-key",
            401,
            "apikey",
            "invalid_key",
        ),
    ];
    for (what, credential, status, method, reason) in cases {
        let before = AuthCounts::read(&server).await;
        let response = own_info(&server, credential).await;
        match status {
            200 if method == "oidc" => {
                assert_accepted(&response, SERVICE_USERNAME, SERVICE_GROUPS, what)
            }
            200 => {
                assert_eq!(response.status, 200, "{what}");
                assert_eq!(response.json()["username"], API_KEY_USER, "{what}");
            }
            _ => assert_invalid_token(&response, what),
        }
        let outcome = counted_outcome(&server, &before, what).await;
        assert!(
            outcome.method.starts_with(method),
            "{what}: counted under method {:?}, expected {method}*",
            outcome.method
        );
        assert_eq!(outcome.reason, reason, "{what}");
    }
}
