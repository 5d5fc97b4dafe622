//! Who the client is: the one rule every listener, the access log and the failure throttle
//! use. The client is the peer, unless the peer is a trusted proxy
//! (`PORTCULLIS_TRUSTED_PROXIES`); then `X-Forwarded-For` is walked from the right, through
//! hops that are themselves trusted, to the first address that is not: each trusted hop
//! appended the address it received from, so that address is the first one nobody we trust
//! could have forged. Nothing in a request from an untrusted peer changes its address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use portcullis_config::Cidr;

/// The most `X-Forwarded-For` entries walked through trusted hops. Real chains are a few
/// hops long; the bound keeps the walk short even when a wide network is trusted.
const MAX_HOPS: usize = 32;

/// The address of a request whose peer is unknown (an in-process test request).
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The trusted proxy networks, and the rule that finds the client address with them.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Box<[Cidr]>,
}

impl TrustedProxies {
    /// The rule over `networks` (none: the client is always the peer).
    pub fn new(networks: &[Cidr]) -> Self {
        TrustedProxies {
            networks: networks.into(),
        }
    }

    /// Whether `addr` is in a trusted network.
    pub fn trusts(&self, addr: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(addr))
    }

    /// The client address of a request from `peer` carrying the `X-Forwarded-For` header
    /// values `forwarded_for` returns, in the order they were received (several headers read
    /// as one comma-joined list, RFC 9110 section 5.3). The headers are looked up only when
    /// the peer is trusted, so a server without trusted proxies never reads them.
    ///
    /// `X-Forwarded-For` is read only when the peer is trusted. An entry that is not an
    /// address (`unknown`, an obfuscated name, an empty item) ends the walk at the trusted
    /// hop that passed it on, as does a walk through [`MAX_HOPS`] trusted hops. Entries may
    /// carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`). IPv4-mapped IPv6 addresses are
    /// answered as IPv4.
    pub fn client_address<'a, I>(&self, peer: IpAddr, forwarded_for: impl FnOnce() -> I) -> IpAddr
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let mut client = peer.to_canonical();
        if self.networks.is_empty() || !self.trusts(client) {
            return client;
        }
        let entries = forwarded_for()
            .rev()
            .flat_map(|value| value.rsplit(|&b| b == b','))
            .take(MAX_HOPS);
        for entry in entries {
            let Some(hop) = parse_hop(entry) else {
                return client;
            };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry as an address: `addr`, `addr:port` or `[v6]:port`, with
/// optional whitespace around it.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    let addr = match text.parse::<IpAddr>() {
        Ok(addr) => addr,
        Err(_) => text.parse::<SocketAddr>().ok()?.ip(),
    };
    Some(addr.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(networks: &[&str]) -> TrustedProxies {
        let networks: Vec<Cidr> = networks
            .iter()
            .map(|n| n.parse().expect("a network"))
            .collect();
        TrustedProxies::new(&networks)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    fn client(rule: &TrustedProxies, peer: &str, headers: &[&str]) -> IpAddr {
        rule.client_address(ip(peer), || headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let rule = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(&rule, "203.0.113.7", &["198.51.100.1"]),
            ip("203.0.113.7")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            client(&none, "127.0.0.1", &["198.51.100.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn walks_from_the_right_through_trusted_hops_only() {
        let rule = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let table: &[(&str, &[&str], &str)] = &[
            // The rightmost untrusted entry; what the client put left of it is ignored.
            ("127.0.0.1", &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            (
                "127.0.0.1",
                &["6.6.6.6, 198.51.100.1, 10.1.2.3"],
                "198.51.100.1",
            ),
            // Several headers are one list, in order.
            (
                "10.0.0.1",
                &["6.6.6.6", "198.51.100.1", "10.9.9.9"],
                "198.51.100.1",
            ),
            // Every hop trusted: the leftmost.
            ("127.0.0.1", &["10.0.0.5,10.0.0.6"], "10.0.0.5"),
            // No header: the trusted peer itself.
            ("127.0.0.1", &[], "127.0.0.1"),
            // Garbage ends the walk at the trusted hop that passed it on.
            ("127.0.0.1", &["198.51.100.1, unknown"], "127.0.0.1"),
            ("127.0.0.1", &["198.51.100.1,,10.0.0.7"], "10.0.0.7"),
            ("127.0.0.1", &[""], "127.0.0.1"),
            // Ports, brackets, blanks, IPv4-mapped addresses.
            ("127.0.0.1", &[" 198.51.100.1:4711 "], "198.51.100.1"),
            ("127.0.0.1", &["[2001:db8::9]:443"], "2001:db8::9"),
            ("127.0.0.1", &["2001:db8::9"], "2001:db8::9"),
            ("::ffff:127.0.0.1", &["::ffff:198.51.100.1"], "198.51.100.1"),
        ];
        for (peer, headers, expected) in table {
            assert_eq!(
                client(&rule, peer, headers),
                ip(expected),
                "{peer} {headers:?}"
            );
        }
    }

    #[test]
    fn a_long_trusted_chain_is_cut_after_the_bound() {
        let rule = proxies(&["10.0.0.0/8"]);
        let chain: Vec<String> = (0..100).map(|i| format!("10.0.0.{i}")).collect();
        let header = chain.join(",");
        // Walked from the right: the 32nd entry from the end, 10.0.0.68.
        assert_eq!(client(&rule, "10.0.0.200", &[&header]), ip("10.0.0.68"));
    }
}
