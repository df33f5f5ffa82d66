//! `PATRONI_*` environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;
use crate::pg::Credentials;

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: Some(pass.into()),
        ..Default::default()
    }
}

#[test]
fn environment_overrides_win_over_the_file() {
    let fx = Fixture::new();
    let other = fx.path().join("other");
    let (c, warnings) = load_env(
        &serde_json::to_string(&fx.minimal()).unwrap(),
        &[
            ("PATRONI_SCOPE", "envscope"),
            ("PATRONI_NAMESPACE", "/hapg/"),
            ("PATRONI_NAME", "node9"),
            ("PATRONI_RESTAPI_LISTEN", "0.0.0.0:8010"),
            ("PATRONI_RESTAPI_CONNECT_ADDRESS", "10.0.0.9:8010"),
            ("PATRONI_RESTAPI_USERNAME", "admin"),
            ("PATRONI_RESTAPI_PASSWORD", "pw"),
            ("PATRONI_RESTAPI_CERTFILE", "/c.pem"),
            ("PATRONI_RESTAPI_KEYFILE", "/k.pem"),
            ("PATRONI_ETCD3_HOSTS", "e1:2379, e2"),
            ("PATRONI_ETCD3_PROTOCOL", "https"),
            ("PATRONI_ETCD3_USERNAME", "root"),
            ("PATRONI_ETCD3_PASSWORD", "rootpw"),
            ("PATRONI_ETCD3_CACERT", "/ca.pem"),
            ("PATRONI_ETCD3_CERT", "/cert.pem"),
            ("PATRONI_ETCD3_KEY", "/key.pem"),
            ("PATRONI_POSTGRESQL_LISTEN", "*:5440"),
            ("PATRONI_POSTGRESQL_CONNECT_ADDRESS", "10.0.0.9:5440"),
            ("PATRONI_POSTGRESQL_DATA_DIR", other.to_str().unwrap()),
            ("PATRONI_POSTGRESQL_BIN_DIR", "/opt/pg/bin"),
            ("PATRONI_POSTGRESQL_PGPASS", "/tmp/pgpass-env"),
            ("PATRONI_REPLICATION_USERNAME", "rep2"),
            ("PATRONI_REPLICATION_PASSWORD", "rep2pw"),
            ("PATRONI_SUPERUSER_USERNAME", "su"),
            ("PATRONI_SUPERUSER_PASSWORD", "supw"),
            ("PATRONI_REWIND_USERNAME", "rw"),
            ("PATRONI_REWIND_PASSWORD", "rwpw"),
            ("PATRONI_LOG_LEVEL", "DEBUG"),
            ("PATRONI_LOG_FORMAT", "json"),
            ("PATRONI_EMPTY_HOST", ""),
            ("HOME", "/root"),
        ],
    )
    .expect("loads");
    assert_eq!(lines(&warnings), Vec::<String>::new());
    assert_eq!(
        (c.scope.as_str(), c.namespace.as_str(), c.name.as_str()),
        ("envscope", "/hapg/", "node9")
    );
    assert_eq!(
        c.restapi.listen,
        "0.0.0.0:8010".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.api_url(), "https://10.0.0.9:8010/patroni");
    assert_eq!(c.restapi.authentication, Some(creds("admin", "pw")));
    assert_eq!(c.restapi.keyfile, Some(PathBuf::from("/k.pem")));
    assert_eq!(c.etcd.endpoints, ["https://e1:2379", "https://e2:2379"]);
    assert_eq!(
        (c.etcd.username.as_deref(), c.etcd.password.as_deref()),
        (Some("root"), Some("rootpw"))
    );
    assert_eq!(c.etcd.cacert, Some(PathBuf::from("/ca.pem")));
    assert_eq!(c.etcd.cert, Some(PathBuf::from("/cert.pem")));
    assert_eq!(c.etcd.key, Some(PathBuf::from("/key.pem")));
    let pg = &c.postgresql;
    assert_eq!((pg.listen_addresses.as_str(), pg.port), ("*", 5440));
    assert_eq!(c.conn_url(), "postgres://10.0.0.9:5440/postgres");
    assert_eq!(pg.data_dir, other);
    assert_eq!(pg.bin_dir, PathBuf::from("/opt/pg/bin"));
    assert_eq!(pg.pgpass, PathBuf::from("/tmp/pgpass-env"));
    assert_eq!(pg.replication, creds("rep2", "rep2pw"));
    assert_eq!(pg.superuser, creds("su", "supw"));
    assert_eq!(pg.rewind, Some(creds("rw", "rwpw")));
    assert_eq!((c.log.level.as_deref(), c.log.json), (Some("debug"), true));
}

#[test]
fn etcd3_hosts_from_the_environment_may_be_a_yaml_list() {
    let fx = Fixture::new();
    let text = serde_json::to_string(&fx.minimal()).unwrap();
    for list in ["[a:2379, 'b:2380']", "- a:2379\n- b:2380"] {
        let (c, _) = load_env(&text, &[("PATRONI_ETCD3_HOSTS", list)]).expect("loads");
        assert_eq!(
            c.etcd.endpoints,
            ["http://a:2379", "http://b:2380"],
            "{list}"
        );
    }
    let (c, _) = load_env(&text, &[("PATRONI_ETCD3_HOST", "h:1234")]).expect("loads");
    assert_eq!(
        c.etcd.endpoints,
        ["http://127.0.0.1:2379"],
        "the file's hosts win over an env host, as in Patroni"
    );
    let (c, _) = load_env(&text, &[("PATRONI_ETCD3_URL", "https://u:2379")]).expect("loads");
    assert_eq!(c.etcd.endpoints, ["https://u:2379"]);
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let fx = Fixture::new();
    let text = serde_json::to_string(&fx.minimal()).unwrap();
    let err = load_env(&text, &[("PATRONI_NAME", "bad/name")]).unwrap_err();
    let line = err.to_string();
    assert!(line.starts_with("environment: name: "), "{line}");
    assert!(line.contains("PATRONI_NAME"), "{line}");
    let err = load_env(&text, &[("PATRONI_ETCD3_HOSTS", "[a, b")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment: PATRONI_ETCD3_HOSTS: "),
        "{err}"
    );
}
