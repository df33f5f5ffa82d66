//! The `etcd3` section into [`EtcdSettings`], following Patroni's reading of it
//! (`get_etcd_client`): `proxy` wins over `url`, `url` over `hosts`, `hosts` over `host`;
//! `port` is the default port of `hosts`/`host` (else 2379). Endpoints always carry the scheme.

use serde_json::Value;

use super::Result;
use super::addr::{HostPort, split_host_port};
use super::ctx::Ctx;
use super::raw::{RawEtcd3, int_of, kind_of};
use crate::dcs::EtcdSettings;

/// etcd's client port.
const DEFAULT_PORT: u16 = 2379;

/// Validates `etcd3`.
pub(super) fn settings(raw: &RawEtcd3, ctx: &mut Ctx<'_>) -> Result<EtcdSettings> {
    for (key, v) in [
        ("srv", &raw.srv),
        ("srv_suffix", &raw.srv_suffix),
        ("discovery_srv", &raw.discovery_srv),
        ("srv_domain", &raw.srv_domain),
    ] {
        if v.is_some() {
            return Err(ctx.invalid(
                &format!("etcd3.{key}"),
                "DNS SRV discovery is not supported; list the endpoints in etcd3.hosts",
            ));
        }
    }
    let key_password = match &raw.key_password {
        None | Some(Value::Null) => None,
        Some(v) => Some(super::restapi::secret(v).ok_or_else(|| {
            ctx.invalid(
                "etcd3.key_password",
                format!(
                    "expected a string, got {}",
                    super::restapi::kind_of_secret(v)
                ),
            )
        })?),
    };
    let default_port = match &raw.port {
        None => DEFAULT_PORT,
        Some(v) => int_of(v)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                ctx.invalid(
                    "etcd3.port",
                    format!("expected a port number, got {}", kind_of(v)),
                )
            })?,
    };
    let mut protocol = match raw.protocol.as_deref().map(str::to_ascii_lowercase) {
        None => "http".to_owned(),
        Some(p) if p == "http" || p == "https" => p,
        Some(p) => return Err(ctx.invalid("etcd3.protocol", format!("{p:?} is not http or https"))),
    };
    let mut username = raw.username.clone();
    let mut password = raw.password.clone();

    let (url_key, url) = match (&raw.proxy, &raw.url) {
        (Some(p), url) => {
            if url.is_some() {
                ctx.warn("etcd3.url", "ignored: etcd3.proxy is used");
            }
            (Some("etcd3.proxy"), Some(p))
        }
        (None, Some(u)) => (Some("etcd3.url"), Some(u)),
        (None, None) => (None, None),
    };
    let hosts: Vec<HostPort> = if let (Some(key), Some(url)) = (url_key, url) {
        let parsed = parse_url(url).map_err(|r| ctx.invalid(key, r))?;
        protocol = parsed.scheme;
        if parsed.username.is_some() {
            (username, password) = (parsed.username, parsed.password);
        }
        for other in ["hosts", "host"] {
            let set = if other == "hosts" {
                raw.hosts.is_some()
            } else {
                raw.host.is_some()
            };
            if set {
                ctx.warn(&format!("etcd3.{other}"), format!("ignored: {key} is used"));
            }
        }
        vec![parsed.host]
    } else if let Some(hosts) = &raw.hosts {
        if raw.host.is_some() {
            ctx.warn("etcd3.host", "ignored: etcd3.hosts is used");
        }
        host_list(hosts, default_port).map_err(|r| ctx.invalid("etcd3.hosts", r))?
    } else if let Some(host) = &raw.host {
        vec![one_host(host, default_port).map_err(|r| ctx.invalid("etcd3.host", r))?]
    } else {
        return Err(ctx.invalid("etcd3", "needs hosts, host or url"));
    };

    match (&username, &password) {
        (Some(_), None) => {
            return Err(ctx.invalid("etcd3.password", "required with etcd3.username"));
        }
        (None, Some(_)) => {
            return Err(ctx.invalid("etcd3.username", "required with etcd3.password"));
        }
        _ => {}
    }
    if raw.key.is_some() && raw.cert.is_none() {
        return Err(ctx.invalid("etcd3.key", "needs etcd3.cert"));
    }
    let (mut cacert, mut cert, mut key) = (raw.cacert.clone(), raw.cert.clone(), raw.key.clone());
    if protocol == "http" {
        // Patroni connects over plain HTTP here and never uses the files; say so.
        for (name, set) in [
            ("cacert", cacert.is_some()),
            ("cert", cert.is_some()),
            ("key", key.is_some()),
        ] {
            if set {
                ctx.warn(
                    &format!("etcd3.{name}"),
                    "ignored: etcd3.protocol is http (set protocol: https to use TLS)",
                );
            }
        }
        (cacert, cert, key) = (None, None, None);
    }
    Ok(EtcdSettings {
        endpoints: hosts
            .iter()
            .map(|h| format!("{protocol}://{}", h.render()))
            .collect(),
        username,
        password,
        cacert,
        key_password: key.as_ref().and(key_password),
        cert,
        key,
    })
}

fn one_host(s: &str, default_port: u16) -> std::result::Result<HostPort, String> {
    if s.contains("://") {
        return Err(format!(
            "{s:?}: give host:port without a scheme (etcd3.protocol sets it)"
        ));
    }
    split_host_port(s, Some(default_port))
}

/// `hosts`: a list, or a comma-separated string.
fn host_list(v: &Value, default_port: u16) -> std::result::Result<Vec<HostPort>, String> {
    let items: Vec<String> = match v {
        Value::String(s) => s
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(|h| match h {
                Value::String(s) => Ok(s.trim().to_owned()),
                other => Err(format!(
                    "expected host:port strings, got {}",
                    kind_of(other)
                )),
            })
            .collect::<std::result::Result<_, _>>()?,
        other => {
            return Err(format!(
                "expected a list or a comma-separated string, got {}",
                kind_of(other)
            ));
        }
    };
    if items.is_empty() {
        return Err("is empty".into());
    }
    items.iter().map(|h| one_host(h, default_port)).collect()
}

struct ParsedUrl {
    scheme: String,
    username: Option<String>,
    password: Option<String>,
    host: HostPort,
}

/// `http(s)://[user[:password]@]host[:port][/...]`.
fn parse_url(s: &str) -> std::result::Result<ParsedUrl, String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not a URL (expected http://host:port)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("{s:?}: the scheme must be http or https"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
            None => (Some(u.to_owned()), None),
        },
    };
    Ok(ParsedUrl {
        scheme,
        username,
        password,
        host: split_host_port(hostport, Some(DEFAULT_PORT))?,
    })
}
