//! `restapi.allowlist` entries (Patroni's semantics): `addr/prefix` is a network (host bits
//! may be set, as Python's `ip_network(v, strict=False)` allows); anything else is an address
//! or a host name, resolved when the API starts. Pure parsing; resolving is the API's job.

use std::net::IpAddr;

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl IpNet {
    /// The network of exactly `ip`.
    pub fn host(ip: IpAddr) -> IpNet {
        let ip = canonical(ip);
        IpNet {
            addr: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    /// Parses `addr/prefix`.
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not addr/prefix"))?;
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .trim()
            .parse()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?;
        Ok(IpNet {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d` (what a dual-stack listener reports for IPv4 clients).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// One `restapi.allowlist` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// A network or a single address.
    Net(IpNet),
    /// A host name, resolved when the API starts.
    Host(String),
}

impl AllowEntry {
    /// Parses one entry; an invalid network is an error (Patroni only logs it, which would
    /// leave the user believing an address is allowed or denied when it is not).
    pub fn parse(s: &str) -> Result<AllowEntry, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an entry is empty".into());
        }
        if s.contains('/') {
            return IpNet::parse(s).map(AllowEntry::Net);
        }
        Ok(match s.parse::<IpAddr>() {
            Ok(ip) => AllowEntry::Net(IpNet::host(ip)),
            Err(_) => AllowEntry::Host(s.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = IpNet::parse("10.1.2.3/16").unwrap();
        assert_eq!(n.addr, ip("10.1.0.0"));
        assert!(n.contains(ip("10.1.255.7")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        assert!(!n.contains(ip("::1")));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
    }

    #[test]
    fn entries_are_networks_addresses_or_names() {
        assert_eq!(
            AllowEntry::parse("127.0.0.1").unwrap(),
            AllowEntry::Net(IpNet::host(ip("127.0.0.1")))
        );
        assert_eq!(
            AllowEntry::parse("db1.example").unwrap(),
            AllowEntry::Host("db1.example".into())
        );
        assert!(AllowEntry::parse("10.0.0.0/33").is_err());
        assert!(AllowEntry::parse("nonsense/8").is_err());
        assert!(AllowEntry::parse(" ").is_err());
    }
}
