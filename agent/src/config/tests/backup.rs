//! The `backup` section: defaults, and each rule rejecting with the key named.

use serde_json::json;

use super::*;
use crate::pg::GucValue;

fn with_backup(fx: &Fixture, backup: Value) -> Value {
    let mut v = fx.minimal();
    set(&mut v, "backup", backup);
    v
}

#[test]
fn a_backup_section_gets_defaults_and_makes_every_member_archive() {
    let fx = Fixture::new();
    let repo = fx.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let v = with_backup(
        &fx,
        json!({"repo_path": repo, "schedule": {"full": "0 3 * * 0", "incr": "0 */6 * * *"}}),
    );
    let (cfg, warnings) = ok(&v);
    assert!(warnings.is_empty(), "{warnings:?}");
    let b = cfg.backup.clone().unwrap();
    assert_eq!(b.stanza, "demo");
    assert_eq!(b.retention_full, 2);
    assert_eq!(b.compress_type, "lz4");
    assert!(b.from_replica);
    assert_eq!(b.full.as_ref().map(|s| s.text()), Some("0 3 * * 0"));
    assert_eq!(b.diff, None);
    let mut conf = fx.data_dir().into_os_string();
    conf.push(".pgbackrest.conf");
    assert_eq!(b.config_file, PathBuf::from(conf));
    let pg = cfg.pg_settings(&cfg.initial_dynamic());
    assert_eq!(
        pg.parameters.get("archive_mode"),
        Some(&GucValue::Str("on".into()))
    );
    let GucValue::Str(cmd) = &pg.parameters["archive_command"] else {
        panic!("archive_command is a string");
    };
    assert!(cmd.ends_with("--stanza=demo archive-push %p"), "{cmd}");
}

#[test]
fn bad_backup_values_are_refused_naming_the_key() {
    let fx = Fixture::new();
    let repo = fx.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let cases = [
        (
            json!({"repo_path": repo, "schedule": {"full": "every hour"}}),
            "backup.schedule.full",
        ),
        (
            json!({"repo_path": repo, "schedule": {"incr": "61 * * * *"}}),
            "backup.schedule.incr",
        ),
        (
            json!({"repo_path": fx.path().join("nope")}),
            "backup.repo_path",
        ),
        (json!({"repo_path": "relative/repo"}), "backup.repo_path"),
        (json!({}), "backup.repo_path"),
        (
            json!({"repo_path": repo, "retention_full": 0}),
            "backup.retention_full",
        ),
        (
            json!({"repo_path": repo, "compress_type": "rar"}),
            "backup.compress_type",
        ),
        (json!({"repo_path": repo, "stanza": "a b"}), "backup.stanza"),
        (
            json!({"repo_path": repo, "config_file": "/etc/pg br.conf"}),
            "backup.config_file",
        ),
        (
            json!({"repo_path": repo, "options": {"pg1-path": "/x"}}),
            "backup.options.pg1-path",
        ),
        (
            json!({"repo_path": repo, "options": {"Repo1": "x"}}),
            "backup.options.Repo1",
        ),
    ];
    for (backup, key) in cases {
        let msg = rejected(&with_backup(&fx, backup.clone()), key);
        assert!(!msg.is_empty(), "{backup}");
    }
    // An S3 repository passed through needs no repo_path.
    let v = with_backup(
        &fx,
        json!({"options": {"repo1-type": "s3", "repo1-s3-bucket": "b"}}),
    );
    let b = ok(&v).0.backup.unwrap();
    assert_eq!(b.repo_path, None);
    assert_eq!(b.options["repo1-type"], "s3");
}

#[test]
fn a_cluster_can_bootstrap_from_the_repository() {
    let fx = Fixture::new();
    let repo = fx.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let mut v = with_backup(&fx, json!({"repo_path": repo}));
    set(
        &mut v,
        "bootstrap",
        json!({"method": "pgbackrest", "pgbackrest": {"stanza": "old", "type": "time", "target": "2026-12-03 14:00:00+00"}}),
    );
    let (cfg, _) = ok(&v);
    let rb = cfg
        .pg_settings(&cfg.initial_dynamic())
        .repo_bootstrap
        .unwrap();
    assert_eq!((rb.stanza.as_str(), rb.kind.as_str()), ("old", "time"));
    assert_eq!(rb.target.as_deref(), Some("2026-12-03 14:00:00+00"));
    set(&mut v, "bootstrap.pgbackrest", json!({"type": "time"}));
    rejected(&v, "bootstrap.pgbackrest.target");
    set(&mut v, "bootstrap.pgbackrest", json!({"type": "sometime"}));
    rejected(&v, "bootstrap.pgbackrest.type");
    let mut v = fx.minimal();
    set(&mut v, "bootstrap", json!({"method": "pgbackrest"}));
    rejected(&v, "bootstrap.method");
    set(
        &mut v,
        "postgresql.create_replica_methods",
        json!(["pgbackrest"]),
    );
    set(&mut v, "bootstrap", json!({}));
    rejected(&v, "postgresql.create_replica_methods");
}
