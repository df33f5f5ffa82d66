//! `host:port` parsing as Patroni does it (`split_host_port`): the port follows the last `:`,
//! IPv6 hosts may be written in brackets. Pure string work: no DNS, no sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A parsed `host:port` (host without brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// `host:port`, with brackets around an IPv6 host.
    pub fn render(&self) -> String {
        format!("{}:{}", bracket(&self.host), self.port)
    }
}

/// Brackets an IPv6 literal so a port can follow it.
pub(super) fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Splits `value` into hosts (comma-separated, brackets stripped) and a port. Without a port
/// `default_port` applies; with none either, the port is required.
pub(super) fn split_hosts_port(
    value: &str,
    default_port: Option<u16>,
) -> Result<(Vec<String>, u16), String> {
    let value = value.trim();
    // Patroni splits at the last colon; `[::1]:5432` and `a,b:5432` both work that way. A
    // bracketed IPv6 literal without a port ends in `]`, so there is nothing to split.
    let (hosts, port) = match value.rsplit_once(':') {
        Some((h, p)) if !value.ends_with(']') && !h.is_empty() || value.starts_with(':') => {
            (h, Some(p))
        }
        _ => (value, None),
    };
    let port = match port {
        Some(p) => parse_port(p).map_err(|e| format!("{value:?}: {e}"))?,
        None => {
            default_port.ok_or_else(|| format!("{value:?} has no port (expected host:port)"))?
        }
    };
    let hosts = hosts
        .split(',')
        .map(|h| {
            h.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        })
        .collect();
    Ok((hosts, port))
}

/// One `host:port` (a single host).
pub(super) fn split_host_port(value: &str, default_port: Option<u16>) -> Result<HostPort, String> {
    let (hosts, port) = split_hosts_port(value, default_port)?;
    match hosts.as_slice() {
        [host] if host.is_empty() => Err(format!("{value:?} has no host")),
        [host] => Ok(HostPort {
            host: host.clone(),
            port,
        }),
        _ => Err(format!("{value:?} names more than one host")),
    }
}

/// A TCP port 1-65535.
pub(super) fn parse_port(p: &str) -> Result<u16, String> {
    match p.trim().parse::<u16>() {
        Ok(0) => Err("port 0 is not allowed (members must be reachable at a fixed port)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{:?} is not a port number (1-65535)", p.trim())),
    }
}

/// True for the hosts meaning "every interface".
pub(super) fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "*" | "0.0.0.0" | "::")
}

/// A host the REST API can bind to without name resolution: an IP, `localhost`, or
/// empty/`*` for all interfaces.
pub(super) fn bind_ip(host: &str) -> Result<IpAddr, String> {
    match host {
        "" | "*" => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        h => h.parse::<IpAddr>().map_err(|_| {
            format!("{h:?} is not an IP address (use an IP, localhost, or 0.0.0.0 for all)")
        }),
    }
}

/// The REST API's bind address from `restapi.listen`.
pub(super) fn listen_socket(value: &str) -> Result<SocketAddr, String> {
    let (hosts, port) = split_hosts_port(value, None)?;
    match hosts.as_slice() {
        [host] => Ok(SocketAddr::new(bind_ip(host)?, port)),
        _ => Err(format!("{value:?} names more than one host")),
    }
}

/// The address others use when `connect_address` is not given: the listen host, or
/// `127.0.0.1` for a wildcard (only good for members on one machine).
pub(super) fn default_connect_host(listen_host: &str) -> String {
    if is_wildcard(listen_host) {
        "127.0.0.1".to_owned()
    } else {
        listen_host.to_owned()
    }
}

/// Could two listen hosts share an interface (so their ports must differ)?
pub(super) fn may_overlap(a: &str, b: &str) -> bool {
    let norm = |h: &str| -> String {
        match h {
            "localhost" | "::1" => "127.0.0.1".to_owned(),
            other => other.to_owned(),
        }
    };
    is_wildcard(a) || is_wildcard(b) || norm(a) == norm(b)
}

/// A `connect_address`: one concrete host and a port.
pub(super) fn connect_address(value: &str) -> Result<HostPort, String> {
    let hp = split_host_port(value, None)?;
    if is_wildcard(&hp.host) {
        return Err(format!(
            "{:?} is a wildcard address; give the address other members use to reach this one",
            hp.host
        ));
    }
    Ok(hp)
}
