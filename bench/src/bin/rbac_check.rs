//! Time per RBAC check (issue 13's benchmark, bench/rbac.sh): a database user holding roles of
//! 50 permissions each (half exact collection names, half `Name*` prefixes), 1, 100 and 1,000
//! permissions in all, all on `read_data` so a check scans every one (the worst case). Times
//! `Policies::allows` for a request the last grant allows and for one no grant allows, and the
//! whole request-path decision (the route table's plan for `GET /v1/objects/{class}/{id}` and
//! `Enforcer::decide` with the audit log off).
//!
//! Usage: `rbac_check [iterations]` (default 1,000,000 per figure). Prints one line per figure.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use portcullis_auth::rbac::{
    Action, CompiledRole, Grant, Namespace, Permission, Policies, Request,
};
use portcullis_auth::{Principal, PrincipalKind};
use portcullis_server::authz::{plan, Enforcer, Plan};

const PER_ROLE: usize = 50;

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

fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("iterations: a number"))
        .unwrap_or(1_000_000);
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
}
