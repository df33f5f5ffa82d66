//! What a reload (`POST /reload`, SIGHUP) cannot apply. The agent re-reads its file and
//! applies `postgresql.parameters`, `tags`, `postgresql.connect_address` and the timing
//! defaults at once; the sections below were used to build the running agent (its REST API
//! server, etcd client, fence, backup runner, its PostgreSQL's files and sessions) and only
//! take effect when the agent restarts. A change to one of them is named in a warning,
//! never silently kept or dropped.

use super::Config;

/// The keys of `new` that differ from `old` and that a reload does not apply, by name.
pub fn not_reloadable(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.postgresql, &new.postgresql);
    let checks: [(&'static str, bool); 15] = [
        ("restapi", old.restapi != new.restapi),
        ("ctl", old.ctl != new.ctl),
        ("etcd3", old.etcd != new.etcd),
        ("log", old.log != new.log),
        ("watchdog", old.watchdog != new.watchdog),
        ("fence", old.fence != new.fence),
        ("backup", old.backup != new.backup),
        (
            "postgresql.listen",
            a.listen_addresses != b.listen_addresses || a.port != b.port,
        ),
        ("postgresql.data_dir", a.data_dir != b.data_dir),
        ("postgresql.bin_dir", a.bin_dir != b.bin_dir),
        ("postgresql.pgpass", a.pgpass != b.pgpass),
        (
            "postgresql.authentication",
            a.superuser != b.superuser || a.replication != b.replication || a.rewind != b.rewind,
        ),
        ("postgresql.pg_hba", a.pg_hba != b.pg_hba),
        (
            "postgresql.basebackup / create_replica_methods",
            a.basebackup_args != b.basebackup_args
                || a.create_replica_methods != b.create_replica_methods,
        ),
        ("postgresql.callbacks", a.callbacks != b.callbacks),
    ];
    checks
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Config {
        let dir = std::path::Path::new("/tmp");
        let yaml = format!(
            "scope: demo\nname: pg1\nrestapi:\n  listen: 127.0.0.1:18008\netcd3:\n  hosts: 127.0.0.1:2379\n\
             postgresql:\n  listen: 127.0.0.1:15432\n  data_dir: /tmp/hapg-reload-test-data\n  \
             authentication:\n    replication:\n      username: replicator\n      password: x\n\
             {extra}"
        );
        Config::from_yaml(&dir.join("agent.yml"), &yaml, &Default::default())
            .expect("valid")
            .0
    }

    #[test]
    fn only_what_a_reload_cannot_apply_is_named() {
        let base = load("  parameters:\n    work_mem: 4MB\ntags:\n  nofailover: false\n");
        // Parameters and tags are applied by the reload itself.
        let applied = load("  parameters:\n    work_mem: 8MB\ntags:\n  nofailover: true\n");
        assert!(not_reloadable(&base, &applied).is_empty());
        let fence = load("  parameters:\n    work_mem: 4MB\nfence:\n  enabled: false\n");
        assert_eq!(not_reloadable(&base, &fence), vec!["fence"]);
        let hba = load(
            "  parameters:\n    work_mem: 4MB\n  pg_hba:\n    - local all all trust\ntags:\n  nofailover: false\n",
        );
        assert_eq!(not_reloadable(&base, &hba), vec!["postgresql.pg_hba"]);
    }
}
