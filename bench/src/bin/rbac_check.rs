//! Time per RBAC check (issue 13's benchmark, bench/rbac.sh): a database user holding roles of
//! 50 permissions each (half exact collection names, half `Name*` prefixes), 1, 100 and 1,000
//! permissions in all, all on `read_data` so a check scans every one (the worst case). Times
//! `Policies::allows` for a request the last grant allows and for one no grant allows, and the
//! whole request-path decision (the route table's plan for `GET /v1/objects/{class}/{id}` and
//! `Enforcer::decide` with the audit log off).
//!
//! Then the time to apply one role change while 100,000 users hold the role: the RoleRegistry
//! over a real user store (SQLite in a temporary directory, `synchronous=FULL` as the server
//! runs it) adds one permission to the shared role, commits it and publishes it, and a holder's
//! next check sees it; the publication alone (`Policies::set_role`: the permission set of the
//! one role combination the holders share is rebuilt, whatever their number); and the
//! publication when the 100,000 holders are spread over 1,000 combinations (each holder has the
//! changed role and one of 1,000 others), which rebuilds 1,000 sets.
//!
//! Usage: `rbac_check [iterations] [changes]` (default 1,000,000 per check figure, 200 role
//! changes). Prints one line per figure.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use portcullis_auth::api_key::UserStore;
use portcullis_auth::rbac::{
    Action, CompiledRole, Grant, Namespace, Permission, Policies, Request, RoleRegistry, RoleStore,
    UserKinds,
};
use portcullis_auth::{Principal, PrincipalKind};
use portcullis_config::RbacSettings;
use portcullis_server::authz::{plan, Enforcer, Plan};

const PER_ROLE: usize = 50;

/// How many users hold the role whose change is timed.
const HOLDERS: usize = 100_000;

fn grant(i: usize) -> Grant {
    let collection = if i.is_multiple_of(2) {
        format!("Col{i}")
    } else {
        format!("Col{i}x*")
    };
    let permission: Permission = serde_json::from_value(serde_json::json!({
        "action": "read_data",
        "data": {"collection": collection}
    }))
    .expect("a permission");
    Grant::from_wire(&permission).expect("a valid grant")
}

/// Policies where `bench` holds `total` permissions in roles of [`PER_ROLE`]; the name of a
/// collection only the last grant allows.
fn policies(total: usize) -> (Arc<Policies>, String) {
    let policies = Policies::new();
    let mut names = Vec::new();
    for (r, start) in (0..total).step_by(PER_ROLE).enumerate() {
        let end = (start + PER_ROLE).min(total);
        let name = format!("role{r}");
        policies.set_role(&name, CompiledRole::new((start..end).map(grant)));
        names.push(name);
    }
    policies.set_assignments(Namespace::Db, "bench", names.iter().map(String::as_str));
    let last = total - 1;
    let hit = if last.is_multiple_of(2) {
        format!("Col{last}")
    } else {
        format!("Col{last}xyz")
    };
    (Arc::new(policies), hit)
}

fn time(label: &str, iterations: u64, mut check: impl FnMut() -> bool, expect: bool) {
    assert_eq!(check(), expect, "{label}: wrong answer");
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(check());
    }
    let nanos = started.elapsed().as_nanos() as f64 / iterations as f64;
    println!("{label}: {nanos:.1} ns per check");
}

/// The time to apply one change to a role [`HOLDERS`] users hold: through the RoleRegistry
/// with its SQLite store (committed and published before it returns), and the publication
/// alone.
fn role_change(changes: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = RoleStore::new(UserStore::open(dir.path()).await.expect("the user store"));
        store
            .put_role("shared", &[grant(0).to_wire()])
            .await
            .expect("the shared role");
        let users: Vec<String> = (0..HOLDERS).map(|i| format!("user{i}")).collect();
        let assignments: Vec<_> = users
            .iter()
            .map(|user| (Namespace::Db, user.as_str(), "shared"))
            .collect();
        store
            .change_assignments(true, &assignments)
            .await
            .expect("the holders");
        let registry = RoleRegistry::open(
            &RbacSettings::default(),
            UserKinds {
                db: true,
                oidc: false,
            },
            Some(store),
        )
        .await
        .expect("the registry");
        let policies = registry.policies().clone();
        let holder = Principal::new(&users[HOLDERS - 1], Vec::new(), PrincipalKind::DbUser);
        let started = Instant::now();
        for i in 1..=changes {
            registry
                .add_permissions("shared", vec![grant(2 * i)])
                .await
                .expect("a change");
            // The holder's next check sees it.
            let name = format!("Col{}", 2 * i);
            assert!(policies.allows(&holder, &Request::data(Action::ReadData, &name, "*", "o")));
        }
        let millis = started.elapsed().as_secs_f64() * 1e3 / changes as f64;
        println!(
            "role change with {HOLDERS} holders, stored and published: {millis:.3} ms per change"
        );

        let grants: Vec<Grant> = (0..=changes).map(|i| grant(2 * i)).collect();
        let rounds = 10_000u32;
        let started = Instant::now();
        for _ in 0..rounds {
            policies.set_role("shared", CompiledRole::new(grants.iter().cloned()));
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!(
            "role change with {HOLDERS} holders, published only ({} grants compiled): {micros:.2} us per change",
            grants.len()
        );

        let spread = Policies::new();
        spread.set_role("shared", CompiledRole::new(grants.iter().cloned()));
        for team in 0..1000 {
            spread.set_role(&format!("team{team}"), CompiledRole::new([grant(team)]));
        }
        for (i, user) in users.iter().enumerate() {
            let team = format!("team{}", i % 1000);
            spread.set_assignments(Namespace::Db, user, ["shared", team.as_str()]);
        }
        assert_eq!(spread.combination_count(), 1000);
        let rounds = 100u32;
        let started = Instant::now();
        for _ in 0..rounds {
            spread.set_role("shared", CompiledRole::new(grants.iter().cloned()));
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!(
            "role change with {HOLDERS} holders in 1000 role combinations, published only: {micros:.1} us per change"
        );
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args
        .next()
        .map(|n| n.parse().expect("iterations: a number"))
        .unwrap_or(1_000_000);
    let changes: usize = args
        .next()
        .map(|n| n.parse().expect("changes: a number"))
        .unwrap_or(200);
    let principal = Principal::new("bench", Vec::new(), PrincipalKind::DbUser);
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for total in [1, 100, 1000] {
        let (policies, hit) = policies(total);
        let allowed = Request::data(Action::ReadData, &hit, "*", "obj");
        let denied = Request::data(Action::ReadData, "Nothing", "*", "obj");
        time(
            &format!("{total:>5} permissions, allowed by the last"),
            iterations,
            || policies.allows(black_box(&principal), black_box(&allowed)),
            true,
        );
        time(
            &format!("{total:>5} permissions, allowed by none"),
            iterations,
            || policies.allows(black_box(&principal), black_box(&denied)),
            false,
        );
        let enforcer = Enforcer::new(policies.clone(), portcullis_config::AuditLog::Off, false);
        let path = format!("/v1/objects/{hit}/00000000-0000-4000-8000-000000000001");
        time(
            &format!("{total:>5} permissions, route plan and decision"),
            iterations,
            || match plan(&Method::GET, black_box(&path), "") {
                Plan::Check(needs) => enforcer
                    .decide(&principal, needs.as_slice(), client)
                    .is_ok(),
                _ => false,
            },
            true,
        );
    }
    role_change(changes);
}
