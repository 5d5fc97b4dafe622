//! The soak driver (`bench/soak.sh`): runs the release server against the bench's OpenID issuer
//! for a long time at a fixed rate with a mix of credentials, rotates a database user's key
//! every second and the issuer's keys every minute, samples the server's resident memory, and
//! fails on any 5xx, any status a request class must not get, or memory that is not flat after
//! the warm-up.
//!
//! Environment: `PORTCULLIS_BIN` (the server binary, required), `SOAK_SECONDS` (600),
//! `SOAK_RATE` (requests/s; unset: half the rate a closed-loop probe of `SOAK_PROBE_SECONDS`,
//! default 5, reaches), `SOAK_WARMUP` (seconds; default a third of the run, at most 120),
//! `SOAK_ISSUER_ROTATION` (seconds, 60), `SOAK_CONNECTIONS` (64), `SOAK_WORKERS` (the server's
//! workers, 1), `SOAK_RSS_TOLERANCE` (0.10).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use portcullis_auth::api_key::format;
use portcullis_testkit::{FaultIssuer, TestKey, CLIENT_ID};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A kind of request, with the statuses it may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Anonymous,
    StaticKey,
    DbKeySteady,
    DbKeyRotating,
    OidcCached,
    OidcNew,
    WrongStaticKey,
    WrongDbKey,
    BadToken,
    RotateDbKey,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Anonymous => "anonymous",
            Class::StaticKey => "static key",
            Class::DbKeySteady => "database key",
            Class::DbKeyRotating => "database key, rotated every second",
            Class::OidcCached => "OIDC token, cached",
            Class::OidcNew => "OIDC token, new per request",
            Class::WrongStaticKey => "wrong static-shaped key",
            Class::WrongDbKey => "wrong pcu_ key (valid checksum)",
            Class::BadToken => "OIDC token, bad signature or expired",
            Class::RotateDbKey => "rotate-key (admin, REST users API)",
        }
    }

    /// Whether `status` is expected; `rotated` says the key was rotated while in flight.
    fn expects(self, status: u16, rotated: bool) -> bool {
        match self {
            Class::Anonymous
            | Class::StaticKey
            | Class::DbKeySteady
            | Class::OidcCached
            | Class::OidcNew
            | Class::RotateDbKey => status == 200,
            Class::DbKeyRotating => status == 200 || (rotated && status == 401),
            // Wrong credentials: 401, or 429 once the failed-credential throttle is over budget.
            Class::WrongStaticKey | Class::WrongDbKey | Class::BadToken => {
                status == 401 || status == 429
            }
        }
    }
}

/// The mix: one round of twenty requests.
const MIX: [Class; 20] = [
    Class::Anonymous,
    Class::StaticKey,
    Class::DbKeySteady,
    Class::OidcCached,
    Class::OidcNew,
    Class::WrongStaticKey,
    Class::Anonymous,
    Class::StaticKey,
    Class::DbKeySteady,
    Class::OidcCached,
    Class::BadToken,
    Class::DbKeyRotating,
    Class::Anonymous,
    Class::StaticKey,
    Class::DbKeySteady,
    Class::OidcCached,
    Class::OidcNew,
    Class::WrongDbKey,
    Class::OidcCached,
    Class::BadToken,
];

/// The credentials the load uses; the rotators replace them.
struct Credentials {
    static_key: String,
    db_steady: String,
    db_rotating: String,
    /// Rotations of `db_rotating` completed (the driver holds the new key).
    db_generation: u64,
    /// Rotations of `db_rotating` started (the request is sent): a request sent while one was
    /// under way may carry a key the server has already replaced.
    db_rotations_started: u64,
    oidc_cached: String,
    bad_signature: String,
    expired: String,
}

/// Status counts per class, and the requests that got what they must not.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<(Class, u16), u64>,
    /// Transport failures (status 0 in `counts`).
    unexpected: BTreeMap<Class, u64>,
    starved: u64,
}

struct Shared {
    base: String,
    admin_key: String,
    creds: RwLock<Credentials>,
    tally: Mutex<Tally>,
    /// New tokens, each with the generation of the key that signed it.
    fresh: Mutex<mpsc::Receiver<(u64, String)>>,
    /// The issuer's current key generation (new tokens are signed with its key).
    generation: AtomicU64,
    /// The oldest generation whose tokens are still sent. Raised two seconds before the keys
    /// it leaves behind are unpublished, so no request carrying them is still in flight then.
    oldest: AtomicU64,
    sent: AtomicU64,
    stop: AtomicBool,
    /// Valid credentials come from 127.0.0.1, wrong ones from 127.0.0.2, the rotating key from
    /// 127.0.0.3: a failed-credential throttle keyed by address sees them as three clients.
    good: reqwest::Client,
    wrong: reqwest::Client,
    rotating: reqwest::Client,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        .build()
        .expect("HTTP client")
}

/// The issuer's keys of generation `g`: an RSA key (the cached tokens) and an Ed25519 key
/// (new tokens: cheap to mint), each with a `kid` of its own generation.
fn keys_of(g: u64) -> (TestKey, TestKey) {
    let rsa = match g % 3 {
        0 => TestKey::rsa_a(),
        1 => TestKey::rsa_b(),
        _ => TestKey::rsa_c(),
    };
    (
        rsa.with_kid(&format!("soak-rsa-{g}")),
        TestKey::ed25519().with_kid(&format!("soak-ed-{g}")),
    )
}

fn mint_oidc(issuer: &FaultIssuer, rsa: &TestKey) -> (String, String, String) {
    let cached = issuer.token(rsa);
    let mut bad = cached.clone().into_bytes();
    let at = bad.len() - 20;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("ASCII token");
    let expired = issuer.token_with(rsa, |_, claims| {
        claims.insert("exp".into(), json!(1_000_000_000));
    });
    (cached, bad, expired)
}

async fn start_server(
    bin: &str,
    issuer: &str,
    keys: &str,
    data: &std::path::Path,
) -> (Child, String) {
    let workers: usize = env_or("SOAK_WORKERS", 1);
    let stderr = std::fs::File::create(data.join("server.log")).expect("server log");
    let mut child = Command::new(bin)
        .env_clear()
        .envs([
            ("PORTCULLIS_HTTP_ADDR", "127.0.0.1:0"),
            ("PORTCULLIS_METRICS_ADDR", "127.0.0.1:0"),
            ("PORTCULLIS_GRPC_ADDR", "off"),
            // The rotating key's own client (127.0.0.3) fails the requests it has in flight
            // when its key is rotated, two or three per rotation: at one rotation a second that
            // is ~150 failures a minute, over the default budget of 100, and the throttle would
            // then refuse its good requests too, as designed for a client that keeps failing.
            // The wrong-credential client (127.0.0.2) is far over either budget.
            ("PORTCULLIS_AUTH_FAILURE_LIMIT", "1000"),
            ("PORTCULLIS_WORKERS", &workers.to_string()),
            (
                "PERSISTENCE_DATA_PATH",
                data.join("data").to_str().expect("path"),
            ),
            ("LOG_LEVEL", "warn"),
            ("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
            ("AUTHENTICATION_APIKEY_USERS", "soak-admin,soak-static"),
            ("AUTHENTICATION_DB_USERS_ENABLED", "true"),
            ("AUTHENTICATION_OIDC_ENABLED", "true"),
            ("AUTHENTICATION_OIDC_ISSUER", issuer),
            ("AUTHENTICATION_OIDC_CLIENT_ID", CLIENT_ID),
            ("AUTHENTICATION_OIDC_USERNAME_CLAIM", "preferred_username"),
            ("AUTHENTICATION_OIDC_GROUPS_CLAIM", "groups"),
            ("AUTHORIZATION_ADMINLIST_ENABLED", "true"),
            ("AUTHORIZATION_ADMINLIST_USERS", "soak-admin"),
            (
                "AUTHORIZATION_ADMINLIST_READONLY_USERS",
                "anonymous,soak-static,soak-steady,soak-rotating",
            ),
            ("AUTHORIZATION_ADMINLIST_READONLY_GROUPS", "staff"),
        ])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the server (PORTCULLIS_BIN)");
    let stdout = child.stdout.take().expect("server stdout");
    let stdout = tokio::process::ChildStdout::from_std(stdout).expect("async stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("http listening on ") {
                return addr.to_owned();
            }
        }
        panic!("the server exited before listening (see its log)");
    })
    .await
    .expect("the server did not start within 30 s");
    // Keep reading stdout so the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}

async fn create_db_user(shared: &Shared, name: &str) -> String {
    let response = shared
        .good
        .post(format!("{}/v1/users/db/{name}", shared.base))
        .bearer_auth(&shared.admin_key)
        .send()
        .await
        .expect("create user");
    assert_eq!(response.status().as_u16(), 201, "creating {name}");
    let body: Value = response.json().await.expect("user body");
    body["apikey"].as_str().expect("apikey").to_owned()
}

/// Sends one request of `class`; returns its status (0 for a transport failure) and whether a
/// rotated key was rotated while in flight.
async fn send(shared: &Shared, class: Class) -> (u16, bool) {
    let url = format!("{}/v1/meta", shared.base);
    let (client, credential, generation) = {
        let creds = shared.creds.read().expect("credentials");
        match class {
            Class::Anonymous => (&shared.good, None, 0),
            Class::StaticKey => (&shared.good, Some(creds.static_key.clone()), 0),
            Class::DbKeySteady => (&shared.good, Some(creds.db_steady.clone()), 0),
            Class::DbKeyRotating => (
                &shared.rotating,
                Some(creds.db_rotating.clone()),
                creds.db_generation,
            ),
            Class::OidcCached => (&shared.good, Some(creds.oidc_cached.clone()), 0),
            Class::OidcNew => {
                // Tokens of a generation whose key has left the JWKS are dropped unsent.
                let oldest = shared.oldest.load(Ordering::Relaxed);
                let fresh = {
                    let queue = shared.fresh.lock().expect("fresh tokens");
                    std::iter::from_fn(|| queue.try_recv().ok())
                        .find(|(g, _)| *g >= oldest)
                        .map(|(_, token)| token)
                };
                let token = fresh.unwrap_or_else(|| {
                    shared.tally.lock().expect("tally").starved += 1;
                    creds.oidc_cached.clone()
                });
                (&shared.good, Some(token), 0)
            }
            Class::WrongStaticKey => (
                &shared.wrong,
                Some(format!("wrong-key-{}", shared.sent.load(Ordering::Relaxed))),
                0,
            ),
            Class::WrongDbKey => (
                &shared.wrong,
                Some(format::generate().expect("random").expose().to_owned()),
                0,
            ),
            Class::BadToken => {
                let token = if shared.sent.load(Ordering::Relaxed).is_multiple_of(2) {
                    creds.bad_signature.clone()
                } else {
                    creds.expired.clone()
                };
                (&shared.wrong, Some(token), 0)
            }
            Class::RotateDbKey => unreachable!("sent by the rotator"),
        }
    };
    let mut request = client.get(url);
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    let status = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        // No answer: 0 for a timeout (10 s), 1 for a refused or reset connection, 2 otherwise.
        Err(err) if err.is_timeout() => 0,
        Err(err) if err.is_connect() => 1,
        Err(_) => 2,
    };
    let rotated = class == Class::DbKeyRotating
        && shared
            .creds
            .read()
            .expect("credentials")
            .db_rotations_started
            > generation;
    (status, rotated)
}

fn record(shared: &Shared, class: Class, status: u16, rotated: bool) {
    let mut tally = shared.tally.lock().expect("tally");
    *tally.counts.entry((class, status)).or_default() += 1;
    if !class.expects(status, rotated) {
        *tally.unexpected.entry(class).or_default() += 1;
    }
}

/// Closed loop: `connections` tasks sending the mix as fast as answers come back.
async fn probe(shared: Arc<Shared>, connections: usize, seconds: u64) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let shared = shared.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut n = i;
                while Instant::now() < deadline {
                    let class = MIX[n % MIX.len()];
                    n += connections;
                    if class == Class::OidcNew || class == Class::DbKeyRotating {
                        continue;
                    }
                    send(&shared, class).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let bin = std::env::var("PORTCULLIS_BIN").expect("PORTCULLIS_BIN: the server binary");
    let seconds: u64 = env_or("SOAK_SECONDS", 600);
    let warmup: u64 = env_or("SOAK_WARMUP", (seconds / 3).min(120));
    let rotation: u64 = env_or("SOAK_ISSUER_ROTATION", 60);
    let connections: usize = env_or("SOAK_CONNECTIONS", 64);
    let tolerance: f64 = env_or("SOAK_RSS_TOLERANCE", 0.10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let passed = runtime.block_on(soak(bin, seconds, warmup, rotation, connections, tolerance));
    std::process::exit(if passed { 0 } else { 1 });
}

async fn soak(
    bin: String,
    seconds: u64,
    warmup: u64,
    rotation: u64,
    connections: usize,
    tolerance: f64,
) -> bool {
    // Kept after the run: the server's log is in it.
    let work = tempfile::Builder::new()
        .prefix("portcullis-soak-")
        .tempdir()
        .expect("work directory")
        .keep();
    let (rsa, ed) = keys_of(0);
    let issuer = Arc::new(FaultIssuer::start(&[&rsa, &ed]).await);
    let admin_key = format!("soak-admin-{}", format::generate().expect("random").id());
    let static_key = format!("soak-static-{}", format::generate().expect("random").id());
    let (mut child, base) = start_server(
        &bin,
        &issuer.url(),
        &format!("{admin_key},{static_key}"),
        &work,
    )
    .await;
    let pid = child.id();
    println!(
        "server {base} (pid {pid}, log {}), issuer {}",
        work.join("server.log").display(),
        issuer.url()
    );

    let (cached, bad_signature, expired) = mint_oidc(&issuer, &rsa);
    let (tx, rx) = mpsc::sync_channel::<(u64, String)>(256);
    let shared = Arc::new(Shared {
        base,
        admin_key,
        creds: RwLock::new(Credentials {
            static_key,
            db_steady: String::new(),
            db_rotating: String::new(),
            db_generation: 0,
            db_rotations_started: 0,
            oidc_cached: cached,
            bad_signature,
            expired,
        }),
        tally: Mutex::new(Tally::default()),
        fresh: Mutex::new(rx),
        generation: AtomicU64::new(0),
        oldest: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        good: client(1),
        wrong: client(2),
        rotating: client(3),
    });
    let steady = create_db_user(&shared, "soak-steady").await;
    let rotating = create_db_user(&shared, "soak-rotating").await;
    {
        let mut creds = shared.creds.write().expect("credentials");
        creds.db_steady = steady;
        creds.db_rotating = rotating;
    }

    // Readiness: the OIDC keys loaded (a cached-token request answered 200).
    let ready = Instant::now();
    while send(&shared, Class::OidcCached).await.0 != 200 {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "not ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rate: f64 = match std::env::var("SOAK_RATE").ok().and_then(|r| r.parse().ok()) {
        Some(rate) => {
            println!("rate {rate:.0} requests/s (SOAK_RATE)");
            rate
        }
        None => {
            let probe_seconds = env_or("SOAK_PROBE_SECONDS", 5);
            let capacity = probe(shared.clone(), connections, probe_seconds).await;
            println!(
                "probe: {capacity:.0} requests/s closed-loop over {probe_seconds} s; soaking at half: {:.0}/s",
                capacity / 2.0
            );
            capacity / 2.0
        }
    };
    *shared.tally.lock().expect("tally") = Tally::default();

    // New tokens, minted off the runtime for the current generation's Ed25519 key.
    {
        let issuer = issuer.clone();
        let shared = shared.clone();
        std::thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                let g = shared.generation.load(Ordering::Relaxed);
                let (_, ed) = keys_of(g);
                for _ in 0..64 {
                    if tx.send((g, issuer.token(&ed))).is_err() {
                        return;
                    }
                }
            }
        });
    }

    // The database user's key, rotated every second through the REST users API.
    let rotator = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            while !shared.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                shared
                    .creds
                    .write()
                    .expect("credentials")
                    .db_rotations_started += 1;
                let response = shared
                    .good
                    .post(format!(
                        "{}/v1/users/db/soak-rotating/rotate-key",
                        shared.base
                    ))
                    .bearer_auth(&shared.admin_key)
                    .send()
                    .await;
                let (status, key) = match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        (status, body["apikey"].as_str().map(str::to_owned))
                    }
                    Err(err) if err.is_timeout() => (0, None),
                    Err(_) => (2, None),
                };
                let mut creds = shared.creds.write().expect("credentials");
                if let Some(key) = key {
                    creds.db_rotating = key;
                }
                creds.db_generation = creds.db_rotations_started;
                record(&shared, Class::RotateDbKey, status, false);
            }
        })
    };

    // The issuer's keys, rotated every `rotation` seconds: the new generation is published
    // beside the previous one, which leaves at the next rotation.
    let issuer_rotator = {
        let shared = shared.clone();
        let issuer = issuer.clone();
        tokio::spawn(async move {
            let mut g = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(rotation)).await;
                if shared.stop.load(Ordering::Relaxed) {
                    return g;
                }
                g += 1;
                shared.oldest.store(g - 1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (old_rsa, old_ed) = keys_of(g - 1);
                let (rsa, ed) = keys_of(g);
                issuer.publish(&[&rsa, &ed, &old_rsa, &old_ed]);
                shared.generation.store(g, Ordering::Relaxed);
                let issuer = issuer.clone();
                let (cached, bad, expired) =
                    tokio::task::spawn_blocking(move || mint_oidc(&issuer, &rsa))
                        .await
                        .expect("minting");
                let mut creds = shared.creds.write().expect("credentials");
                creds.oidc_cached = cached;
                creds.bad_signature = bad;
                creds.expired = expired;
            }
        })
    };

    // Resident memory every 10 s.
    let sampler = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !shared.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kib) = rss_kib(pid) {
                    samples.push((start.elapsed().as_secs(), kib));
                }
            }
            samples
        })
    };

    // The load: `connections` tasks, each on its share of the rate.
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let period = Duration::from_secs_f64(connections as f64 / rate.max(1.0));
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + period.mul_f64(i as f64 / connections as f64),
                    period,
                );
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while Instant::now() < deadline {
                    tick.tick().await;
                    let n = shared.sent.fetch_add(1, Ordering::Relaxed);
                    let class = MIX[(n as usize) % MIX.len()];
                    let (status, rotated) = send(&shared, class).await;
                    record(&shared, class, status, rotated);
                }
            })
        })
        .collect();
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let sent = shared.sent.load(Ordering::Relaxed);
        let unexpected: u64 = shared
            .tally
            .lock()
            .expect("tally")
            .unexpected
            .values()
            .sum();
        println!(
            "{:>4} s: {} requests/s, {} unexpected so far, RSS {} KiB",
            start.elapsed().as_secs(),
            (sent - last) / 10,
            unexpected,
            rss_kib(pid).unwrap_or(0)
        );
        last = sent;
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    issuer_rotator.abort();
    let rotations = shared.generation.load(Ordering::Relaxed);
    let _ = rotator.await;
    let samples = sampler.await.unwrap_or_default();
    let server_alive = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();

    report(
        &shared,
        elapsed,
        rate,
        rotations,
        warmup,
        tolerance,
        &samples,
        server_alive,
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    shared: &Shared,
    elapsed: f64,
    rate: f64,
    rotations: u64,
    warmup: u64,
    tolerance: f64,
    samples: &[(u64, u64)],
    server_alive: bool,
) -> bool {
    let tally = shared.tally.lock().expect("tally");
    let total: u64 = tally.counts.values().sum();
    println!();
    println!(
        "{total} requests in {elapsed:.0} s ({:.0}/s, target {rate:.0}/s); {rotations} issuer key rotations; {} new tokens fell back to the cached one (minting too slow)",
        total as f64 / elapsed,
        tally.starved
    );
    println!();
    println!("| class | requests | statuses | unexpected |");
    println!("| --- | ---: | --- | ---: |");
    let mut classes: Vec<Class> = tally.counts.keys().map(|(c, _)| *c).collect();
    classes.dedup();
    let mut fivexx = 0;
    for class in &classes {
        let statuses: Vec<(u16, u64)> = tally
            .counts
            .iter()
            .filter(|((c, _), _)| c == class)
            .map(|((_, s), n)| (*s, *n))
            .collect();
        fivexx += statuses
            .iter()
            .filter(|(s, _)| *s >= 500)
            .map(|(_, n)| n)
            .sum::<u64>();
        let count: u64 = statuses.iter().map(|(_, n)| n).sum();
        let shown: Vec<String> = statuses
            .iter()
            .map(|(s, n)| {
                if *s < 100 {
                    let why = ["timeout", "connect", "transport"][usize::from(*s).min(2)];
                    format!("no answer ({why}): {n}")
                } else {
                    format!("{s}: {n}")
                }
            })
            .collect();
        println!(
            "| {} | {count} | {} | {} |",
            class.name(),
            shown.join(", "),
            tally.unexpected.get(class).copied().unwrap_or(0)
        );
    }
    let unexpected: u64 = tally.unexpected.values().sum();
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= warmup)
        .map(|(_, kib)| *kib)
        .collect();
    let (min, max) = (
        after.iter().copied().min().unwrap_or(0),
        after.iter().copied().max().unwrap_or(0),
    );
    let growth = if min > 0 {
        max as f64 / min as f64 - 1.0
    } else {
        f64::INFINITY
    };
    println!();
    println!(
        "RSS (KiB) every 10 s: {}",
        samples
            .iter()
            .map(|(t, kib)| format!("{t}s={kib}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "RSS after the {warmup} s warm-up: min {min} KiB, max {max} KiB, spread {:.1}% (limit {:.0}%)",
        growth * 100.0,
        tolerance * 100.0
    );
    let checks = [
        ("0 5xx", fivexx == 0),
        ("0 unexpected statuses", unexpected == 0),
        (
            "RSS flat after warm-up",
            after.len() >= 2 && growth <= tolerance,
        ),
        ("server alive at the end", server_alive),
    ];
    println!();
    let mut passed = true;
    for (name, ok) in checks {
        println!("{} {name}", if ok { "PASS" } else { "FAIL" });
        passed &= ok;
    }
    passed
}
