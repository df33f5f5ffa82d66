//! Where etcd is, for hactl: a lenient reading of a file's `etcd3` section (Patroni's keys),
//! and `--dcs-url etcd3://host:2379[,host2:2379][/namespace]`.

use std::path::PathBuf;

use ha_agent::dcs::EtcdSettings;
use serde_json::Value;

use super::scalar_string;
use crate::error::usage;

/// A lenient reading of `etcd3` (Patroni's order: `proxy`, `url`, `hosts`, `host`).
pub(super) fn etcd3(e: &Value) -> Result<EtcdSettings, String> {
    let default_port = e
        .get("port")
        .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
        .unwrap_or(2379);
    let mut protocol = e
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("http")
        .to_ascii_lowercase();
    let mut username = e.get("username").and_then(scalar_string);
    let mut password = e.get("password").and_then(scalar_string);
    let hosts: Vec<String> = if let Some(url) = e
        .get("proxy")
        .or_else(|| e.get("url"))
        .and_then(Value::as_str)
    {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not a URL"))?;
        protocol = scheme.to_ascii_lowercase();
        let authority = rest.split('/').next().unwrap_or_default();
        let hostport = match authority.rsplit_once('@') {
            Some((userinfo, h)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                username = Some(u.to_string());
                password = Some(p.to_string());
                h
            }
            None => authority,
        };
        vec![with_port(hostport, default_port)]
    } else if let Some(h) = e.get("hosts") {
        let list: Vec<String> = match h {
            Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
            Value::Array(a) => a.iter().filter_map(scalar_string).collect(),
            _ => return Err("hosts must be a list or a comma-separated string".into()),
        };
        list.iter()
            .filter(|x| !x.is_empty())
            .map(|x| with_port(x, default_port))
            .collect()
    } else if let Some(h) = e.get("host").and_then(Value::as_str) {
        vec![with_port(h, default_port)]
    } else {
        return Err("needs hosts, host or url".into());
    };
    if hosts.is_empty() {
        return Err("hosts is empty".into());
    }
    let file = |k: &str| {
        (protocol == "https")
            .then(|| e.get(k).and_then(Value::as_str).map(PathBuf::from))
            .flatten()
    };
    Ok(EtcdSettings {
        endpoints: hosts.iter().map(|h| format!("{protocol}://{h}")).collect(),
        username,
        password,
        cacert: file("cacert"),
        cert: file("cert"),
        key: file("key"),
        key_password: e
            .get("key_password")
            .and_then(scalar_string)
            .map(ha_agent::keyfile::Secret::new),
    })
}

fn with_port(h: &str, default_port: u64) -> String {
    let h = h.trim();
    let has_port = if let Some(rest) = h.strip_prefix('[') {
        rest.contains("]:")
    } else {
        h.matches(':').count() == 1
    };
    if has_port {
        h.to_string()
    } else {
        format!("{h}:{default_port}")
    }
}

/// `etcd3://h1:2379,h2:2379/namespace` (also `http(s)://`, or bare `host:port`) into
/// endpoints with scheme and the namespace, if given.
pub fn parse_dcs_url(url: &str) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("etcd3".to_string(), url),
    };
    let protocol = match scheme.as_str() {
        "etcd3" | "http" => "http",
        "https" => "https",
        "etcd" => {
            return Err(usage(format!(
                "--dcs-url {url}: hactl speaks etcd's v3 API only; write etcd3://{rest}"
            )));
        }
        other => {
            return Err(usage(format!(
                "--dcs-url {url}: unknown scheme {other:?}; use etcd3://host:2379"
            )));
        }
    };
    let (hosts, path) = match rest.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let endpoints: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{protocol}://{}", with_port(h, 2379)))
        .collect();
    let endpoints = if endpoints.is_empty() {
        vec![format!("{protocol}://localhost:2379")]
    } else {
        endpoints
    };
    let namespace = path
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(|p| format!("/{p}/"));
    Ok((endpoints, namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;

    #[test]
    fn dcs_urls() {
        let (e, ns) = parse_dcs_url("etcd3://10.0.0.1:2379,10.0.0.2/custom").unwrap();
        assert_eq!(e, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(ns.as_deref(), Some("/custom/"));
        let (e, ns) = parse_dcs_url("localhost:23790").unwrap();
        assert_eq!(e, ["http://localhost:23790"]);
        assert_eq!(ns, None);
        assert!(parse_dcs_url("etcd://x:2379").is_err());
        assert!(parse_dcs_url("consul://x").is_err());
    }

    #[test]
    fn lenient_etcd3_section() {
        let t = parse_yaml("etcd3:\n  hosts: a:1, b\n  username: u\n  password: p\n").unwrap();
        let s = etcd3(&t["etcd3"]).unwrap();
        assert_eq!(s.endpoints, ["http://a:1", "http://b:2379"]);
        assert_eq!(s.username.as_deref(), Some("u"));
        let t = parse_yaml("etcd3:\n  url: https://x:y@h:2000\n  cacert: /ca\n").unwrap();
        let s = etcd3(&t["etcd3"]).unwrap();
        assert_eq!(s.endpoints, ["https://h:2000"]);
        assert_eq!(s.password.as_deref(), Some("y"));
        assert_eq!(s.cacert, Some(PathBuf::from("/ca")));
        assert!(etcd3(&parse_yaml("etcd3: {}").unwrap()["etcd3"]).is_err());
    }
}
