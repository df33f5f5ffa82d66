//! The `restapi` section into [`RestApiConfig`] (addresses, basic auth, TLS, client
//! certificates, allowlist) and the `ctl` section into [`CtlConfig`] (how hactl and the agent
//! itself call a member's API).
//!
//! Options that would make the API more open than the user asked (an encrypted key we cannot
//! read, client verification without a CA, an allowlist entry that does not parse) are errors
//! rather than silently dropped.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::addr::{self, bracket};
use super::allowlist::AllowEntry;
use super::ctx::Ctx;
use super::raw::{RawRestApi, bool_of, kind_of};
use super::{CtlConfig, RestApiConfig, Result, VerifyClient};
use crate::pg::Credentials;

/// Validates `restapi`.
pub(super) fn restapi(raw: RawRestApi, ctx: &mut Ctx<'_>) -> Result<RestApiConfig> {
    let listen_text = raw
        .listen
        .ok_or_else(|| ctx.invalid("restapi.listen", "missing (e.g. 0.0.0.0:8008)"))?;
    let listen: SocketAddr =
        addr::listen_socket(&listen_text).map_err(|r| ctx.invalid("restapi.listen", r))?;
    let connect_address = match raw.connect_address {
        Some(c) => addr::connect_address(&c)
            .map_err(|r| ctx.invalid("restapi.connect_address", r))?
            .render(),
        None => format!(
            "{}:{}",
            bracket(&addr::default_connect_host(&listen.ip().to_string())),
            listen.port()
        ),
    };
    let authentication = match raw.authentication {
        None => None,
        Some(a) => match (a.username, a.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
                username: u,
                password: Some(p),
                ..Default::default()
            }),
            (None, _) => {
                return Err(ctx.invalid(
                    "restapi.authentication.username",
                    "missing (username and password are both required)",
                ));
            }
            (Some(_), None) => {
                return Err(ctx.invalid(
                    "restapi.authentication.password",
                    "missing (username and password are both required)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ctx.invalid("restapi.authentication.username", "must not be empty"));
            }
        },
    };
    let keyfile_password = match &raw.keyfile_password {
        None | Some(Value::Null) => None,
        Some(v) => Some(secret(v).ok_or_else(|| {
            ctx.invalid(
                "restapi.keyfile_password",
                format!("expected a string, got {}", kind_of_secret(v)),
            )
        })?),
    };
    if keyfile_password.is_some() && raw.certfile.is_none() {
        return Err(ctx.invalid("restapi.keyfile_password", "needs restapi.certfile"));
    }
    let allowlist = match &raw.allowlist {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => allowlist(v).map_err(|r| ctx.invalid("restapi.allowlist", r))?,
    };
    let allowlist_include_members = match &raw.allowlist_include_members {
        None | Some(Value::Null) => false,
        Some(v) => bool_of(v).ok_or_else(|| {
            ctx.invalid(
                "restapi.allowlist_include_members",
                format!("expected a boolean, got {}", kind_of(v)),
            )
        })?,
    };
    if raw.ciphers.is_some() {
        ctx.warn(
            "restapi.ciphers",
            "not supported; the TLS library offers only TLS 1.3 and TLS 1.2 with ECDHE and \
             AES-GCM or ChaCha20-Poly1305, whatever is listed here",
        );
    }
    if raw.keyfile.is_some() && raw.certfile.is_none() {
        return Err(ctx.invalid("restapi.keyfile", "needs restapi.certfile"));
    }
    let verify_client = match raw.verify_client.map(|v| v.to_ascii_lowercase()) {
        None => VerifyClient::None,
        Some(v) if v == "none" => VerifyClient::None,
        Some(v) if v == "optional" || v == "required" => {
            if raw.certfile.is_none() {
                return Err(ctx.invalid(
                    "restapi.verify_client",
                    "needs restapi.certfile (client certificates need TLS)",
                ));
            }
            if raw.cafile.is_none() {
                return Err(ctx.invalid(
                    "restapi.verify_client",
                    format!("{v} needs restapi.cafile to check client certificates"),
                ));
            }
            if v == "optional" {
                VerifyClient::Optional
            } else {
                VerifyClient::Required
            }
        }
        Some(v) => {
            return Err(ctx.invalid(
                "restapi.verify_client",
                format!("{v:?} is not none, optional or required"),
            ));
        }
    };
    Ok(RestApiConfig {
        listen,
        connect_address,
        authentication,
        keyfile: raw.keyfile.or_else(|| raw.certfile.clone()),
        keyfile_password,
        certfile: raw.certfile,
        cafile: raw.cafile,
        verify_client,
        allowlist,
        allowlist_include_members,
    })
}

/// A passphrase: a string, or a number written without quotes.
pub(super) fn secret(v: &Value) -> Option<crate::keyfile::Secret> {
    match v {
        Value::String(s) if !s.is_empty() => Some(crate::keyfile::Secret::new(s.clone())),
        Value::Number(n) => Some(crate::keyfile::Secret::new(n.to_string())),
        _ => None,
    }
}

/// The type of a value that should have been a secret, without showing it.
pub(super) fn kind_of_secret(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "an empty string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A list of entries, or (from `PATRONI_RESTAPI_ALLOWLIST`) a YAML list or comma-separated
/// text.
fn allowlist(v: &Value) -> std::result::Result<Vec<AllowEntry>, String> {
    let items: Vec<String> = match v {
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "expected addresses, networks or host names, got {}",
                    kind_of(other)
                )),
            })
            .collect::<std::result::Result<_, _>>()?,
        Value::String(s) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split([',', '\n'])
            .map(|x| {
                x.trim()
                    .trim_start_matches('-')
                    .trim()
                    .trim_matches(['"', '\''])
            })
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        other => return Err(format!("expected a list, got {}", kind_of(other))),
    };
    items.iter().map(|s| AllowEntry::parse(s)).collect()
}

/// Validates `ctl` (Patroni's `certfile`, `keyfile`, `keyfile_password`, `cacert`,
/// `insecure`; `authentication` is read by hactl).
pub(super) fn ctl(raw: Option<&Value>, ctx: &mut Ctx<'_>) -> Result<CtlConfig> {
    let Some(v) = raw.filter(|v| !v.is_null()) else {
        return Ok(CtlConfig::default());
    };
    let Value::Object(m) = v else {
        return Err(ctx.invalid("ctl", format!("expected a mapping, got {}", kind_of(v))));
    };
    let mut out = CtlConfig::default();
    for (k, v) in m {
        let path = |ctx: &mut Ctx<'_>| -> Result<Option<PathBuf>> {
            match v {
                Value::Null => Ok(None),
                Value::String(s) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
                other => Err(ctx.invalid(
                    &format!("ctl.{k}"),
                    format!("expected a file name, got {}", kind_of(other)),
                )),
            }
        };
        match k.as_str() {
            "certfile" => out.certfile = path(ctx)?,
            "keyfile" => out.keyfile = path(ctx)?,
            "cacert" => out.cacert = path(ctx)?,
            "insecure" => {
                out.insecure = match v {
                    Value::Null => false,
                    v => bool_of(v).ok_or_else(|| {
                        ctx.invalid(
                            "ctl.insecure",
                            format!("expected a boolean, got {}", kind_of(v)),
                        )
                    })?,
                }
            }
            "keyfile_password" => {
                out.keyfile_password = match v {
                    Value::Null => None,
                    v => Some(secret(v).ok_or_else(|| {
                        ctx.invalid(
                            "ctl.keyfile_password",
                            format!("expected a string, got {}", kind_of_secret(v)),
                        )
                    })?),
                }
            }
            "authentication" | "auth" => {}
            other => ctx.warn(&format!("ctl.{other}"), "unknown key ignored"),
        }
    }
    if out.keyfile.is_some() && out.certfile.is_none() {
        return Err(ctx.invalid("ctl.keyfile", "needs ctl.certfile"));
    }
    if out.certfile.is_some() && out.keyfile.is_none() {
        out.keyfile = out.certfile.clone();
    }
    Ok(out)
}
