//! Logging setup: `tracing` with an `EnvFilter` (`RUST_LOG`, else the config's `log.level`,
//! else `info`), text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a filter directive such as `info` or `debug`.
pub fn init(level: Option<&str>, json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
