//! [`Cidr`]: an IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or one
//! address), as `PORTCULLIS_TRUSTED_PROXIES` lists them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network: an address whose bits past the prefix are zero, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not a [`Cidr`]; the message the settings error shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IP address (before the `/`).
    #[error("is not an IP address or CIDR network")]
    NotAnAddress,
    /// The prefix is not a number within the address family's width (carried).
    #[error("has a prefix length that is not a number from 0 to {0}")]
    BadPrefix(u8),
    /// Bits are set past the prefix; carries the network that was probably meant.
    #[error("has bits set past its prefix length (the network is {0})")]
    HostBits(Cidr),
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(raw: &str) -> Result<Cidr, CidrError> {
        Cidr::parse(raw)
    }
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a network of one address). The
    /// address must be the network's own (no bits set past the prefix): `10.0.0.1/8` is
    /// refused rather than silently widened to `10.0.0.0/8`.
    pub fn parse(raw: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::NotAnAddress)?;
        let width = width_of(addr);
        let prefix = match prefix {
            None => width,
            Some(text) => match text.parse::<u8>() {
                // `parse::<u8>` takes a leading `+`; a prefix is digits only.
                Ok(n) if n <= width && text.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(CidrError::BadPrefix(width)),
            },
        };
        let cidr = Cidr {
            network: mask(addr, prefix),
            prefix,
        };
        if cidr.network == addr {
            Ok(cidr)
        } else {
            Err(CidrError::HostBits(cidr))
        }
    }

    /// Whether `addr` is in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as
    /// a dual-stack socket reports IPv4 peers) is compared as the IPv4 address it maps.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        width_of(addr) == width_of(self.network) && mask(addr, self.prefix) == self.network
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn width_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with every bit past the first `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        for (raw, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("127.0.0.1", "127.0.0.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
            ("::1", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
        ] {
            let cidr = Cidr::parse(raw).unwrap_or_else(|err| panic!("{raw}: {err}"));
            assert_eq!(cidr.to_string(), shown, "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for (raw, expected) in [
            (
                "10.0.0.1/8",
                CidrError::HostBits(Cidr::parse("10.0.0.0/8").expect("net")),
            ),
            ("10.0.0.0/33", CidrError::BadPrefix(32)),
            ("fd00::/129", CidrError::BadPrefix(128)),
            ("10.0.0.0/", CidrError::BadPrefix(32)),
            ("10.0.0.0/+8", CidrError::BadPrefix(32)),
            ("10.0.0.0/x", CidrError::BadPrefix(32)),
            ("proxy.internal", CidrError::NotAnAddress),
            ("10.0.0/8", CidrError::NotAnAddress),
            ("[::1]/128", CidrError::NotAnAddress),
            ("", CidrError::NotAnAddress),
        ] {
            assert_eq!(Cidr::parse(raw), Err(expected), "{raw}");
        }
    }

    #[test]
    fn contains_exactly_its_addresses() {
        let net = Cidr::parse("192.168.4.0/22").expect("net");
        assert!(net.contains(ip("192.168.4.0")));
        assert!(net.contains(ip("192.168.7.255")));
        assert!(!net.contains(ip("192.168.8.0")));
        assert!(!net.contains(ip("192.168.3.255")));
        assert!(net.contains(ip("::ffff:192.168.5.1")), "IPv4-mapped");
        assert!(
            !net.contains(ip("::192.168.5.1")),
            "IPv4-compatible is IPv6"
        );
        let all4 = Cidr::parse("0.0.0.0/0").expect("net");
        assert!(all4.contains(ip("203.0.113.9")));
        assert!(!all4.contains(ip("2001:db8::1")), "no family crossing");
        let v6 = Cidr::parse("2001:db8:1::/48").expect("net");
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        let one = Cidr::parse("::1").expect("net");
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
    }
}
