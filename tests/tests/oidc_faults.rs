//! OpenID Connect against a fault-injecting issuer (`portcullis_testkit::FaultIssuer`): the
//! issuer down at start-up and later, slow, oversized and malformed key sets, a flood of unknown
//! `kid`s, `Cache-Control`, the discovery rules and the verified-token cache (`docs/oidc.md`).
//! Fetches are counted at the issuer, not taken from the server's word.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use portcullis_config::vars;
use portcullis_testkit::{
    jws, poll_every, random_id, FaultIssuer, JwksBody, Mode, TestKey, DISCOVERY_PATH, JWKS_PATH,
};
use portcullis_tests::assert::assert_invalid_token;
use portcullis_tests::oidc_support::{
    assert_unavailable, counted_outcome, fetches, oidc_server, own_info, own_info_within,
    wait_metric, wait_until_accepted, with_api_key, AuthCounts, API_KEY, API_KEY_USER, OWN_INFO,
};
use portcullis_tests::{client, Server, ServerBuilder};

/// How long a server may take to load the issuer's keys once the issuer answers.
const KEYS_LOADED: Duration = Duration::from_secs(10);

fn server_for(issuer: &FaultIssuer, env: &[(&str, &str)]) -> ServerBuilder {
    let mut builder = with_api_key(oidc_server(&issuer.url()));
    for (name, value) in env {
        builder = builder.env(name, *value);
    }
    builder
}

async fn status_of(server: &Server, path: &str) -> u16 {
    client()
        .get(server.url(path))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn assert_api_key_works(server: &Server, what: &str) {
    let response = own_info(server, API_KEY).await;
    assert_eq!(response.status, 200, "{what}: API key");
    assert_eq!(
        response.json()["username"],
        API_KEY_USER,
        "{what}: API key user"
    );
}

#[tokio::test]
async fn issuer_down_at_start_up_then_recovers_within_one_refresh() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    issuer.down().await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "2s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
            (vars::OIDC_FETCH_TIMEOUT, "1s"),
        ],
    )
    .start()
    .await;

    assert_eq!(status_of(&server, "/v1/.well-known/live").await, 200);
    assert_eq!(
        status_of(&server, "/v1/.well-known/ready").await,
        200,
        "ready: API keys can serve"
    );
    assert_api_key_works(&server, "issuer down").await;

    let token = issuer.token(&key);
    let before = AuthCounts::read(&server).await;
    let (response, _) = own_info_within(&server, &token, Duration::from_secs(5)).await;
    assert_unavailable(&response, "OIDC before any key set loaded");
    let outcome = counted_outcome(&server, &before, "OIDC while no keys").await;
    assert_eq!(
        (outcome.method.as_str(), outcome.reason.as_str()),
        ("oidc", "issuer_unavailable")
    );
    assert_eq!(server.metric("portcullis_jwks_keys", &[]).await, 0.0);

    issuer.up().await;
    let up = Instant::now();
    // One refresh interval (2 s) plus a fetch timeout and some slack.
    wait_until_accepted(&server, &token, Duration::from_secs(4)).await;
    eprintln!("recovered {:?} after the issuer came up", up.elapsed());
    assert_eq!(server.metric("portcullis_jwks_keys", &[]).await, 1.0);
    assert!(
        server
            .metric("portcullis_jwks_last_success_timestamp_seconds", &[])
            .await
            > 1.0e9
    );
    assert!(fetches(&server.metrics_text().await, "startup") >= 1.0);
    assert_api_key_works(&server, "after recovery").await;
}

#[tokio::test]
async fn ready_is_not_200_while_oidc_alone_has_no_keys() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    issuer.down().await;
    let server = oidc_server(&issuer.url())
        .env(vars::OIDC_REFRESH_INTERVAL, "1s")
        .env(vars::OIDC_FETCH_TIMEOUT, "1s")
        .start()
        .await;
    assert_eq!(status_of(&server, "/v1/.well-known/live").await, 200);
    let ready = status_of(&server, "/v1/.well-known/ready").await;
    assert_ne!(
        ready, 200,
        "no method can serve: OIDC is the only one and has no keys"
    );

    issuer.up().await;
    wait_until_accepted(&server, &issuer.token(&key), KEYS_LOADED).await;
    assert_eq!(status_of(&server, "/v1/.well-known/ready").await, 200);
}

#[tokio::test]
async fn issuer_down_later_keeps_known_keys_and_reports_stale() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
            (vars::OIDC_FETCH_TIMEOUT, "1s"),
        ],
    )
    .start()
    .await;
    let cached = issuer.token(&key);
    wait_until_accepted(&server, &cached, KEYS_LOADED).await;
    assert_eq!(server.metric("portcullis_jwks_stale", &[]).await, 0.0);

    issuer.down().await;
    let response = own_info(&server, &issuer.token(&key)).await;
    assert_eq!(
        response.status, 200,
        "a new token of a known key, issuer down"
    );

    // Past the refresh interval the failed refresh marks the keys stale.
    wait_metric(
        &server,
        "portcullis_jwks_stale",
        &[],
        Duration::from_secs(5),
        |v| v == 1.0,
    )
    .await;
    for (what, token) in [
        ("new token", issuer.token(&key)),
        ("cached token", cached.clone()),
    ] {
        let (response, took) = own_info_within(&server, &token, Duration::from_secs(3)).await;
        assert_eq!(response.status, 200, "{what} while stale (took {took:?})");
    }
    assert_eq!(server.metric("portcullis_jwks_keys", &[]).await, 1.0);

    issuer.up().await;
    wait_metric(
        &server,
        "portcullis_jwks_stale",
        &[],
        Duration::from_secs(5),
        |v| v == 0.0,
    )
    .await;
}

#[tokio::test]
async fn keys_past_max_staleness_stop_being_used() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
            (vars::OIDC_FETCH_TIMEOUT, "1s"),
            (vars::OIDC_MAX_STALENESS, "3s"),
        ],
    )
    .start()
    .await;
    let cached = issuer.token(&key);
    wait_until_accepted(&server, &cached, KEYS_LOADED).await;
    issuer.down().await;
    let down = Instant::now();

    let fresh = poll_every(
        Duration::from_millis(100),
        Duration::from_secs(8),
        || async {
            let fresh = issuer.token(&key);
            (own_info(&server, &fresh).await.status != 200).then_some(fresh)
        },
    )
    .await
    .expect("keys still used 8 s after the issuer went down (max staleness 3 s)");
    assert!(
        down.elapsed() >= Duration::from_secs(2),
        "keys dropped after {:?}, before the staleness window",
        down.elapsed()
    );
    for (what, token) in [("new token", &fresh), ("cached token", &cached)] {
        let before = AuthCounts::read(&server).await;
        let (response, _) = own_info_within(&server, token, Duration::from_secs(3)).await;
        assert_unavailable(&response, what);
        let outcome = counted_outcome(&server, &before, what).await;
        assert_eq!(outcome.reason, "issuer_unavailable", "{what}");
    }
    assert_api_key_works(&server, "keys past staleness").await;

    issuer.up().await;
    wait_until_accepted(&server, &issuer.token(&key), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn slow_issuer_times_out_and_no_request_hangs() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    issuer.set_mode(Mode::Slow(Duration::from_secs(30)));
    // Build the binary first, so that only the start itself is timed.
    portcullis_tests::binary();
    let started = Instant::now();
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1h"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
            (vars::OIDC_FETCH_TIMEOUT, "500ms"),
        ],
    )
    .start()
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start-up waited for the issuer"
    );
    assert_api_key_works(&server, "slow issuer").await;

    // Bound: the fetch timeout (0.5 s) plus generous slack; nothing may wait for the issuer.
    let bound = Duration::from_millis(2500);
    let token = issuer.token(&key);
    let answers = join_all((0..8).map(|_| own_info_within(&server, &token, bound))).await;
    for (response, took) in &answers {
        assert_unavailable(
            response,
            &format!("OIDC while the issuer is slow (took {took:?})"),
        );
    }
    assert!(issuer.total_requests() >= 1, "the server tried the issuer");

    issuer.set_mode(Mode::Up);
    wait_until_accepted(&server, &token, KEYS_LOADED).await;

    // Keys loaded; the issuer turns slow again. Unknown kids wait at most for the fetch
    // timeout; known kids do not wait for the fetch at all.
    issuer.set_mode(Mode::Slow(Duration::from_secs(30)));
    issuer.wait_past_cooldown(Duration::from_secs(1)).await;
    let unknown: Vec<String> = (0..5)
        .map(|_| issuer.token(&key.clone().with_kid(&random_id())))
        .collect();
    let known = issuer.token(&key);
    let unknown_answers = join_all(unknown.iter().map(|t| own_info_within(&server, t, bound)));
    let known_answer = async {
        // Let the kid-miss fetch start first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        own_info_within(&server, &known, Duration::from_secs(1)).await
    };
    let (unknown_answers, (known_response, known_took)) =
        futures_util::future::join(unknown_answers, known_answer).await;
    for (response, took) in &unknown_answers {
        assert_invalid_token(
            response,
            &format!("unknown kid, slow issuer (took {took:?})"),
        );
    }
    assert_eq!(
        known_response.status, 200,
        "known kid during a slow fetch (took {known_took:?})"
    );
}

async fn assert_last_good_keys_stay(
    server: &Server,
    issuer: &FaultIssuer,
    good: &TestKey,
    offered: &TestKey,
    what: &str,
) {
    // Two more fetches: the first served after the switch has certainly been processed.
    let started = Instant::now();
    let n = issuer.jwks_fetches();
    assert!(
        issuer
            .wait_for_count(JWKS_PATH, n + 2, Duration::from_secs(6))
            .await,
        "{what}: the server stopped refreshing"
    );
    eprintln!("{what}: two JWKS fetches in {:?}", started.elapsed());
    let response = own_info(server, &issuer.token(good)).await;
    assert_eq!(
        response.status, 200,
        "{what}: a new token of the last good key"
    );
    let response = own_info(server, &issuer.token(offered)).await;
    assert_invalid_token(&response, &format!("{what}: a key only in the refused set"));
    assert_eq!(
        server.metric("portcullis_jwks_keys", &[]).await,
        1.0,
        "{what}: keys loaded"
    );
}

#[tokio::test]
async fn oversized_jwks_is_refused_and_last_good_keys_stay() {
    let good = TestKey::rsa_a();
    let offered = TestKey::rsa_b();
    let issuer = FaultIssuer::start(&[&good]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
        ],
    )
    .start()
    .await;
    wait_until_accepted(&server, &issuer.token(&good), KEYS_LOADED).await;

    issuer.publish(&[&offered]);
    for body in [JwksBody::Huge, JwksBody::HugeChunked] {
        issuer.set_jwks_body(body.clone());
        assert_last_good_keys_stay(&server, &issuer, &good, &offered, &format!("{body:?}")).await;
    }
}

#[tokio::test]
async fn malformed_jwks_is_refused_and_last_good_keys_stay() {
    let good = TestKey::rsa_a();
    let offered = TestKey::rsa_b();
    let issuer = FaultIssuer::start(&[&good]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
        ],
    )
    .start()
    .await;
    wait_until_accepted(&server, &issuer.token(&good), KEYS_LOADED).await;

    let offered_jwk = offered.jwk().to_string();
    let bodies = [
        format!(r#"{{"keys": [{offered_jwk}"#),
        "this is not JSON".to_owned(),
        String::new(),
        format!(r#"{{"keys": {offered_jwk}}}"#),
        format!("[{offered_jwk}]"),
        r#"{"keys": "rsa-b"}"#.to_owned(),
        format!("{{\"keys\": [{offered_jwk}]}}\u{0}garbage"),
    ];
    for body in bodies {
        issuer.set_jwks_body(JwksBody::Raw(body.clone()));
        let what: String = format!("JWKS body {body:?}").chars().take(60).collect();
        assert_last_good_keys_stay(&server, &issuer, &good, &offered, &what).await;
    }
    issuer.set_jwks_body(JwksBody::Status(500));
    assert_last_good_keys_stay(&server, &issuer, &good, &offered, "HTTP 500").await;
}

#[tokio::test]
async fn random_kid_flood_fetches_at_most_once_per_cooldown() {
    const COOLDOWN: Duration = Duration::from_secs(2);
    const TOKENS: usize = 1000;
    let key = TestKey::ec_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    // The refresher's own single-flight is under test, so every token must reach it: the
    // failure throttle (which refuses a client past 100 failures, hostile-inputs row 54) is
    // off here.
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1h"),
            (vars::OIDC_KID_MISS_COOLDOWN, "2s"),
            (vars::AUTH_FAILURE_LIMIT, "0"),
        ],
    )
    .start()
    .await;
    wait_until_accepted(&server, &issuer.token(&key), KEYS_LOADED).await;

    // Real ES256 signatures over tokens whose kids the issuer never published.
    let tokens: Vec<String> = (0..TOKENS)
        .map(|_| issuer.token(&key.clone().with_kid(&random_id())))
        .collect();
    issuer.wait_past_cooldown(COOLDOWN).await;
    let before = AuthCounts::read(&server).await;
    let jwks_before = issuer.jwks_fetches();
    let discovery_before = issuer.discovery_fetches();
    // Ten waves of 100, half a second apart: the flood spans more than two cooldowns, so
    // both "at most one per cooldown" and "again after the cooldown" are tested.
    let started = Instant::now();
    let http = client();
    let mut statuses: Vec<u16> = Vec::with_capacity(TOKENS);
    for (i, wave) in tokens.chunks(TOKENS / 10).enumerate() {
        let at = started + Duration::from_millis(500 * i as u64);
        tokio::time::sleep_until(at.into()).await;
        let answered: Vec<u16> = stream::iter(wave)
            .map(|token| {
                let request = http.get(server.url(OWN_INFO)).bearer_auth(token).send();
                async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        statuses.extend(answered);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(
        statuses.iter().all(|s| *s == 401),
        "every random kid is a 401: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 401)
            .take(5)
            .collect::<Vec<_>>()
    );
    let jwks = issuer.jwks_fetches() - jwks_before;
    let discovery = issuer.discovery_fetches() - discovery_before;
    let allowed = (elapsed.as_secs_f64() / COOLDOWN.as_secs_f64()).floor() as usize + 1;
    eprintln!("{TOKENS} random kids in {elapsed:?}: {jwks} JWKS and {discovery} discovery fetches (allowed {allowed})");
    assert!(
        jwks >= 2,
        "unknown kids trigger a refetch, and again once the cooldown has passed \
         ({jwks} JWKS fetches in {elapsed:?})"
    );
    assert!(
        jwks <= allowed,
        "{jwks} JWKS fetches in {elapsed:?} with a {COOLDOWN:?} cooldown"
    );
    assert!(
        discovery <= allowed,
        "{discovery} discovery fetches in {elapsed:?}"
    );
    let times: Vec<Instant> = issuer
        .times(JWKS_PATH)
        .into_iter()
        .filter(|t| *t >= started)
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= COOLDOWN - Duration::from_millis(100),
            "two JWKS fetches {:?} apart",
            pair[1] - pair[0]
        );
    }

    let grown = AuthCounts::read(&server).await.grown_since(&before);
    let unknown_kid: f64 = grown
        .iter()
        .filter(|(s, _)| s.method == "oidc" && s.reason == "unknown_kid")
        .map(|(_, d)| d)
        .sum();
    assert_eq!(
        unknown_kid, TOKENS as f64,
        "counted as unknown_kid: {grown:?}"
    );
    assert!(
        server
            .metric("portcullis_jwks_refetch_suppressed_total", &[])
            .await
            >= 1.0
    );
}

/// Issue 11, item 3: a forged token naming the `kid` of a key the issuer has not published yet
/// used to keep that kid "unknown" for the whole refresh interval (5 minutes by default), so
/// genuine tokens signed with the new key were refused that long. Now a refetch is allowed
/// once the cooldown has passed: the new key is accepted within one cooldown.
#[tokio::test]
async fn a_kid_forged_before_its_key_is_published_delays_it_one_cooldown_at_most() {
    const COOLDOWN: Duration = Duration::from_secs(1);
    let current = TestKey::rsa_a();
    let next = TestKey::ec_a().with_kid("next-key");
    let issuer = FaultIssuer::start(&[&current]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1h"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
        ],
    )
    .start()
    .await;
    wait_until_accepted(&server, &issuer.token(&current), KEYS_LOADED).await;
    issuer.wait_past_cooldown(COOLDOWN).await;

    // The attacker's token: the coming kid, a signature of its own key.
    let forged = issuer.token(&TestKey::ec_b().with_kid("next-key"));
    let before = AuthCounts::read(&server).await;
    assert_invalid_token(&own_info(&server, &forged).await, "forged kid");
    let outcome = counted_outcome(&server, &before, "forged kid").await;
    assert_eq!(
        (
            outcome.method.as_str(),
            outcome.result.as_str(),
            outcome.reason.as_str()
        ),
        ("oidc", "deny", "unknown_kid")
    );
    let fetched = issuer.jwks_fetches();

    issuer.publish(&[&current, &next]);
    let genuine = issuer.token(&next);
    issuer.wait_past_cooldown(COOLDOWN).await;
    let before = AuthCounts::read(&server).await;
    let response = own_info(&server, &genuine).await;
    assert_eq!(
        response.status,
        200,
        "the new key within one cooldown: {}",
        String::from_utf8_lossy(&response.body)
    );
    let outcome = counted_outcome(&server, &before, "genuine token").await;
    assert_eq!(
        (
            outcome.method.as_str(),
            outcome.result.as_str(),
            outcome.reason.as_str()
        ),
        ("oidc", "accept", "ok")
    );
    assert_eq!(
        issuer.jwks_fetches(),
        fetched + 1,
        "one refetch, for the genuine token"
    );
}

#[tokio::test]
async fn cache_control_max_age_shortens_the_refresh_but_not_below_the_cooldown() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    issuer.set_max_age(Some(1));
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1h"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
        ],
    )
    .start()
    .await;
    wait_until_accepted(&server, &issuer.token(&key), KEYS_LOADED).await;
    let n = issuer.jwks_fetches();
    assert!(
        issuer
            .wait_for_count(JWKS_PATH, n + 2, Duration::from_secs(6))
            .await,
        "max-age=1 with a 1h interval: expected refreshes within seconds"
    );

    // max-age=0 is clamped to the cooldown: no busy refetching.
    issuer.set_max_age(Some(0));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let in_window = issuer
        .times(JWKS_PATH)
        .into_iter()
        .filter(|t| *t >= window_start)
        .count();
    assert!(
        (1..=4).contains(&in_window),
        "{in_window} JWKS fetches in 3 s with max-age=0 and a 1 s cooldown"
    );
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    // A trailing slash is another issuer (OIDC Core §3.1.3.7: exact match).
    issuer.set_discovery_issuer(Some(format!("{}/", issuer.url())));
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
            (vars::OIDC_FETCH_TIMEOUT, "1s"),
        ],
    )
    .start()
    .await;
    assert!(
        issuer
            .wait_for_count(DISCOVERY_PATH, 2, Duration::from_secs(8))
            .await,
        "the server retries discovery"
    );
    let token = issuer.token(&key);
    let (response, _) = own_info_within(&server, &token, Duration::from_secs(3)).await;
    assert_unavailable(&response, "discovery names another issuer");
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "JWKS of a refused discovery document fetched"
    );
    assert_api_key_works(&server, "discovery refused").await;

    issuer.set_discovery_issuer(None);
    wait_until_accepted(&server, &token, KEYS_LOADED).await;
}

async fn jwks_url_server(issuer: &FaultIssuer, rsa: &TestKey) -> Server {
    let server = server_for(issuer, &[(vars::OIDC_KID_MISS_COOLDOWN, "1s")])
        .env(vars::OIDC_JWKS_URL, issuer.jwks_url())
        .start()
        .await;
    wait_until_accepted(&server, &issuer.token(rsa), KEYS_LOADED).await;
    server
}

#[tokio::test]
async fn jwks_url_skips_discovery() {
    let rsa = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&rsa]).await;
    let server = jwks_url_server(&issuer, &rsa).await;
    // A kid miss refetches the configured JWKS URL, still without discovery.
    issuer.wait_past_cooldown(Duration::from_secs(1)).await;
    let n = issuer.jwks_fetches();
    let response = own_info(&server, &issuer.token(&rsa.clone().with_kid(&random_id()))).await;
    assert_invalid_token(&response, "unknown kid with JWKS_URL");
    assert!(issuer.jwks_fetches() > n, "kid miss refetched the JWKS URL");
    assert_eq!(
        issuer.discovery_fetches(),
        0,
        "discovery fetched despite JWKS_URL"
    );
}

/// Weaviate's section-4 behaviour (go-oidc's default): with the JWKS URL given and so nothing
/// advertised, RS256 alone is accepted.
#[tokio::test]
async fn jwks_url_allows_rs256_only_as_weaviate_does() {
    let rsa = TestKey::rsa_a();
    let ec = TestKey::ec_a();
    let issuer = FaultIssuer::start(&[&rsa, &ec]).await;
    let server = jwks_url_server(&issuer, &rsa).await;
    let before = AuthCounts::read(&server).await;
    let response = own_info(&server, &issuer.token(&ec)).await;
    assert_invalid_token(&response, "ES256 with JWKS_URL");
    let outcome = counted_outcome(&server, &before, "ES256 with JWKS_URL").await;
    assert_eq!(outcome.reason, "disallowed_alg");
}

#[tokio::test]
async fn verified_tokens_are_cached_until_their_key_leaves() {
    let a = TestKey::rsa_a();
    let b = TestKey::rsa_b();
    let issuer = FaultIssuer::start(&[&a, &b]).await;
    let server = server_for(
        &issuer,
        &[
            (vars::OIDC_REFRESH_INTERVAL, "1s"),
            (vars::OIDC_KID_MISS_COOLDOWN, "1s"),
        ],
    )
    .start()
    .await;
    let token = issuer.token(&a);
    wait_until_accepted(&server, &token, KEYS_LOADED).await;
    let hits = server
        .metric("portcullis_token_cache_hits_total", &[])
        .await;
    for _ in 0..3 {
        assert_eq!(own_info(&server, &token).await.status, 200);
    }
    assert!(
        server
            .metric("portcullis_token_cache_hits_total", &[])
            .await
            >= hits + 3.0,
        "a verified token is served from the cache"
    );
    let misses = server
        .metric("portcullis_token_cache_misses_total", &[])
        .await;
    assert_eq!(own_info(&server, &issuer.token(&a)).await.status, 200);
    assert!(
        server
            .metric("portcullis_token_cache_misses_total", &[])
            .await
            >= misses + 1.0
    );

    // Key a leaves the JWKS: its cached token goes with it.
    issuer.publish(&[&b]);
    let refused = poll_every(
        Duration::from_millis(100),
        Duration::from_secs(6),
        || async { (own_info(&server, &token).await.status != 200).then_some(()) },
    )
    .await;
    assert!(
        refused.is_some(),
        "cached token still accepted 6 s after its key left"
    );
    assert_invalid_token(
        &own_info(&server, &token).await,
        "cached token of a removed key",
    );
    assert_eq!(own_info(&server, &issuer.token(&b)).await.status, 200);
}

#[tokio::test]
async fn http_issuer_is_accepted_with_a_warning() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = server_for(&issuer, &[]).start().await;
    wait_until_accepted(&server, &issuer.token(&key), KEYS_LOADED).await;
    let stderr = server.stderr();
    assert!(
        stderr.lines().any(|l| l.contains("WARN")
            && (l.contains("http://") || l.contains(vars::OIDC_ISSUER))),
        "no warning about the http:// issuer in the log:\n{stderr}"
    );
}

#[tokio::test]
async fn a_token_the_issuer_signed_with_a_key_it_never_published_is_rejected() {
    // The plain forgery: right issuer, claims and kid, wrong key.
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = server_for(&issuer, &[]).start().await;
    wait_until_accepted(&server, &issuer.token(&key), KEYS_LOADED).await;
    let forger = TestKey::rsa_b();
    let header = serde_json::to_vec(&key.header()).expect("header");
    let claims = serde_json::to_vec(&issuer.claims()).expect("claims");
    let forged = jws(&header, &claims, |m| forger.sign("RS256", m));
    let before = AuthCounts::read(&server).await;
    assert_invalid_token(&own_info(&server, &forged).await, "forged signature");
    let outcome = counted_outcome(&server, &before, "forged signature").await;
    assert_eq!(
        (outcome.method.as_str(), outcome.reason.as_str()),
        ("oidc", "bad_signature")
    );
}
