//! The configuration loader on arbitrary text: a `Config` or a `ConfigError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = std::path::Path::new("/fuzz.yml");
        if let Ok((cfg, _)) = ha_agent::config::Config::from_yaml(path, text, &Default::default()) {
            let d = cfg.initial_dynamic();
            let _ = (cfg.ha_config(&d), cfg.pg_settings(&d), cfg.api_url());
        }
    }
});
