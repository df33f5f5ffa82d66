//! `hactl`: hapg's operator CLI, a superset of `patronictl` (same commands, options, prompts
//! and output), reading the cluster from etcd and acting through the members' REST API.
//!
//! This file only parses arguments, builds the runtime, dispatches and maps errors to exit
//! codes: 0 success, 1 the operation failed, 2 usage error (clap's errors are 2 already).

mod api;
mod cli;
mod cmd;
mod config;
mod dcs;
mod error;
mod members;
mod output;
mod prompt;
mod pyfmt;
mod table;
mod yaml;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse_from(cmd::query::patronictl_spellings(std::env::args().collect()));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hactl: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cmd::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hactl: {}", error::one_line(&e));
            ExitCode::from(u8::try_from(error::exit_code(&e)).unwrap_or(1))
        }
    }
}
