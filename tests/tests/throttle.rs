//! The budget of failed credential checks per client (`docs/hostile-inputs.md` rows 53-56,
//! `docs/configuration.md`): the 429 once it is spent, for wrong keys and for invalid tokens
//! (which are then not verified); the table's bound under a flood from 100,000 addresses;
//! `X-Forwarded-For` read only from trusted proxies; one client's failures never throttling
//! another; the budget's recovery; and the switch that turns it off.

use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_testkit::{poll, FaultIssuer, TestKey};
use portcullis_tests::api::Reply;
use portcullis_tests::assert::invalid_credential_body;
use portcullis_tests::oidc_support::{
    oidc_server, own_info, wait_until_accepted, with_api_key, API_KEY,
};
use portcullis_tests::{Server, ServerBuilder};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROOT_KEY: &str = "throttle-root-key-5d41402abc4b2a76";
const WRONG_KEY: &str = "throttle-wrong-key-0000000000000000";
const OWN_INFO_PATH: &str = "/v1/users/own-info";

/// The body of every 429 from the throttle.
fn throttled_body() -> Value {
    json!({
        "code": 429,
        "message": "too many failed authentication attempts from this address; retry later"
    })
}

/// Static `root` (an admin), database users on, and the given failure budget.
fn keyed(limit: &str, window: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ROOT_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "root")
        .env(vars::AUTH_FAILURE_LIMIT, limit)
        .env(vars::AUTH_FAILURE_WINDOW, window)
}

/// `GET /v1/users/own-info` with `key`, from the client `forwarded_for` names (when given).
async fn own_info_as(server: &Server, key: &str, forwarded_for: Option<&str>) -> Reply {
    let mut request = server.get(OWN_INFO_PATH).bearer(key);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await
}

fn assert_invalid(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    assert_eq!(reply.json(), invalid_credential_body(), "{what}");
}

/// A 429 from the throttle: the body, no challenge, and `Retry-After` in whole seconds,
/// which is returned.
fn assert_throttled(reply: &Reply, what: &str) -> u32 {
    assert_eq!(reply.status, 429, "{what}: {reply:?}");
    assert_eq!(reply.json(), throttled_body(), "{what}");
    assert_eq!(reply.header("www-authenticate"), None, "{what}");
    let retry_after = reply.header("retry-after");
    retry_after
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&s| s >= 1)
        .unwrap_or_else(|| panic!("{what}: Retry-After in seconds, got {retry_after:?}"))
}

fn assert_user(reply: &Reply, user: &str, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {reply:?}");
    assert_eq!(reply.json()["username"], user, "{what}");
}

#[tokio::test]
async fn row_53_wrong_keys_past_the_budget_get_429_and_cheap_valid_keys_still_pass() {
    let server = keyed("5", "60s").start().await;
    // Two database users: carol's key has been used once (its answer is published),
    // dave's not yet.
    let mut keys = Vec::new();
    for user in ["carol", "dave"] {
        let created = server
            .post(&format!("/v1/users/db/{user}"))
            .bearer(ROOT_KEY)
            .send()
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        keys.push(
            created.json()["apikey"]
                .as_str()
                .expect("apikey")
                .to_owned(),
        );
    }
    let (carol, dave) = (&keys[0], &keys[1]);
    assert_user(
        &own_info_as(&server, carol, None).await,
        "carol",
        "carol before",
    );

    let first = Instant::now();
    for i in 0..5 {
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, None).await,
            &format!("wrong key {i}"),
        );
    }
    let reply = own_info_as(&server, WRONG_KEY, None).await;
    // Five failures per 60 s: the next fits 12 s after the first, so Retry-After is 12 less
    // the time the five took, rounded up.
    let retry_after = f64::from(assert_throttled(&reply, "sixth wrong key"));
    let took = first.elapsed().as_secs_f64();
    assert!(
        retry_after <= 12.0 && retry_after >= (12.0 - took).ceil(),
        "Retry-After {retry_after} s, {took} s after the first failure"
    );
    // A static key could be a guess: refused like a wrong one from this address.
    assert_throttled(&own_info_as(&server, ROOT_KEY, None).await, "root's key");
    // A database key not judged since start is work for the key registry: refused
    // unjudged, valid or not (until it is used from an address within its budget).
    assert_throttled(&own_info_as(&server, dave, None).await, "dave's first use");
    // A published database key is cheap to judge and cannot be guessed: served.
    assert_user(
        &own_info_as(&server, carol, None).await,
        "carol",
        "carol over budget",
    );
    // No credential is not a failed credential.
    let anonymous = server.get(OWN_INFO_PATH).send().await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "invalid_key")
            .await,
        5.0
    );
    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "throttled")
            .await,
        2.0
    );
    assert_eq!(
        server.auth_requests("apikey_db", "deny", "throttled").await,
        1.0
    );
    assert_eq!(
        server
            .metric(
                "portcullis_http_requests_total",
                &[("route", OWN_INFO_PATH), ("status", "429")]
            )
            .await,
        3.0
    );
    assert_eq!(
        server.metric("portcullis_auth_throttle_clients", &[]).await,
        1.0
    );
    assert_eq!(
        server
            .metric("portcullis_auth_throttle_capacity", &[])
            .await,
        65_536.0
    );
}

#[tokio::test]
async fn row_54_invalid_tokens_past_the_budget_are_refused_without_a_signature_check() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = with_api_key(oidc_server(&issuer.url()))
        .env(vars::AUTH_FAILURE_LIMIT, "3")
        .env(vars::AUTH_FAILURE_WINDOW, "60s")
        .start()
        .await;
    let good = issuer.token(&key);
    wait_until_accepted(&server, &good, Duration::from_secs(10)).await;
    let verified_before = server
        .metric("portcullis_token_cache_misses_total", &[])
        .await;

    // Signed by another key under the published kid: each one costs an RSA verification.
    let forger = TestKey::rsa_b().with_kid(key.kid());
    for i in 0..10 {
        let response = own_info(&server, &issuer.token(&forger)).await;
        let expected = if i < 3 { 401 } else { 429 };
        assert_eq!(response.status, expected, "forged token {i}");
        if expected == 429 {
            assert_eq!(response.json(), throttled_body(), "forged token {i}");
            assert!(response.header("retry-after").is_some(), "forged token {i}");
        }
    }
    // Three verifications, not ten: past the budget nothing was verified.
    let verified = server
        .metric("portcullis_token_cache_misses_total", &[])
        .await
        - verified_before;
    assert_eq!(verified, 3.0);
    assert_eq!(
        server.auth_requests("oidc", "deny", "bad_signature").await,
        3.0
    );
    assert_eq!(server.auth_requests("oidc", "deny", "throttled").await, 7.0);

    // A token verified before is answered from the cache; a new one needs a check: refused.
    let cached = own_info(&server, &good).await;
    assert_eq!(cached.status, 200, "cached token over budget");
    let fresh = own_info(&server, &issuer.token(&key)).await;
    assert_eq!(fresh.status, 429, "new token over budget");
    assert_eq!(
        server
            .metric("portcullis_token_cache_misses_total", &[])
            .await
            - verified_before,
        3.0,
        "the new token was not verified"
    );
    // A static key from this address is refused too: it could be a guess.
    let api_key = own_info(&server, API_KEY).await;
    assert_eq!(api_key.status, 429, "static key over budget");
}

/// The server's resident memory now, in bytes (`VmRSS`).
fn resident(server: &Server) -> u64 {
    let pid = server.pid().expect("server running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// The `i`th flooding address, all distinct for `i` below 2^22: 100.64.0.0/10.
fn flood_address(i: u32) -> String {
    format!("100.{}.{}.{}", 64 + (i >> 16), (i >> 8) & 255, i & 255)
}

/// Sends one request with [`WRONG_KEY`] from each address of `range` (as
/// `X-Forwarded-For`), pipelined on one connection; returns how many were answered 401.
async fn flood(server: &Server, range: std::ops::Range<u32>) -> u32 {
    const IN_FLIGHT: u32 = 200;
    let mut stream = TcpStream::connect(server.http).await.expect("connect");
    let mut unauthorized = 0;
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut start = range.start;
    while start < range.end {
        let end = (start + IN_FLIGHT).min(range.end);
        let mut requests = String::new();
        for i in start..end {
            requests.push_str(&format!(
                "GET {OWN_INFO_PATH} HTTP/1.1\r\nHost: portcullis\r\n\
                 Authorization: Bearer {WRONG_KEY}\r\nX-Forwarded-For: {}\r\n\r\n",
                flood_address(i)
            ));
        }
        stream.write_all(requests.as_bytes()).await.expect("send");
        for _ in start..end {
            let status = read_response(&mut stream, &mut buffer).await;
            unauthorized += u32::from(status == 401);
        }
        start = end;
    }
    unauthorized
}

/// Reads one response (headers and a `Content-Length` body) from `stream`, keeping what
/// follows it in `buffer`; returns its status.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> u16 {
    loop {
        if let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status line");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("Content-Length");
            let total = head_end + 4 + length;
            if buffer.len() >= total {
                buffer.drain(..total);
                return status;
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("a response within 30 s")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn row_55_a_flood_from_100000_addresses_keeps_the_table_and_memory_bounded() {
    const ADDRESSES: u32 = 100_000;
    // One failure an hour: every address stays in debt for the whole test.
    let server = keyed("1", "1h")
        .env(vars::TRUSTED_PROXIES, "127.0.0.1")
        .start()
        .await;
    let capacity = server
        .metric("portcullis_auth_throttle_capacity", &[])
        .await;
    assert_eq!(capacity, 65_536.0);
    // Warm up the paths a failure takes, then measure from there.
    assert_invalid(
        &own_info_as(&server, WRONG_KEY, Some("192.0.2.1")).await,
        "warm-up",
    );
    let before = resident(&server);

    // Four connections, each with its share of the addresses, 200 requests in flight on each
    // (HTTP/1.1 pipelining): the client's cost stays small next to the server's.
    let started = Instant::now();
    let shares = (0..4u32).map(|c| flood(&server, (c * ADDRESSES / 4)..((c + 1) * ADDRESSES / 4)));
    let refused: u32 = futures_util::future::join_all(shares)
        .await
        .into_iter()
        .sum();
    assert_eq!(refused, ADDRESSES, "every address's first failure is a 401");
    let took = started.elapsed();
    let after = resident(&server);

    let clients = server.metric("portcullis_auth_throttle_clients", &[]).await;
    let evictions = server
        .metric("portcullis_auth_throttle_evictions_total", &[])
        .await;
    assert!(
        clients <= capacity,
        "{clients} clients in a table of {capacity}"
    );
    // 100,000 addresses in 4,096 sets of 16: nearly every set fills, and what did not fit
    // was evicted rather than stored.
    assert!(
        clients >= 60_000.0,
        "only {clients} clients held ({took:?})"
    );
    assert!(
        clients + evictions >= f64::from(ADDRESSES),
        "{clients} held + {evictions} evicted < {ADDRESSES}"
    );
    let grown = after.saturating_sub(before);
    assert!(
        grown < 16 * 1024 * 1024,
        "resident memory grew by {} KiB under the flood ({before} -> {after} bytes, {took:?})",
        grown / 1024
    );
    // The server still answers, throttles the newest address, and serves a valid key from
    // an address that has not failed.
    assert_throttled(
        &own_info_as(&server, WRONG_KEY, Some(&flood_address(ADDRESSES - 1))).await,
        "the last address again",
    );
    assert_user(
        &own_info_as(&server, ROOT_KEY, Some("192.0.2.200")).await,
        "root",
        "a valid key after the flood",
    );
}

#[tokio::test]
async fn row_56_forwarded_for_is_read_from_trusted_proxies_only() {
    // 127.0.0.1 (the test's peer) is not in the trusted network.
    let server = keyed("2", "60s")
        .env(vars::TRUSTED_PROXIES, "10.0.0.0/8")
        .start()
        .await;
    for i in 0..2 {
        let forged = format!("198.51.100.{i}");
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, Some(&forged)).await,
            &forged,
        );
    }
    // A new forged address each time changes nothing: the peer is the client.
    assert_throttled(
        &own_info_as(&server, WRONG_KEY, Some("198.51.100.77")).await,
        "forged address, untrusted peer",
    );
    let log = server.stderr();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(access.len(), 3, "{log}");
    for line in access {
        assert!(line.contains("client=127.0.0.1"), "{line}");
        assert!(!line.contains("198.51.100."), "{line}");
    }
}

#[tokio::test]
async fn row_56_a_trusted_proxy_names_the_client_by_the_rightmost_untrusted_hop() {
    let server = keyed("2", "60s")
        .env(vars::TRUSTED_PROXIES, "127.0.0.1,10.0.0.0/8")
        .start()
        .await;
    // The client forges what it puts left of its own address; the proxies append the rest.
    for forged in ["6.6.6.1", "6.6.6.2"] {
        let chain = format!("{forged}, 203.0.113.5, 10.1.1.1");
        assert_invalid(&own_info_as(&server, WRONG_KEY, Some(&chain)).await, &chain);
    }
    assert_throttled(
        &own_info_as(&server, WRONG_KEY, Some("6.6.6.3, 203.0.113.5, 10.1.1.1")).await,
        "203.0.113.5 over budget whatever it forges",
    );
    let log = server.stderr();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(access.len(), 3, "{log}");
    for line in access {
        assert!(line.contains("client=203.0.113.5"), "{line}");
    }
}

#[tokio::test]
async fn row_56_one_client_over_budget_never_throttles_another() {
    let server = keyed("3", "60s")
        .env(vars::TRUSTED_PROXIES, "127.0.0.1")
        .start()
        .await;
    let (mallory, alice) = (Some("198.51.100.66"), Some("198.51.100.7"));
    for i in 0..3 {
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, mallory).await,
            &format!("mallory {i}"),
        );
    }
    assert_throttled(&own_info_as(&server, WRONG_KEY, mallory).await, "mallory");
    // Alice, on another address, is judged as usual: served with her key, and her own
    // mistakes are 401s from her own budget.
    assert_user(
        &own_info_as(&server, ROOT_KEY, alice).await,
        "root",
        "alice",
    );
    assert_invalid(
        &own_info_as(&server, WRONG_KEY, alice).await,
        "alice's typo",
    );
    assert_user(
        &own_info_as(&server, ROOT_KEY, alice).await,
        "root",
        "alice again",
    );
    assert_throttled(
        &own_info_as(&server, WRONG_KEY, mallory).await,
        "mallory still",
    );
    assert_eq!(
        server.metric("portcullis_auth_throttle_clients", &[]).await,
        2.0
    );
}

#[tokio::test]
async fn the_budget_recovers_after_the_window() {
    let server = keyed("2", "2s").start().await;
    for i in 0..2 {
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, None).await,
            &format!("wrong key {i}"),
        );
    }
    let refused_at = Instant::now();
    let retry_after = assert_throttled(&own_info_as(&server, WRONG_KEY, None).await, "third");
    assert_eq!(retry_after, 1, "two failures per 2 s: one more after 1 s");
    // The valid key is refused until one failure fits again, then served.
    let served = poll(Duration::from_secs(3), || async {
        let reply = own_info_as(&server, ROOT_KEY, None).await;
        match reply.status.as_u16() {
            200 => Some(refused_at.elapsed()),
            429 => None,
            _ => panic!("unexpected answer {reply:?}"),
        }
    })
    .await
    .expect("served within 3 s");
    assert!(
        served >= Duration::from_millis(500),
        "served after {served:?}"
    );
    // One window after the last failure the whole budget is back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..2 {
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, None).await,
            &format!("again {i}"),
        );
    }
    assert_throttled(
        &own_info_as(&server, WRONG_KEY, None).await,
        "again, over budget",
    );
}

#[tokio::test]
async fn a_limit_of_zero_turns_the_throttle_off() {
    let server = keyed("0", "60s").start().await;
    for i in 0..150 {
        assert_invalid(
            &own_info_as(&server, WRONG_KEY, None).await,
            &format!("wrong key {i}"),
        );
    }
    assert_user(&own_info_as(&server, ROOT_KEY, None).await, "root", "root");
    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "invalid_key")
            .await,
        150.0
    );
    let text = server.metrics_text().await;
    assert!(!text.contains("portcullis_auth_throttle_"), "{text}");
    assert!(!text.contains("reason=\"throttled\""), "{text}");
}
