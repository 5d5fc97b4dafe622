//! Replacing the certificate pair while serving: a poll of the files' modification time and
//! length, SIGHUP, and the reload itself with its log line and metric.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::signal::unix::{signal, SignalKind};
use tokio::time::MissedTickBehavior;

use super::{pair, Tls, TlsError};

/// What asked for a reload (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    /// The certificate or key file changed on disk.
    FileChange,
    /// The process received SIGHUP.
    Signal,
}

impl ReloadTrigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::FileChange => "file change",
            Self::Signal => "SIGHUP",
        }
    }
}

/// The `result` label of `portcullis_tls_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReloadResult {
    Applied,
    Refused,
}

impl ReloadResult {
    pub(super) const ALL: [ReloadResult; 2] = [Self::Applied, Self::Refused];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Refused => "refused",
        }
    }
}

pub(super) fn reload(tls: &Tls, trigger: ReloadTrigger) -> Result<(), TlsError> {
    let settings = &tls.settings;
    match pair::load(&settings.cert_file, &settings.key_file, &tls.provider) {
        Ok(loaded) => {
            tls.resolver.replace(loaded.key);
            if let Some(not_after) = loaded.not_after {
                tls.expiry.set(not_after as f64);
            }
            count(tls, ReloadResult::Applied);
            tracing::info!(
                trigger = trigger.as_str(),
                cert_file = %settings.cert_file.display(),
                key_file = %settings.key_file.display(),
                "TLS certificate reloaded: new connections get it"
            );
            Ok(())
        }
        Err(err) => {
            count(tls, ReloadResult::Refused);
            tracing::error!(
                trigger = trigger.as_str(),
                cert_file = %settings.cert_file.display(),
                key_file = %settings.key_file.display(),
                "TLS certificate reload refused, the current certificate is still served: {err}"
            );
            Err(err)
        }
    }
}

fn count(tls: &Tls, result: ReloadResult) {
    tls.reloads.with_label_values(&[result.as_str()]).inc();
}

/// The files' identity as far as the poll can tell: modification time and length of each.
type Fingerprint = [Option<(SystemTime, u64)>; 2];

fn fingerprint(tls: &Tls) -> Fingerprint {
    let of = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.len())))
    };
    [of(&tls.settings.cert_file), of(&tls.settings.key_file)]
}

/// Polls the files and listens for SIGHUP until the runtime stops.
///
/// A change is reloaded once the files have looked the same for two polls in a row, so a
/// certificate and key written one after the other are read as a pair rather than refused
/// half-way; a refused pair is not retried until the files change again.
pub(super) async fn watch(tls: Arc<Tls>) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            tracing::warn!(error = %err, "SIGHUP cannot reload the TLS certificate");
            None
        }
    };
    let mut ticks = tokio::time::interval(tls.settings.reload_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut attempted = fingerprint(&tls);
    let mut last_seen = attempted;
    loop {
        let signalled = async {
            match hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticks.tick() => {
                let now = fingerprint(&tls);
                if now != attempted && now == last_seen {
                    attempted = now;
                    let _ = reload(&tls, ReloadTrigger::FileChange);
                }
                last_seen = now;
            }
            received = signalled => {
                if received.is_none() {
                    hangup = None;
                    continue;
                }
                attempted = fingerprint(&tls);
                last_seen = attempted;
                let _ = reload(&tls, ReloadTrigger::Signal);
            }
        }
    }
}
