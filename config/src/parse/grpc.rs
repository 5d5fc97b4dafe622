//! The gRPC listener (`PORTCULLIS_GRPC_ADDR`, `GRPC_PORT`) and its upstream
//! (`PORTCULLIS_UPSTREAM_GRPC_ADDR`).

use std::net::{IpAddr, SocketAddr};

use super::{Field, Parser};
use crate::settings::GrpcSettings;
use crate::vars;

/// Weaviate's gRPC port.
pub(super) const DEFAULT_GRPC_PORT: u16 = 50051;
/// The value of `PORTCULLIS_GRPC_ADDR` that turns the listener off.
const OFF: &str = "off";

impl Parser<'_> {
    pub(super) fn grpc(&mut self, http: SocketAddr, http_valid: bool) -> GrpcSettings {
        GrpcSettings {
            addr: self.grpc_addr(http, http_valid),
            upstream: self.upstream_grpc_addr(),
        }
    }

    fn grpc_addr(&mut self, http: SocketAddr, http_valid: bool) -> Option<SocketAddr> {
        if self
            .get(vars::GRPC_ADDR)
            .is_some_and(|raw| raw.trim().eq_ignore_ascii_case(OFF))
        {
            self.notice_ignored(&[vars::GRPC_PORT], "PORTCULLIS_GRPC_ADDR is off");
            return None;
        }
        let port = self.grpc_port();
        let explicit = self.grpc_explicit_addr();
        let default_addr = SocketAddr::new(http.ip(), DEFAULT_GRPC_PORT);
        let (addr, variable, valid) = match (&explicit, &port) {
            (Field::Set(addr), Field::Set(port)) => {
                if addr.port() != *port {
                    self.report.notice(format!(
                        "{} ({addr}) overrides {} ({port}): gRPC is served on port {}",
                        vars::GRPC_ADDR,
                        vars::GRPC_PORT,
                        addr.port()
                    ));
                }
                (*addr, vars::GRPC_ADDR, true)
            }
            (Field::Set(addr), _) => (*addr, vars::GRPC_ADDR, true),
            (Field::Invalid, _) => (default_addr, vars::GRPC_ADDR, false),
            (Field::Unset, port) => (
                SocketAddr::new(http.ip(), port.clone().unwrap_or(DEFAULT_GRPC_PORT)),
                vars::GRPC_PORT,
                !port.is_invalid(),
            ),
        };
        if valid
            && http_valid
            && addr.port() != 0
            && addr.port() == http.port()
            && ips_overlap(addr.ip(), http.ip())
        {
            self.report.problem(
                variable,
                format!("gRPC would be served on {addr}, the same port as the HTTP address {http}"),
                format!(
                    "give gRPC another port, e.g. {}={DEFAULT_GRPC_PORT} or {}={}",
                    vars::GRPC_PORT,
                    vars::GRPC_ADDR,
                    SocketAddr::new(http.ip(), DEFAULT_GRPC_PORT)
                ),
            );
        }
        Some(addr)
    }

    /// `PORTCULLIS_GRPC_ADDR` as an `IP:port` (its `off` value is handled by the caller).
    fn grpc_explicit_addr(&mut self) -> Field<SocketAddr> {
        let Some(raw) = self.get(vars::GRPC_ADDR) else {
            return Field::Unset;
        };
        match raw.trim().parse::<SocketAddr>() {
            Ok(addr) => Field::Set(addr),
            Err(_) => {
                self.report.problem(
                    vars::GRPC_ADDR,
                    format!("{raw:?} is not an IP:port socket address or off"),
                    format!(
                        "give an IP address and a port, e.g. {}=127.0.0.1:{DEFAULT_GRPC_PORT} or \
                         [::1]:{DEFAULT_GRPC_PORT} (host names are not resolved), or {}=off to \
                         turn gRPC off",
                        vars::GRPC_ADDR,
                        vars::GRPC_ADDR
                    ),
                );
                Field::Invalid
            }
        }
    }

    fn grpc_port(&mut self) -> Field<u16> {
        let Some(raw) = self.get(vars::GRPC_PORT) else {
            return Field::Unset;
        };
        match raw.trim().parse::<u16>() {
            Ok(port) => Field::Set(port),
            Err(_) => {
                self.report.problem(
                    vars::GRPC_PORT,
                    format!("{raw:?} is not a port number (0 to 65535)"),
                    format!("e.g. {}={DEFAULT_GRPC_PORT}", vars::GRPC_PORT),
                );
                Field::Invalid
            }
        }
    }

    fn upstream_grpc_addr(&mut self) -> Option<String> {
        let raw = self.get(vars::UPSTREAM_GRPC_ADDR)?;
        let addr = match parse_host_port(raw) {
            Ok(addr) => addr,
            Err(why) => {
                self.report.problem(
                    vars::UPSTREAM_GRPC_ADDR,
                    format!("{:?} {why}", super::redact_userinfo(raw)),
                    format!(
                        "e.g. {}=127.0.0.1:{DEFAULT_GRPC_PORT} or weaviate:{DEFAULT_GRPC_PORT}",
                        vars::UPSTREAM_GRPC_ADDR
                    ),
                );
                return None;
            }
        };
        // REST served by the embedded store and gRPC by an upstream would be two databases
        // behind one front end.
        if !self.is_set(vars::UPSTREAM_URL) {
            self.report.problem(
                vars::UPSTREAM_GRPC_ADDR,
                "is set without PORTCULLIS_UPSTREAM_URL: REST would be served by the embedded \
                 store and gRPC by the upstream",
                format!(
                    "set {} to the same database's REST address, or unset {}",
                    vars::UPSTREAM_URL,
                    vars::UPSTREAM_GRPC_ADDR
                ),
            );
            return None;
        }
        Some(addr)
    }
}

/// Checks a `host:port` (a host name, an IPv4 address or a bracketed IPv6 address, and a port
/// from 1 to 65535). Returns it trimmed.
fn parse_host_port(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.contains("://") {
        return Err("must be host:port without a scheme");
    }
    if trimmed.contains(['/', '?', '#', '@']) || trimmed.chars().any(char::is_whitespace) {
        return Err("must be host:port without a path, query or credentials");
    }
    let (host, port) = trimmed.rsplit_once(':').ok_or("has no port")?;
    if host.is_empty() {
        return Err("has no host");
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {}
        _ => return Err("has an invalid port"),
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if bracketed {
        if host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return Err("has an invalid IPv6 address");
        }
    } else if host.contains([':', '[', ']']) {
        return Err("has an IPv6 address without brackets");
    } else if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err("has an invalid host name");
    }
    Ok(trimmed.to_owned())
}

/// Whether two listeners on these IPs would claim the same port.
fn ips_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

#[cfg(test)]
mod tests {
    use crate::parse::tests::*;
    use crate::vars::*;

    #[test]
    fn serves_grpc_on_the_http_ip_and_port_50051_by_default() {
        let settings = ok(&open(&[(HTTP_ADDR, "0.0.0.0:9000")]));
        assert_eq!(
            settings.grpc.addr,
            Some("0.0.0.0:50051".parse().expect("addr"))
        );
        assert_eq!(settings.grpc.upstream, None);
        assert_eq!(settings.notices, Vec::<String>::new());
    }

    #[test]
    fn grpc_port_moves_the_listener_and_the_explicit_address_wins_with_a_notice() {
        let settings = ok(&open(&[(GRPC_PORT, "6000")]));
        assert_eq!(
            settings.grpc.addr,
            Some("127.0.0.1:6000".parse().expect("addr"))
        );
        let settings = ok(&open(&[(GRPC_PORT, "6000"), (GRPC_ADDR, "[::1]:7000")]));
        assert_eq!(
            settings.grpc.addr,
            Some("[::1]:7000".parse().expect("addr"))
        );
        assert_eq!(
            settings.notices,
            vec![
                "PORTCULLIS_GRPC_ADDR ([::1]:7000) overrides GRPC_PORT (6000): gRPC is served on \
                 port 7000"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn port_zero_is_ephemeral_and_off_turns_the_listener_off() {
        let settings = ok(&open(&[
            (GRPC_ADDR, "127.0.0.1:0"),
            (HTTP_ADDR, "127.0.0.1:0"),
        ]));
        assert_eq!(
            settings.grpc.addr,
            Some("127.0.0.1:0".parse().expect("addr"))
        );
        for off in ["off", "OFF", " Off "] {
            let settings = ok(&open(&[(GRPC_ADDR, off), (GRPC_PORT, "1")]));
            assert_eq!(settings.grpc.addr, None, "{off:?}");
            assert_eq!(
                settings.notices,
                vec!["GRPC_PORT is set but ignored because PORTCULLIS_GRPC_ADDR is off".to_owned()]
            );
        }
    }

    #[test]
    fn rejects_bad_addresses_and_ports() {
        for (name, value, message) in [
            (
                GRPC_ADDR,
                "localhost:50051",
                "\"localhost:50051\" is not an IP:port socket address or off",
            ),
            (
                GRPC_ADDR,
                "false",
                "\"false\" is not an IP:port socket address or off",
            ),
            (
                GRPC_PORT,
                "65536",
                "\"65536\" is not a port number (0 to 65535)",
            ),
            (GRPC_PORT, "-1", "\"-1\" is not a port number (0 to 65535)"),
        ] {
            let found = problems(&open(&[(name, value)]));
            assert_eq!(found.len(), 1, "{name}={value}");
            assert_eq!(found[0].variable, name);
            assert_eq!(found[0].message, message);
        }
    }

    #[test]
    fn rejects_the_http_port_on_an_overlapping_ip() {
        let found = problems(&open(&[(HTTP_ADDR, "0.0.0.0:8080"), (GRPC_PORT, "8080")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, GRPC_PORT);
        assert_eq!(
            found[0].message,
            "gRPC would be served on 0.0.0.0:8080, the same port as the HTTP address 0.0.0.0:8080"
        );
        let found = problems(&open(&[(GRPC_ADDR, "127.0.0.1:8080")]));
        assert_eq!(found[0].variable, GRPC_ADDR);
        // Another IP may share the port.
        let settings = ok(&open(&[(GRPC_ADDR, "127.0.0.2:8080")]));
        assert_eq!(
            settings.grpc.addr,
            Some("127.0.0.2:8080".parse().expect("addr"))
        );
    }

    #[test]
    fn reads_the_upstream_grpc_address_beside_the_upstream_url() {
        for addr in [
            "127.0.0.1:50051",
            "weaviate:50051",
            "[::1]:50051",
            "db.internal:1",
        ] {
            let settings = ok(&open(&[
                (UPSTREAM_URL, "http://127.0.0.1:8081"),
                (UPSTREAM_GRPC_ADDR, addr),
            ]));
            assert_eq!(settings.grpc.upstream.as_deref(), Some(addr));
        }
    }

    #[test]
    fn rejects_bad_upstream_grpc_addresses() {
        for (value, why) in [
            ("http://h:1", "must be host:port without a scheme"),
            (
                "h:1/x",
                "must be host:port without a path, query or credentials",
            ),
            (
                "u:p@h:1",
                "must be host:port without a path, query or credentials",
            ),
            ("h", "has no port"),
            (":1", "has no host"),
            ("h:0", "has an invalid port"),
            ("h:x", "has an invalid port"),
            ("::1:50051", "has an IPv6 address without brackets"),
            ("[zz]:1", "has an invalid IPv6 address"),
            ("h$:1", "has an invalid host name"),
        ] {
            let found = problems(&open(&[
                (UPSTREAM_URL, "http://127.0.0.1:8081"),
                (UPSTREAM_GRPC_ADDR, value),
            ]));
            assert_eq!(found.len(), 1, "{value}");
            assert_eq!(found[0].variable, UPSTREAM_GRPC_ADDR);
            assert!(
                found[0].message.ends_with(why),
                "{value}: {}",
                found[0].message
            );
        }
    }

    #[test]
    fn rejects_an_upstream_grpc_address_without_an_upstream_url() {
        let found = problems(&open(&[(UPSTREAM_GRPC_ADDR, "127.0.0.1:50051")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, UPSTREAM_GRPC_ADDR);
        assert!(found[0]
            .message
            .starts_with("is set without PORTCULLIS_UPSTREAM_URL"));
    }
}
