//! Configuration reload without a restart: on SIGHUP the whole configuration is read again
//! (the process environment, `PORTCULLIS_CONFIG_FILE` and the secret `_FILE`s) with the
//! parser start-up uses, and applied when it is valid. A configuration with any problem is
//! refused whole and the running one keeps serving.
//!
//! What a reload applies ([`changes::Applicable`]): the static API keys (through the
//! KeyRegistry: a removed key is refused before the reload is reported applied), the admin
//! list, the OpenID Connect settings (a new JwksRefresher; the old keys serve until the new
//! ones load) and `LOG_LEVEL`. Settings that need a restart are named in one warning line and
//! keep their running values ([`changes::restart_only`]). Logs name what changed, never a
//! value. Counted in `portcullis_config_reloads_total{result}` ([`metrics`]).

mod changes;
pub mod metrics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use portcullis_auth::oidc::OidcSlot;
use portcullis_auth::{Authorizer, KeyRegistryHandle, OidcHandle};
use portcullis_config::{vars, ConfigError, Settings};

use crate::api::meta::OidcWellKnown;
use crate::logging::{self, LevelError};
use changes::Applicable;
use metrics::{ReloadMetrics, ReloadResult};

/// How often a new JwksRefresher is asked whether its first key set has loaded.
const LOADED_POLL: Duration = Duration::from_millis(100);

/// How long a replaced JwksRefresher runs on after the switch, for the requests that were
/// judging tokens with it.
const REPLACED_GRACE: Duration = Duration::from_secs(10);

/// What a reload changes in the running server: handles to the parts it replaces.
#[derive(Clone)]
pub struct Reloadable {
    /// The KeyRegistry (static keys).
    pub keys: KeyRegistryHandle,
    /// The authorizer the gate and the user routes share (the admin list).
    pub authorizer: Arc<Authorizer>,
    /// The gatekeeper's OpenID Connect handle, when OIDC is on.
    pub oidc: Option<OidcSlot>,
    /// What `/v1/.well-known/openid-configuration` answers.
    pub well_known: web::Data<OidcWellKnown>,
}

/// Applies new configurations to the running server, one at a time.
pub struct Reloader {
    /// The configuration in effect: the start-up one with every applied change.
    /// Restart-only settings keep their start-up values here, so a later reload names them
    /// again until the restart.
    running: Settings,
    targets: Reloadable,
    metrics: ReloadMetrics,
    /// Bumped by each reload that starts a JwksRefresher: an older one still waiting for its
    /// first keys then gives up.
    oidc_generation: Arc<AtomicU64>,
}

/// Listens for SIGHUP on the current (actix) runtime and reloads on each. Call it before the
/// server reports itself started: until a handler is installed, SIGHUP ends the process.
pub fn listen(mut reloader: Reloader) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again");
            reloader.reload(Settings::from_env()).await;
        }
    });
    Ok(())
}

impl Reloader {
    /// A reloader for a server started with `running`.
    pub fn new(running: Settings, targets: Reloadable, metrics: ReloadMetrics) -> Self {
        Reloader {
            running,
            targets,
            metrics,
            oidc_generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Applies `new` (the parse of the configuration as it is now), or refuses it whole.
    pub async fn reload(&mut self, new: Result<Settings, ConfigError>) -> ReloadResult {
        let result = match new {
            Ok(new) => self.apply(new).await,
            Err(err) => {
                // ConfigError names variables and problems, never a secret's value.
                tracing::error!(
                    "configuration reload refused; the running configuration is kept\n{err}"
                );
                ReloadResult::Refused
            }
        };
        self.metrics.observe(result);
        result
    }

    async fn apply(&mut self, new: Settings) -> ReloadResult {
        let changes = Applicable::between(&self.running, &new);
        let restart = changes::restart_only(&self.running, &new);

        // The fallible steps first, so a refusal leaves everything as it was.
        let new_oidc = match (
            changes.oidc_refresher,
            &self.targets.oidc,
            &new.authentication.oidc,
        ) {
            (true, Some(slot), Some(settings)) => match slot.current().restart(settings) {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::error!(
                        "configuration reload refused; the running configuration is kept: \
                         OpenID Connect could not start: {err}"
                    );
                    return ReloadResult::Refused;
                }
            },
            _ => None,
        };
        let mut applied: Vec<String> = Vec::new();
        if changes.static_keys {
            match self
                .targets
                .keys
                .replace_static_keys(new.authentication.api_key.as_ref())
                .await
            {
                Ok(change) => applied.push(format!(
                    "static API keys ({} added, {} removed, {} reassigned)",
                    change.added, change.removed, change.reassigned
                )),
                Err(err) => {
                    if let Some(handle) = new_oidc {
                        handle.stop();
                    }
                    tracing::error!(
                        "configuration reload refused; the running configuration is kept: \
                         the key registry could not replace the static keys: {err}"
                    );
                    return ReloadResult::Refused;
                }
            }
        }
        self.running.authentication.api_key = new.authentication.api_key.clone();

        // From here on nothing fails.
        for notice in &new.notices {
            tracing::warn!("configuration reload: {notice}");
        }
        if changes.admin_list {
            self.targets.authorizer.replace(&new.authorization);
            self.running.authorization = new.authorization.clone();
        }
        if changes.oidc_well_known || changes.oidc_refresher {
            self.targets.well_known.replace(&new);
        }
        if let (Some(handle), Some(slot)) = (new_oidc, &self.targets.oidc) {
            let generation = self.oidc_generation.fetch_add(1, Ordering::SeqCst) + 1;
            switch_when_loaded(
                slot.clone(),
                handle,
                self.oidc_generation.clone(),
                generation,
            );
        }
        if self.running.authentication.oidc.is_some() && new.authentication.oidc.is_some() {
            self.running.authentication.oidc = new.authentication.oidc.clone();
        }
        let mut restart = restart;
        if changes.log_level {
            match logging::set_level(new.log.level.as_str()) {
                Ok(()) => {
                    self.running.log.level = new.log.level;
                }
                Err(LevelError::RustLogSet) => restart.push(vars::LOG_LEVEL),
                Err(err) => tracing::warn!(
                    "configuration reload: {} not applied: {err}",
                    vars::LOG_LEVEL
                ),
            }
        }
        for name in changes.names() {
            if name != "static API keys" && !(name == vars::LOG_LEVEL && restart.contains(&name)) {
                applied.push(name.to_owned());
            }
        }
        if !restart.is_empty() {
            tracing::warn!(
                settings = %restart.join(", "),
                "configuration reload: these settings changed but need a restart; they keep \
                 their running values: {}",
                restart.join(", ")
            );
        }
        if applied.is_empty() {
            tracing::info!("configuration reloaded: nothing to change");
        } else {
            tracing::info!("configuration reloaded: {}", applied.join(", "));
        }
        ReloadResult::Applied
    }
}

/// Puts `handle` in the slot once its first key set has loaded, so the old keys serve
/// meanwhile; at once when the running handle has none to serve. Gives up (and stops the new
/// refresher) when a later reload starts another. The replaced refresher stops after
/// [`REPLACED_GRACE`].
fn switch_when_loaded(slot: OidcSlot, handle: OidcHandle, generation: Arc<AtomicU64>, mine: u64) {
    actix_web::rt::spawn(async move {
        let superseded = || generation.load(Ordering::SeqCst) != mine;
        if slot.load().is_ready() {
            while !handle.is_ready() {
                if superseded() {
                    handle.stop();
                    return;
                }
                actix_web::rt::time::sleep(LOADED_POLL).await;
            }
        }
        if superseded() {
            handle.stop();
            return;
        }
        let old = slot.replace(handle);
        tracing::info!(
            "configuration reload: OpenID Connect switched to the new settings (their issuer's \
             keys loaded)"
        );
        actix_web::rt::time::sleep(REPLACED_GRACE).await;
        old.stop();
    });
}

#[cfg(test)]
mod tests;
