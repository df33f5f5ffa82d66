//! Wiring for the `ha-agent` binary: configuration to running components. `main.rs` only parses
//! arguments and calls [`run`].
//!
//! Order matters: everything that can fail because of the configuration or the host (root
//! user, the API port) fails here, before etcd or the data directory is touched.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api;
use crate::config::{Config, Warning};
use crate::dcs::Keys;
use crate::dcs::etcd::EtcdDcs;
use crate::peers::{PeerClient, PeerTls};
use crate::pg::local::LocalPostgres;
use crate::runtime::{Exit, NodeSnapshot, Runtime};

/// Exit status of the agent.
pub fn exit_code(exit: &Exit) -> i32 {
    match exit {
        Exit::Clean => 0,
        Exit::Fatal(_) => 1,
    }
}

/// Refuses to run as root, as PostgreSQL does.
pub fn refuse_root() -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "ha-agent must not run as root: run it as the operating system user that owns \
             PostgreSQL's data directory (e.g. postgres), as PostgreSQL itself requires"
        );
    }
    Ok(())
}

/// Loads and validates the configuration file.
pub fn load_config(path: &Path) -> anyhow::Result<(Config, Vec<Warning>)> {
    Ok(Config::load(path)?)
}

/// Runs the agent until SIGTERM/SIGINT or a fatal decision.
pub async fn run(cfg: Config, warnings: Vec<Warning>) -> anyhow::Result<Exit> {
    for w in &warnings {
        warn!("{}", w.0);
    }
    let cfg = Arc::new(cfg);
    let dynamic = cfg.initial_dynamic();
    let ha = cfg.ha_config(&dynamic);

    // Bind the API first: a taken port is a configuration error, found before touching data.
    let listener = tokio::net::TcpListener::bind(cfg.restapi.listen)
        .await
        .with_context(|| format!("cannot listen on restapi.listen {}", cfg.restapi.listen))?;

    let op_timeout = Duration::from_millis((ha.retry_timeout.0 / 2).clamp(1000, 5000));
    let keys = Keys::new(&cfg.namespace, &cfg.scope);
    let tls = match &cfg.restapi.certfile {
        Some(_) => Some(api::tls::server_config(&cfg.restapi).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let access = Arc::new(api::access::Access {
        allowlist: api::access::resolve_allowlist(&cfg.restapi.allowlist).await,
        include_members: cfg.restapi.allowlist_include_members,
        client_cert: cfg.restapi.certfile.is_some()
            && cfg.restapi.verify_client != crate::config::VerifyClient::None,
        auth: cfg.restapi.authentication.clone(),
    });
    let dcs = EtcdDcs::connect(&cfg.etcd, keys, &cfg.name, ha.ttl.0 / 1000, op_timeout)
        .await
        .context("cannot set up the etcd client")?;
    dcs.start_watch();
    let dcs = Arc::new(dcs);
    let pg = LocalPostgres::new(cfg.pg_settings(&dynamic));
    let peers = PeerClient::with_tls(Duration::from_millis(1500), &PeerTls::from_config(&cfg))
        .context("cannot build the HTTP client for the other members' REST APIs")?;

    let initial = NodeSnapshot::initial(&cfg.name, &cfg.scope, ha, dynamic);
    let (snap_tx, snap_rx) = watch::channel(initial);
    let (req_tx, req_rx) = mpsc::channel(4);

    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());

    let api_cancel = CancellationToken::new();
    let failsafe = crate::runtime::FailsafeInbox::default();
    let router = api::router(api::ApiState {
        snapshot: snap_rx,
        dcs: dcs.clone(),
        requests: req_tx.clone(),
        access,
        failsafe: failsafe.clone(),
    });
    let api_stop = api_cancel.clone();
    let api_task = tokio::spawn(async move {
        api::serve(
            listener,
            router,
            tls,
            async move { api_stop.cancelled().await },
        )
        .await
    });
    spawn_sighup_handler(req_tx);
    info!(
        member = %cfg.name,
        scope = %cfg.scope,
        api = %cfg.restapi.listen,
        "hapg agent {} starting",
        crate::VERSION
    );

    let backups = crate::backup::runner::spawn(
        cfg.clone(),
        dcs.clone(),
        snap_tx.subscribe(),
        cancel.clone(),
    );
    let runtime = Runtime::new(cfg.clone(), dcs, Arc::new(pg), peers, snap_tx, req_rx)
        .with_failsafe(failsafe);
    let exit = runtime.run(cancel.clone()).await;
    // A fatal exit does not cancel the token: stop the backup runner (and its job) too.
    cancel.cancel();
    if let Some(b) = backups {
        let _ = tokio::time::timeout(Duration::from_secs(2), b).await;
    }
    api_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), api_task).await;
    Ok(exit)
}

fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received: shutting down"),
            _ = int.recv() => info!("SIGINT received: shutting down"),
        }
        cancel.cancel();
    });
}

/// SIGHUP re-reads the configuration file, as `POST /reload` does.
fn spawn_sighup_handler(requests: mpsc::Sender<crate::runtime::ApiRequest>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot install the SIGHUP handler");
            return;
        };
        while hup.recv().await.is_some() {
            info!("SIGHUP received: reloading the configuration");
            let (tx, rx) = tokio::sync::oneshot::channel();
            let req = crate::runtime::ApiRequest {
                what: crate::runtime::ApiWhat::Reload,
                reply: tx,
            };
            if requests.send(req).await.is_err() {
                return;
            }
            match rx.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("reload refused: {e}"),
                Err(_) => {}
            }
        }
    });
}
