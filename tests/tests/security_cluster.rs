//! A cluster secured by configuration, against real processes: etcd over HTTPS with client
//! certificates (`--client-cert-auth`) and etcd's own user/role auth; the REST API over HTTPS
//! with `verify_client: required`, an allowlist and basic auth; PostgreSQL with `ssl = on`
//! and a `pg_hba.conf` that accepts replication over TLS only (`hostssl`), the replicas
//! verifying the primary's certificate (`sslmode: verify-ca`); the keys of the API, of hactl
//! and of the etcd client are encrypted PKCS#8 opened with `keyfile_password`/`key_password`.
//! The cluster bootstraps,
//! switches over (REST API and hactl with `ctl.certfile`), fails over after a kill -9, is listed
//! by hactl and the real patronictl, and no configured secret shows in any agent or
//! PostgreSQL log, API answer or hactl output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ha_tests::agent::{ClusterSettings, ExtraYaml};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::{hactl, patronictl, records_settled};
use ha_tests::etcd::EtcdTls;
use ha_tests::pki::{CertFiles, Pki};
use ha_tests::procs::{RunAs, init_tracing, user_tempdir, wait_for};
use serde_json::Value;
use tracing::info;

const ETCD_ROOT_PW: &str = "etcd-root-pw-K3v9";
const ETCD_PW: &str = "etcd-user-pw-T8m2";
const API_PW: &str = "api-pw-Q4z7";
const API_KEY_PW: &str = "api-key-pw-H6r1";
const CTL_KEY_PW: &str = "ctl-key-pw-W2n8";
const ETCD_KEY_PW: &str = "etcd-key-pw-B5j3";
/// Every password the test cluster is configured with (the PostgreSQL ones come from the
/// harness's YAML).
const SECRETS: [&str; 9] = [
    ETCD_ROOT_PW,
    ETCD_PW,
    API_PW,
    API_KEY_PW,
    CTL_KEY_PW,
    ETCD_KEY_PW,
    "su-pass",
    "rep-pass",
    "rewind-pass",
];

/// An HTTPS client trusting the test CA, with `cert` as client certificate, bound to `from`.
fn api_client(pki: &Pki, cert: Option<&CertFiles>, from: &str) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .local_address(Some(from.parse().unwrap()))
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.ca_pem()).unwrap());
    if let Some(c) = cert {
        b = b.identity(reqwest::Identity::from_pem(&c.identity_pem()).unwrap());
    }
    b.build().unwrap()
}

fn api(c: &TestCluster, name: &str) -> String {
    format!("https://127.0.0.1:{}", c.node(name).api_port)
}

/// Walsenders on `leader` and whether each one's connection is encrypted.
async fn walsenders_ssl(c: &TestCluster, leader: &str) -> Vec<(String, bool)> {
    let pg = c.node(leader).client().await.unwrap();
    pg.query(
        "select r.application_name, s.ssl from pg_stat_replication r \
         join pg_stat_ssl s on s.pid = r.pid order by 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn replication_over_tls(c: &TestCluster, leader: &str, replicas: &[String]) {
    let got = walsenders_ssl(c, leader).await;
    let want: Vec<(String, bool)> = replicas.iter().map(|r| (r.clone(), true)).collect();
    assert_eq!(got, want, "walsenders on {leader} (name, ssl)");
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains the secret {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_secured_by_configuration_works_and_keeps_its_secrets() {
    init_tracing();
    let run_as = RunAs::unprivileged();
    let certs = user_tempdir(&run_as, "hapg-pki-");
    let pki = Pki::new(certs.path(), run_as);
    // Shared with patronictl, whose etcd client goes through etcd's JSON gateway.
    // Encrypted keys (PKCS#8) with their passphrases in the YAML; PostgreSQL's own key stays
    // plain (it would need ssl_passphrase_command).
    let etcd_plain = pki.issue_without_cn("hapg");
    let etcd_agent = pki.encrypted(&etcd_plain, ETCD_KEY_PW);
    let operator_plain = pki.issue("operator", &[]);
    let operator = pki.encrypted(&operator_plain, CTL_KEY_PW);
    let api_server = pki.encrypted(&pki.server, API_KEY_PW);
    let etcd_tls = EtcdTls {
        ca: pki.ca.clone(),
        server: pki.server.clone(),
        client: pki.issue("root", &[]),
        // Tokens expire after 5 s unused (etcd resets the TTL on use): clients idle longer than
        // that must authenticate again.
        auth_token_ttl: Some(5),
    };
    let (ca, srv) = (pki.ca.display(), &pki.server);
    let extra = ExtraYaml {
        restapi: vec![
            format!("certfile: {}", api_server.cert.display()),
            format!("keyfile: {}", api_server.key.display()),
            format!("keyfile_password: {API_KEY_PW}"),
            format!("cafile: {ca}"),
            "verify_client: required".into(),
            "allowlist: ['127.0.0.1']".into(),
            "allowlist_include_members: true".into(),
        ],
        ctl: vec![
            format!("certfile: {}", operator.cert.display()),
            format!("keyfile: {}", operator.key.display()),
            format!("keyfile_password: {CTL_KEY_PW}"),
            format!("cacert: {ca}"),
        ],
        etcd3: vec![
            "protocol: https".into(),
            format!("cacert: {ca}"),
            format!("cert: {}", etcd_agent.cert.display()),
            format!("key: {}", etcd_agent.key.display()),
            format!("key_password: {ETCD_KEY_PW}"),
            "username: hapg".into(),
            format!("password: {ETCD_PW}"),
        ],
        replication: vec!["sslmode: verify-ca".into(), format!("sslrootcert: {ca}")],
        superuser: vec!["sslmode: verify-full".into(), format!("sslrootcert: {ca}")],
        rewind: vec!["sslmode: verify-full".into(), format!("sslrootcert: {ca}")],
        parameters: vec![
            "ssl: on".into(),
            format!("ssl_cert_file: {}", srv.cert.display()),
            format!("ssl_key_file: {}", srv.key.display()),
        ],
        pg_hba: Some(vec![
            "local all all trust".into(),
            "hostssl all rewind_user 127.0.0.1/32 md5".into(),
            "hostnossl all rewind_user 127.0.0.1/32 reject".into(),
            "host all all 127.0.0.1/32 md5".into(),
            "hostssl replication replicator 127.0.0.1/32 md5".into(),
        ]),
        postgresql: Vec::new(),
        bootstrap: Vec::new(),
    };
    let opts = Opts {
        settings: ClusterSettings {
            api_auth: Some(("admin".into(), API_PW.into())),
            extra,
            ..ClusterSettings::default()
        },
        etcd_tls: Some(etcd_tls),
        etcd_auth: Some((ETCD_ROOT_PW.into(), "hapg".into(), ETCD_PW.into())),
        ..Opts::default()
    };

    info!("--- bootstrap through etcd with TLS, client certificates and auth");
    let mut c = TestCluster::start("security_cluster", opts).await;
    let leader = c.wait_healthy(Duration::from_secs(120)).await;
    let replicas = c.others(&[&leader]);
    info!(%leader, "--- replicas stream over TLS only (hostssl), verifying the primary's certificate");
    replication_over_tls(&c, &leader, &replicas).await;
    info!("--- the agents' own sessions (superuser, sslmode verify-full) are encrypted too");
    for n in &c.nodes {
        let ssl: Vec<bool> = wait_for(
            &format!("{}: the agent's session", n.name),
            Duration::from_secs(30),
            || async {
                let pg = n.client().await.ok()?;
                let rows = pg
                    .query(
                        "select s.ssl from pg_stat_ssl s join pg_stat_activity a on a.pid = s.pid \
                         where a.application_name = 'hapg' and a.usename = 'postgres'",
                        &[],
                    )
                    .await
                    .ok()?;
                let ssl: Vec<bool> = rows.iter().map(|r| r.get(0)).collect();
                (!ssl.is_empty()).then_some(ssl)
            },
        )
        .await;
        assert!(
            ssl.iter().all(|s| *s),
            "{}: agent session without TLS",
            n.name
        );
    }

    info!("--- REST API: no client certificate, no TLS session (health checks included)");
    let anonymous = api_client(&pki, None, "127.0.0.1");
    let r = anonymous
        .post(format!("{}/switchover", api(&c, &leader)))
        .basic_auth("admin", Some(API_PW))
        .json(&serde_json::json!({"leader": leader, "candidate": replicas[0]}))
        .send()
        .await;
    assert!(
        r.is_err(),
        "a request without a client certificate got {r:?}"
    );
    assert!(
        anonymous
            .get(format!("{}/health", api(&c, &leader)))
            .send()
            .await
            .is_err()
    );
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = Pki::new(stranger_dir.path(), RunAs::unprivileged()).issue("mallory", &[]);
    let r = api_client(&pki, Some(&stranger), "127.0.0.1")
        .get(format!("{}/health", api(&c, &leader)))
        .send()
        .await;
    assert!(r.is_err(), "a certificate from another CA got {r:?}");

    info!("--- allowlist: 127.0.0.2 is outside it: 403 on a mutating endpoint, health stays 200");
    let outsider = api_client(&pki, Some(&operator_plain), "127.0.0.2");
    let r = outsider
        .post(format!("{}/switchover", api(&c, &leader)))
        .basic_auth("admin", Some(API_PW))
        .json(&serde_json::json!({"leader": leader, "candidate": replicas[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.text().await.unwrap(), "Access is denied");
    let r = outsider
        .get(format!("{}/health", api(&c, &leader)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    info!("--- POST /switchover with a certificate of the CA, from an allowed address");
    wait_for(
        "member records settled",
        Duration::from_secs(60),
        || async { records_settled(&c, &leader).await.then_some(()) },
    )
    .await;
    let insider = api_client(&pki, Some(&operator_plain), "127.0.0.1");
    let target = replicas[0].clone();
    let r = insider
        .post(format!("{}/switchover", api(&c, &leader)))
        .basic_auth("admin", Some(API_PW))
        .json(&serde_json::json!({"leader": leader, "candidate": target}))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(code, 200, "{body}");
    let leader2 = c.wait_for_leader(Duration::from_secs(60)).await;
    assert_eq!(leader2, target);
    let replicas2 = c.others(&[&leader2]);
    let rs: Vec<&str> = replicas2.iter().map(String::as_str).collect();
    c.wait_streaming(&leader2, &rs, Duration::from_secs(90))
        .await;
    replication_over_tls(&c, &leader2, &replicas2).await;

    info!("--- hactl with ctl.certfile: list, then switchover through the API");
    let cfg = c.node("node1").config_path();
    wait_for(
        "member records settled",
        Duration::from_secs(60),
        || async { records_settled(&c, &leader2).await.then_some(()) },
    )
    .await;
    let out = hactl(&cfg, &["list", "-f", "json"]).await.ok();
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    let target = replicas2[0].clone();
    let out = hactl(&cfg, &["switchover", "--candidate", &target, "--force"])
        .await
        .ok();
    info!(stdout = %out.stdout.trim(), "hactl switchover");
    assert!(
        !out.stdout.contains("falling back"),
        "not through the API: {out}"
    );
    let leader3 = c.wait_for_leader(Duration::from_secs(60)).await;
    assert_eq!(leader3, target, "{out}");

    info!("--- hactl restart (REST API only): refused at TLS without ctl.certfile, done with it");
    let replica = c.others(&[&leader3])[0].clone();
    let yaml = std::fs::read_to_string(&cfg).unwrap();
    let mut skipping = false;
    let without_ctl: String = yaml
        .lines()
        .filter(|l| {
            if l.starts_with("ctl:") {
                skipping = true;
            } else if !l.starts_with(' ') {
                skipping = false;
            }
            !skipping
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!without_ctl.contains("operator.crt"));
    let no_cert = certs.path().join("no-client-cert.yml");
    std::fs::write(&no_cert, without_ctl).unwrap();
    let out = hactl(&no_cert, &["restart", &replica, "--force"]).await;
    assert_ne!(out.code, 0, "restart without a client certificate: {out}");
    let out = hactl(&cfg, &["restart", &replica, "--force"]).await.ok();
    assert!(
        out.stdout
            .contains(&format!("Success: restart on member {replica}")),
        "{out}"
    );

    info!("--- the real patronictl lists the cluster through etcd TLS and auth");
    // Patroni 4.1.5's etcd3 client does not pass key_password on its first request
    // ("Client private key is encrypted, password is required"): patronictl gets the same
    // file with the plain copy of the key.
    let for_patronictl = certs.path().join("patronictl.yml");
    let text = yaml
        .replace(
            &etcd_agent.key.display().to_string(),
            &etcd_plain.key.display().to_string(),
        )
        .replace(&format!("  key_password: {ETCD_KEY_PW}\n"), "");
    assert!(!text.contains(ETCD_KEY_PW));
    std::fs::write(&for_patronictl, text).unwrap();
    let out = patronictl(&for_patronictl, &["list"], None).await.ok();
    for n in &c.nodes {
        assert!(out.stdout.contains(&n.name), "{out}");
    }
    assert!(out.stdout.contains("Leader"), "{out}");

    info!("--- kill -9 of the leader's node: a replica takes over, replication stays on TLS");
    let replicas3 = c.others(&[&leader3]);
    c.wait_streaming(
        &leader3,
        &replicas3.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(90),
    )
    .await;
    c.node_mut(&leader3).kill_node().await;
    let leader4 = c
        .wait_for_leader_other_than(&leader3, Duration::from_secs(90))
        .await;
    let survivor: Vec<String> = c.others(&[&leader3, &leader4]);
    c.wait_streaming(&leader4, &[survivor[0].as_str()], Duration::from_secs(90))
        .await;
    replication_over_tls(&c, &leader4, &survivor).await;
    let out = hactl(&cfg, &["list"]).await.ok();
    assert!(out.stdout.contains(&leader4), "{out}");

    info!(%leader3, "--- the killed node comes back: rewound if needed (TLS-only for rewind_user), streams over TLS");
    let settings = c.settings.clone();
    c.node_mut(&leader3).start(&settings);
    let mut back = c.others(&[&leader4]);
    back.sort();
    c.wait_streaming(
        &leader4,
        &back.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(120),
    )
    .await;
    replication_over_tls(&c, &leader4, &back).await;
    let log = std::fs::read_to_string(c.node(&leader3).log_path()).unwrap_or_default();
    info!(
        rewound = log.contains("rewind done") || log.contains("no rewind required"),
        "old leader rejoined"
    );

    info!("--- no configured secret in API answers, hactl output or any log");
    // The secrets searched for are the ones the members run with.
    for s in SECRETS.iter().filter(|s| **s != ETCD_ROOT_PW) {
        assert!(yaml.contains(s), "{s} is not in the agents' configuration");
    }
    for n in &c.nodes {
        for path in ["/patroni", "/config", "/cluster", "/history", "/metrics"] {
            let r = insider
                .get(format!("{}{path}", api(&c, &n.name)))
                .send()
                .await
                .unwrap();
            assert_no_secret(&format!("{} GET {path}", n.name), &r.text().await.unwrap());
        }
    }
    for args in [
        &["show-config"][..],
        &["list", "-e"],
        &["history"],
        &["dsn"],
    ] {
        let out = hactl(&cfg, args).await;
        assert_no_secret(&format!("hactl {args:?}"), &out.to_string());
    }
    // Stop the agents so that everything they would log is in the files.
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    for name in &names {
        c.node_mut(name).stop(Duration::from_secs(60)).await;
    }
    let mut checked = 0;
    for n in &c.nodes {
        for path in [n.log_path().to_path_buf(), n.pg_log_path()] {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !text.is_empty() || path == n.pg_log_path(),
                "{} is empty",
                path.display()
            );
            assert_no_secret(&path.display().to_string(), &text);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
