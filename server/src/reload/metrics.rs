//! The reload's metrics: `portcullis_config_reloads_total{result}` and
//! `portcullis_config_last_reload_timestamp_seconds` (`docs/metrics.md`).

use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};

/// How a reload ended: the closed set of the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration is in effect (restart-only settings aside).
    Applied,
    /// The new configuration was refused whole; the old one keeps serving.
    Refused,
}

impl ReloadResult {
    /// Every result, in label order.
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Applied, ReloadResult::Refused];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Refused => "refused",
        }
    }
}

/// The reload counters, registered once.
pub struct ReloadMetrics {
    applied: IntCounter,
    refused: IntCounter,
    last_applied: Gauge,
}

impl ReloadMetrics {
    /// Creates the metrics on `registry`, every `result` series present from the start.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new(
                "portcullis_config_reloads_total",
                "Configuration reloads (SIGHUP), by result: applied, or refused whole.",
            ),
            &["result"],
        )?;
        let last_applied = Gauge::new(
            "portcullis_config_last_reload_timestamp_seconds",
            "Unix time of the last applied configuration reload (0 before the first).",
        )?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(last_applied.clone()))?;
        Ok(ReloadMetrics {
            applied: reloads.with_label_values(&[ReloadResult::Applied.as_str()]),
            refused: reloads.with_label_values(&[ReloadResult::Refused.as_str()]),
            last_applied,
        })
    }

    /// Counts a reload; an applied one also sets the timestamp.
    pub fn observe(&self, result: ReloadResult) {
        match result {
            ReloadResult::Applied => {
                self.applied.inc();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.last_applied.set(now);
            }
            ReloadResult::Refused => self.refused.inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn counts_each_result_and_stamps_only_applied_reloads() {
        let registry = Registry::new();
        let metrics = ReloadMetrics::register(&registry).expect("register");
        let before = text(&registry);
        assert!(before.contains("portcullis_config_reloads_total{result=\"applied\"} 0"));
        assert!(before.contains("portcullis_config_reloads_total{result=\"refused\"} 0"));
        assert!(before.contains("portcullis_config_last_reload_timestamp_seconds 0"));
        metrics.observe(ReloadResult::Refused);
        assert!(text(&registry).contains("portcullis_config_last_reload_timestamp_seconds 0"));
        metrics.observe(ReloadResult::Applied);
        let after = text(&registry);
        assert!(after.contains("portcullis_config_reloads_total{result=\"applied\"} 1"));
        assert!(after.contains("portcullis_config_reloads_total{result=\"refused\"} 1"));
        assert!(!after.contains("portcullis_config_last_reload_timestamp_seconds 0"));
    }
}
