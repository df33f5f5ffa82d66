//! `ha-agent <config.yml>`: one agent beside one PostgreSQL. See the library for the design.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// hapg agent: PostgreSQL high availability with a leader lease in etcd (Patroni-compatible).
#[derive(Parser, Debug)]
#[command(name = "ha-agent", version, about)]
struct Args {
    /// Patroni-style YAML configuration file.
    config: PathBuf,
    /// Only check the configuration file and exit (0 when valid).
    #[arg(long)]
    validate_config: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"])]
    log_format: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (cfg, warnings) = match ha_agent::app::load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ha-agent: {e:#}");
            return ExitCode::from(1);
        }
    };
    if args.validate_config {
        for w in &warnings {
            eprintln!("ha-agent: warning: {}", w.0);
        }
        println!("{}: configuration is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = ha_agent::app::refuse_root() {
        eprintln!("ha-agent: {e:#}");
        return ExitCode::from(1);
    }
    let json = args.log_format.as_deref() == Some("json") || cfg.log.json;
    ha_agent::logging::init(cfg.log.level.as_deref(), json);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-agent: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(ha_agent::app::run(cfg, warnings)) {
        Ok(exit) => {
            if let ha_agent::runtime::Exit::Fatal(why) = &exit {
                tracing::error!("fatal: {why}");
                eprintln!("ha-agent: fatal: {why}");
            }
            ExitCode::from(u8::try_from(ha_agent::app::exit_code(&exit)).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("ha-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}
