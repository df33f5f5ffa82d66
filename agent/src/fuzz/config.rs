//! The configuration loader: YAML text of any shape, and `PATRONI_*` variables of any value,
//! give a `Config` or a `ConfigError`, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{any_json, config, object_with};
use crate::config::Config;

const SECTIONS: &[&str] = &[
    "scope",
    "namespace",
    "name",
    "restapi",
    "ctl",
    "etcd3",
    "bootstrap",
    "postgresql",
    "tags",
    "watchdog",
    "log",
    "etcd",
    "citus",
];
const RESTAPI: &[&str] = &[
    "listen",
    "connect_address",
    "authentication",
    "certfile",
    "keyfile",
    "keyfile_password",
    "cafile",
    "verify_client",
    "allowlist",
    "allowlist_include_members",
    "ciphers",
];
const ETCD3: &[&str] = &[
    "host", "hosts", "url", "proxy", "port", "protocol", "username", "password", "cacert", "cert",
    "key", "srv",
];
const POSTGRESQL: &[&str] = &[
    "listen",
    "connect_address",
    "data_dir",
    "bin_dir",
    "pgpass",
    "authentication",
    "parameters",
    "pg_hba",
    "callbacks",
    "basebackup",
    "use_unix_socket",
    "create_replica_methods",
];
const ROLE: &[&str] = &[
    "username",
    "password",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "gssencmode",
    "channel_binding",
];

fn load(text: &str, env: &BTreeMap<String, String>) {
    if let Ok((cfg, _)) = Config::from_yaml(Path::new("/fuzz.yml"), text, env) {
        // What the agent derives from a loaded file.
        let d = cfg.initial_dynamic();
        let _ = (cfg.ha_config(&d), cfg.pg_settings(&d), cfg.api_url());
        let _ = cfg.conn_url();
    }
}

/// A valid file with one section (or sub-section) replaced by `patch`'s keys.
fn patched(base: &Value, at: &[&str], patch: &Value) -> String {
    let mut v = base.clone();
    let mut cur = &mut v;
    for k in at {
        cur = &mut cur[*k];
    }
    if let (Value::Object(dst), Value::Object(src)) = (cur, patch) {
        for (k, val) in src {
            dst.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}

fn valid(dir: &Path) -> Value {
    json!({
        "scope": "demo",
        "name": "node1",
        "restapi": {"listen": "127.0.0.1:8008"},
        "etcd3": {"hosts": "127.0.0.1:2379"},
        "postgresql": {
            "listen": "127.0.0.1:5432",
            "data_dir": dir.join("main"),
            "authentication": {"replication": {"username": "r", "password": "p"}}
        }
    })
}

fn env_vars() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop_oneof![
            prop::sample::select(vec![
                "PATRONI_NAME",
                "PATRONI_SCOPE",
                "PATRONI_RESTAPI_LISTEN",
                "PATRONI_RESTAPI_ALLOWLIST",
                "PATRONI_RESTAPI_VERIFY_CLIENT",
                "PATRONI_ETCD3_HOSTS",
                "PATRONI_ETCD3_PORT",
                "PATRONI_ETCD3_USE_PROXIES",
                "PATRONI_ETCD3_URL",
                "PATRONI_REPLICATION_SSLMODE",
                "PATRONI_SUPERUSER_PASSWORD",
                "PATRONI_LOG_LEVEL",
                "PATRONI_CTL_INSECURE",
            ])
            .prop_map(str::to_string),
            "PATRONI_[A-Z_]{1,20}",
        ],
        "\\PC{0,30}",
        0..4,
    )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_text_loads_or_fails_cleanly(text in "\\PC{0,400}") {
        load(&text, &BTreeMap::new());
    }

    #[test]
    fn yaml_shaped_text_loads_or_fails_cleanly(
        lines in prop::collection::vec(
            ("[ ]{0,6}", prop::sample::select(SECTIONS), "[:]?", "[ ]?", "\\PC{0,20}"),
            0..12,
        ),
    ) {
        let text: String = lines
            .iter()
            .map(|(ind, k, colon, sp, v)| format!("{ind}{k}{colon}{sp}{v}\n"))
            .collect();
        load(&text, &BTreeMap::new());
    }

    #[test]
    fn any_values_in_known_sections_load_or_fail_cleanly(
        top in object_with(SECTIONS),
        restapi in object_with(RESTAPI),
        etcd3 in object_with(ETCD3),
        pg in object_with(POSTGRESQL),
        role in object_with(ROLE),
        ctl in any_json(),
        env in env_vars(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = valid(dir.path());
        load(&top.to_string(), &env);
        load(&patched(&base, &[], &top), &env);
        load(&patched(&base, &["restapi"], &restapi), &env);
        load(&patched(&base, &["etcd3"], &etcd3), &env);
        load(&patched(&base, &["postgresql"], &pg), &env);
        load(
            &patched(&base, &["postgresql", "authentication", "replication"], &role),
            &env,
        );
        load(&patched(&base, &[], &json!({"ctl": ctl})), &env);
    }
}
