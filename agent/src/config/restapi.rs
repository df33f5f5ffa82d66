//! The `restapi` section into [`RestApiConfig`]: addresses, basic auth, TLS.
//!
//! Options that would make the API more open than the user asked (an allowlist, an encrypted
//! key we cannot read) are errors rather than silently dropped.

use std::net::SocketAddr;

use super::addr::{self, bracket};
use super::load::Ctx;
use super::raw::{RawRestApi, bool_of};
use super::validate::is_set;
use super::{RestApiConfig, Result};
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
    if raw.keyfile_password.is_some() {
        return Err(ctx.invalid(
            "restapi.keyfile_password",
            "encrypted keys are not supported; give an unencrypted restapi.keyfile",
        ));
    }
    if is_set(&raw.allowlist)
        || raw.allowlist_include_members.as_ref().and_then(bool_of) == Some(true)
    {
        let key = if is_set(&raw.allowlist) {
            "restapi.allowlist"
        } else {
            "restapi.allowlist_include_members"
        };
        return Err(ctx.invalid(
            key,
            "not supported yet: the REST API would accept requests from every address",
        ));
    }
    if raw.ciphers.is_some() {
        ctx.warn(
            "restapi.ciphers",
            "not supported yet; the TLS library's default ciphers are used",
        );
    }
    if raw.keyfile.is_some() && raw.certfile.is_none() {
        return Err(ctx.invalid("restapi.keyfile", "needs restapi.certfile"));
    }
    let verify_client = match raw.verify_client.map(|v| v.to_ascii_lowercase()) {
        None => None,
        Some(v) if v == "none" => Some(v),
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
            Some(v)
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
        certfile: raw.certfile,
        cafile: raw.cafile,
        verify_client,
    })
}
