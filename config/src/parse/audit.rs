//! The audit log of RBAC decisions: `PORTCULLIS_AUDIT_LOG`.

use super::Parser;
use crate::settings::AuditLog;
use crate::vars;

impl Parser<'_> {
    pub(super) fn audit_log(&mut self) -> AuditLog {
        let Some(raw) = self.get(vars::AUDIT_LOG) else {
            return AuditLog::All;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "all" => AuditLog::All,
            "denials" => AuditLog::Denials,
            "off" => AuditLog::Off,
            _ => {
                let message = format!("{raw:?} is not an audit log setting");
                self.report
                    .problem(vars::AUDIT_LOG, message, "use all, denials or off");
                AuditLog::All
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ok, only_problem, open};
    use crate::settings::AuditLog;
    use crate::vars::AUDIT_LOG;

    #[test]
    fn audit_log_is_all_by_default_and_takes_three_values() {
        assert_eq!(ok(&open(&[])).log.audit, AuditLog::All);
        let table = [
            ("all", AuditLog::All),
            (" Denials ", AuditLog::Denials),
            ("OFF", AuditLog::Off),
        ];
        for (raw, audit) in table {
            assert_eq!(ok(&open(&[(AUDIT_LOG, raw)])).log.audit, audit, "{raw}");
        }
    }

    #[test]
    fn audit_log_refuses_other_values_naming_them() {
        for raw in ["", "deny", "true", "warn"] {
            let problem = only_problem(&open(&[(AUDIT_LOG, raw)]), AUDIT_LOG);
            assert!(
                problem.to_string().contains("use all, denials or off"),
                "{problem}"
            );
        }
    }
}
