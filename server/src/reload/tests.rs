//! The reloader in process: a valid configuration applied to the KeyRegistry and the
//! authorizer, an invalid one refused whole.

use std::sync::Arc;

use actix_web::web;
use portcullis_auth::{AuthMethod, Authorizer, KeyRegistry, Principal, PrincipalKind, Verb};
use portcullis_config::Settings;
use prometheus::Registry;

use super::metrics::{ReloadMetrics, ReloadResult};
use super::{Reloadable, Reloader};
use crate::api::meta::OidcWellKnown;

fn settings(keys: &str, admins: &str) -> Settings {
    Settings::from_vars([
        ("AUTHENTICATION_APIKEY_ENABLED", "true"),
        ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
        ("AUTHENTICATION_APIKEY_USERS", "ann"),
        ("AUTHORIZATION_ADMINLIST_ENABLED", "true"),
        ("AUTHORIZATION_ADMINLIST_USERS", admins),
    ])
    .expect("valid settings")
}

fn reloader(start: &Settings) -> (Reloader, Reloadable, Registry) {
    let keys = KeyRegistry::new(start.authentication.api_key.as_ref()).start_with_handle();
    let targets = Reloadable {
        keys,
        authorizer: Arc::new(Authorizer::from_settings(&start.authorization)),
        oidc: None,
        well_known: web::Data::new(OidcWellKnown::from_settings(start)),
    };
    let registry = Registry::new();
    let metrics = ReloadMetrics::register(&registry).expect("metrics");
    (
        Reloader::new(start.clone(), targets.clone(), metrics),
        targets,
        registry,
    )
}

fn counted(registry: &Registry, result: ReloadResult) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == "portcullis_config_reloads_total")
        .flat_map(|family| family.get_metric())
        .filter(|metric| {
            metric
                .get_label()
                .iter()
                .any(|label| label.value() == result.as_str())
        })
        .map(|metric| metric.get_counter().get_value() as u64)
        .sum()
}

fn user(name: &str) -> Principal {
    Principal::new(name, Vec::new(), PrincipalKind::StaticKey)
}

#[actix_web::test]
async fn applies_static_keys_and_the_admin_list() {
    let start = settings("k-old,k-kept", "ann");
    let (mut reloader, targets, registry) = reloader(&start);
    assert!(!targets.authorizer.allows(&user("bob"), Verb::Write));

    let result = reloader.reload(Ok(settings("k-kept,k-new", "bob"))).await;
    assert_eq!(result, ReloadResult::Applied);
    assert!(targets.keys.authenticate("k-old").await.is_err());
    for key in ["k-kept", "k-new"] {
        let accepted = targets.keys.authenticate(key).await.expect("accepted");
        assert_eq!(accepted.method, AuthMethod::ApiKeyStatic);
    }
    assert!(targets.authorizer.allows(&user("bob"), Verb::Write));
    assert!(!targets.authorizer.allows(&user("ann"), Verb::Write));
    assert_eq!(counted(&registry, ReloadResult::Applied), 1);
    assert_eq!(counted(&registry, ReloadResult::Refused), 0);
}

#[actix_web::test]
async fn refuses_an_invalid_configuration_whole() {
    let start = settings("k-old", "ann");
    let (mut reloader, targets, registry) = reloader(&start);
    let invalid = Settings::from_vars([
        ("AUTHENTICATION_APIKEY_ENABLED", "true"),
        ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", "k-new"),
        ("AUTHENTICATION_APIKEY_USERS", "ann"),
        ("AUTHORIZATION_ADMINLIST_ENABLED", "maybe"),
    ]);
    assert!(invalid.is_err());
    assert_eq!(reloader.reload(invalid).await, ReloadResult::Refused);
    assert!(targets.keys.authenticate("k-old").await.is_ok());
    assert!(targets.keys.authenticate("k-new").await.is_err());
    assert!(targets.authorizer.allows(&user("ann"), Verb::Write));
    assert_eq!(counted(&registry, ReloadResult::Refused), 1);
    assert_eq!(counted(&registry, ReloadResult::Applied), 0);
    // The running configuration is still the reference: the next valid one applies.
    assert_eq!(
        reloader.reload(Ok(settings("k-new", "ann"))).await,
        ReloadResult::Applied
    );
    assert!(targets.keys.authenticate("k-old").await.is_err());
    assert!(targets.keys.authenticate("k-new").await.is_ok());
}
