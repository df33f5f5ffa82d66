//! `LocalPostgres` against real PostgreSQL 15: bootstrap, clone, streaming with slots,
//! promotion, rewind of a diverged old primary, bounded status of a frozen server, and
//! re-pointing a replica without a restart.
//!
//! Run as root, each test re-executes itself as the `postgres` user (see `ha_tests::pg`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_agent::ha::{ControlState, MemberName, PgRole, PgState, StartAs, StopMode};
use ha_agent::pg::{GucValue, Postgres};
use ha_tests::pg::{Frozen, PgNode, primary_and_replica, run_as_postgres, wait_for};

const SECS_30: Duration = Duration::from_secs(30);

/// Rows of `SELECT v FROM t ORDER BY v` on `node` (None while the table is missing).
async fn values(node: &PgNode) -> Option<Vec<String>> {
    let c = node.client().await;
    c.query("SELECT v FROM t ORDER BY v", &[])
        .await
        .ok()
        .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

#[test]
fn bootstrap_creates_a_running_primary_with_the_replication_role() {
    run_as_postgres(
        "bootstrap_creates_a_running_primary_with_the_replication_role",
        |scratch| async move {
            let a = PgNode::new(&scratch, "pg-a");
            let events = scratch.join("callbacks");
            let script = scratch.join("callback.sh");
            std::fs::write(
                &script,
                format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            let mut s = (*a.pg.settings()).clone();
            for cb in ["on_start", "on_stop", "on_restart", "on_reload"] {
                s.callbacks
                    .insert(cb.into(), script.to_string_lossy().into_owned());
            }
            a.pg.update(s);

            tracing::info!("--- bootstrap");
            a.pg.bootstrap().await.unwrap();
            let st = a.status().await;
            let PgState::Running(r) = &st.state else {
                panic!("not running after bootstrap: {st:?}");
            };
            assert_eq!(r.role, PgRole::Primary);
            assert_eq!(r.timeline, 1);
            assert!(r.sysid.len() > 10 && r.sysid.chars().all(|c| c.is_ascii_digit()));
            assert!(r.lsn.0 > 0);
            assert!(st.details.server_version.unwrap() >= 150000);
            let started = st.details.postmaster_start_time.clone().unwrap();
            assert!(
                started.len() > 26 && started.as_bytes()[started.len() - 3] == b':',
                "{started}"
            );

            tracing::info!("--- files and roles");
            let data = a.data_dir();
            let conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
            assert!(conf.contains("include_if_exists 'postgresql.base.conf'"));
            assert!(conf.contains(&format!("port = {}", a.port)));
            assert!(data.join("postgresql.base.conf").is_file());
            assert!(!data.join("standby.signal").exists());
            assert!(
                std::fs::read_to_string(data.join("pg_hba.conf"))
                    .unwrap()
                    .contains("host replication all 127.0.0.1/32 scram-sha-256")
            );
            assert!(a.pg.server_log().is_file());
            assert!(!data.join(a.pg.server_log().file_name().unwrap()).exists());
            let c = a.client().await;
            let row = c
                .query_one(
                    "SELECT rolreplication, rolcanlogin FROM pg_roles WHERE rolname = 'replicator'",
                    &[],
                )
                .await
                .unwrap();
            assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
            let can: bool = c
                .query_one(
                    "SELECT has_function_privilege('rewinder', \
                     'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE')",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert!(can, "rewind role lacks its grants");

            tracing::info!("--- a second bootstrap refuses and leaves the cluster alone");
            assert!(a.pg.bootstrap().await.is_err());
            assert!(matches!(a.status().await.state, PgState::Running(_)));

            tracing::info!("--- reload and restart");
            let mut params = a.pg.settings().parameters.clone();
            params.insert("work_mem".into(), GucValue::Str("7MB".into()));
            a.pg.reload(params).await.unwrap();
            wait_for("work_mem reloaded", SECS_30, || async {
                let c = a.client().await;
                let v: String = c.query_one("SHOW work_mem", &[]).await.ok()?.get(0);
                (v == "7MB").then_some(())
            })
            .await;
            a.pg.restart(&StartAs::Primary).await.unwrap();
            let (_, st) = a
                .wait_running("primary after restart", SECS_30, |r, _| {
                    r.role == PgRole::Primary
                })
                .await;
            assert_ne!(st.details.postmaster_start_time.unwrap(), started);

            tracing::info!("--- stop");
            a.pg.stop(StopMode::Fast).await.unwrap();
            a.pg.stop(StopMode::Fast).await.unwrap();
            match a.status().await.state {
                PgState::Stopped(s) => {
                    assert_eq!(s.sysid, r.sysid);
                    assert_eq!(s.timeline, 1);
                    assert_eq!(s.control_state, ControlState::ShutDown);
                }
                other => panic!("not stopped: {other:?}"),
            }
            let log = wait_for("callbacks", SECS_30, || async {
                let text = std::fs::read_to_string(&events).unwrap_or_default();
                text.contains("on_stop").then_some(text)
            })
            .await;
            assert!(log.contains("on_start primary pgtest"), "{log}");
            assert!(log.contains("on_reload primary pgtest"), "{log}");
            assert!(log.contains("on_restart primary pgtest"), "{log}");
            assert!(log.contains("on_stop primary pgtest"), "{log}");
        },
    );
}

#[test]
fn clone_from_primary_starts_a_streaming_replica_that_uses_its_slot() {
    run_as_postgres(
        "clone_from_primary_starts_a_streaming_replica_that_uses_its_slot",
        |scratch| async move {
            let a = PgNode::new(&scratch, "pg-a");
            let b = PgNode::new(&scratch, "pg-b");
            a.pg.bootstrap().await.unwrap();
            let sysid = a.status().await.state.running().unwrap().sysid.clone();

            tracing::info!("--- slots: ours created, a stale inactive one dropped");
            let c = a.client().await;
            c.execute(
                "SELECT pg_create_physical_replication_slot('stale_slot')",
                &[],
            )
            .await
            .unwrap();
            let members = [MemberName::new("pg-a"), MemberName::new("pg-b")];
            a.pg.sync_slots(&members, &[]).await.unwrap();
            let slots: Vec<String> = c
                .query(
                    "SELECT slot_name::text FROM pg_replication_slots ORDER BY 1",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(slots, vec!["pg_b".to_string()]);

            tracing::info!("--- a clone of another system than expected is not used");
            let err =
                b.pg.create_replica(&a.upstream(), "7000000000000000001")
                    .await
                    .unwrap_err();
            assert!(err.to_string().contains("not used"), "{err}");
            assert!(
                !b.data_dir().join("PG_VERSION").exists(),
                "nothing was swapped in"
            );

            tracing::info!("--- clone");
            b.pg.create_replica(&a.upstream(), &sysid).await.unwrap();
            match b.status().await.state {
                PgState::Stopped(s) => {
                    tracing::info!(state = ?s.control_state, "pg_control after clone");
                    assert_eq!(s.sysid, sysid);
                }
                other => panic!("clone left {other:?}"),
            }

            tracing::info!("--- start as replica");
            b.pg.start(&StartAs::Replica {
                upstream: Some(a.upstream()),
            })
            .await
            .unwrap();
            assert!(b.data_dir().join("standby.signal").exists());
            let (r, st) = b
                .wait_running("streaming", SECS_30, |r, _| r.streaming)
                .await;
            assert_eq!(r.role, PgRole::Replica);
            assert_eq!(r.sysid, sysid);
            assert_eq!(r.timeline, 1);
            assert_eq!(st.details.receiver_state.as_deref(), Some("streaming"));
            assert!(st.details.receive_lsn.is_some());

            tracing::info!("--- a row written on the primary reaches the replica");
            c.batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('one')")
                .await
                .unwrap();
            wait_for("row on pg-b", SECS_30, || async {
                (values(&b).await? == ["one"]).then_some(())
            })
            .await;

            tracing::info!("--- the replica uses its slot; the primary lists it");
            wait_for("slot pg_b active", SECS_30, || async {
                let row = c
                    .query_one(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg_b'",
                        &[],
                    )
                    .await
                    .ok()?;
                row.get::<_, bool>(0).then_some(())
            })
            .await;
            let (_, st) = a
                .wait_running("replication row", SECS_30, |_, st| {
                    st.details
                        .replication
                        .iter()
                        .any(|r| r.state == "streaming")
                })
                .await;
            assert_eq!(st.details.replication[0].application_name, "pg-b");
            assert_eq!(st.details.replication[0].usename, "replicator");

            tracing::info!("--- slot changes on a replica are a no-op");
            b.pg.sync_slots(&members, &[]).await.unwrap();
            a.pg.sync_slots(&members, &[]).await.unwrap();
        },
    );
}

#[test]
fn immediately_stopped_primary_is_in_production_and_promoted_replica_is_on_timeline_2() {
    run_as_postgres(
        "immediately_stopped_primary_is_in_production_and_promoted_replica_is_on_timeline_2",
        |scratch| async move {
            let (a, b) = primary_and_replica(&scratch).await;

            tracing::info!("--- immediate stop of the primary");
            a.pg.stop(StopMode::Immediate).await.unwrap();
            match a.status().await.state {
                PgState::Stopped(s) => {
                    assert_eq!(s.control_state, ControlState::InProduction);
                    assert_eq!(s.timeline, 1);
                }
                other => panic!("not stopped: {other:?}"),
            }

            tracing::info!("--- promote the replica");
            let before = b.status().await.state.running().unwrap().lsn;
            let promoted = b.pg.promote().await.unwrap();
            assert_eq!(promoted.timeline, 2);
            assert_eq!(promoted.history.len(), 1, "{promoted:?}");
            let (tli, switch, reason) = &promoted.history[0];
            assert_eq!(*tli, 1);
            assert!(
                *switch > 0 && *switch <= before.0 + 0x100,
                "{switch:x} vs {before}"
            );
            assert!(!reason.is_empty());
            let (r, _) = b
                .wait_running("primary", SECS_30, |r, _| r.role == PgRole::Primary)
                .await;
            assert_eq!(r.timeline, 2);
            assert!(!b.data_dir().join("standby.signal").exists());
        },
    );
}

#[test]
fn diverged_old_primary_is_rewound_and_streams_from_the_new_primary() {
    run_as_postgres(
        "diverged_old_primary_is_rewound_and_streams_from_the_new_primary",
        |scratch| async move {
            let (a, b) = primary_and_replica(&scratch).await;
            let ca = a.client().await;
            ca.batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('1 common')")
                .await
                .unwrap();
            wait_for("common row on pg-b", SECS_30, || async {
                (values(&b).await? == ["1 common"]).then_some(())
            })
            .await;

            tracing::info!("--- cut the replica off, then diverge the primary");
            b.pg.follow(None).await.unwrap();
            b.wait_running("receiver gone", SECS_30, |r, st| {
                !r.streaming && st.details.receiver_state.is_none()
            })
            .await;
            ca.batch_execute(
                "INSERT INTO t SELECT '2 diverged ' || g FROM generate_series(1, 1000) g",
            )
            .await
            .unwrap();
            drop(ca);
            a.pg.stop(StopMode::Immediate).await.unwrap();

            tracing::info!("--- promote pg-b and write there");
            assert_eq!(b.pg.promote().await.unwrap().timeline, 2);
            b.pg.sync_slots(&[MemberName::new("pg-a"), MemberName::new("pg-b")], &[])
                .await
                .unwrap();
            let cb = b.client().await;
            cb.batch_execute("INSERT INTO t VALUES ('3 new primary')")
                .await
                .unwrap();

            tracing::info!("--- rewind pg-a (crash recovery first) and follow pg-b");
            a.pg.rewind_from(&b.upstream()).await.unwrap();
            assert!(matches!(a.status().await.state, PgState::Stopped(_)));
            a.pg.start(&StartAs::Replica {
                upstream: Some(b.upstream()),
            })
            .await
            .unwrap();
            let (r, _) = a
                .wait_running("streaming from pg-b", Duration::from_secs(60), |r, _| {
                    r.streaming
                })
                .await;
            assert_eq!(r.role, PgRole::Replica);
            assert_eq!(r.timeline, 2);
            wait_for("new primary's rows on pg-a", SECS_30, || async {
                (values(&a).await? == ["1 common", "3 new primary"]).then_some(())
            })
            .await;
        },
    );
}

#[test]
fn status_stays_bounded_while_postgres_is_frozen() {
    run_as_postgres(
        "status_stays_bounded_while_postgres_is_frozen",
        |scratch| async move {
            let a = PgNode::new(&scratch, "pg-a");
            a.pg.bootstrap().await.unwrap();
            assert!(matches!(a.status().await.state, PgState::Running(_)));

            tracing::info!("--- SIGSTOP the postmaster and its children");
            let frozen = Frozen::freeze(a.server_pids());
            for round in 0..3 {
                let t0 = Instant::now();
                let st = a.status().await;
                let took = t0.elapsed();
                tracing::info!(round, ?took, state = ?st.state, "status while frozen");
                assert!(took < Duration::from_secs(3), "status took {took:?}");
                assert_eq!(st.state, PgState::Unknown);
            }

            tracing::info!("--- SIGCONT: status recovers");
            drop(frozen);
            a.wait_running("running again", SECS_30, |r, _| r.role == PgRole::Primary)
                .await;
        },
    );
}

#[test]
fn follow_repoints_a_replica_without_restart() {
    run_as_postgres(
        "follow_repoints_a_replica_without_restart",
        |scratch| async move {
            let (a, b) = primary_and_replica(&scratch).await;
            tracing::info!("--- pg-c streams from pg-a without a slot");
            let c = PgNode::new(&scratch, "pg-c");
            let mut s = (*c.pg.settings()).clone();
            s.use_slots = false;
            c.pg.update(s);
            c.pg.create_replica(&a.upstream(), &a.sysid().await)
                .await
                .unwrap();
            c.pg.start(&StartAs::Replica {
                upstream: Some(a.upstream()),
            })
            .await
            .unwrap();
            let (_, st) = c
                .wait_running("streaming from pg-a", SECS_30, |r, _| r.streaming)
                .await;
            let started = st.details.postmaster_start_time.unwrap();
            let sender_port = || async {
                let cl = c.client().await;
                let row = cl
                    .query_opt("SELECT status, sender_port FROM pg_stat_wal_receiver", &[])
                    .await
                    .unwrap();
                row.map(|r| (r.get::<_, String>(0), r.get::<_, Option<i32>>(1)))
            };

            tracing::info!("--- follow(None): the receiver stops");
            c.pg.follow(None).await.unwrap();
            wait_for("no wal receiver", SECS_30, || async {
                sender_port().await.is_none().then_some(())
            })
            .await;

            tracing::info!("--- follow(pg-b): cascades from the other replica");
            c.pg.follow(Some(&b.upstream())).await.unwrap();
            wait_for("streaming from pg-b", SECS_30, || async {
                let (status, port) = sender_port().await?;
                (status == "streaming" && port == Some(i32::from(b.port))).then_some(())
            })
            .await;
            let (_, st) = c
                .wait_running("streaming again", SECS_30, |r, _| r.streaming)
                .await;
            assert_eq!(st.details.postmaster_start_time.unwrap(), started);
            assert!(a.status().await.state.running().is_some());
        },
    );
}

/// User plus system CPU time of this process, from `/proc/self/stat` (clock ticks of 10 ms).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

#[test]
fn polling_status_of_a_running_primary_is_cheap() {
    run_as_postgres(
        "polling_status_of_a_running_primary_is_cheap",
        |scratch| async move {
            let a = PgNode::new(&scratch, "pg-a");
            a.pg.bootstrap().await.unwrap();
            assert!(matches!(a.status().await.state, PgState::Running(_)));
            let agent_backends = || async {
                let c = a.client().await;
                c.query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'hapg'",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, i32>(0))
                .collect::<Vec<_>>()
            };
            let backends = agent_backends().await;
            assert_eq!(backends.len(), 1, "{backends:?}");

            tracing::info!("--- 100 status calls: 16 minutes of an idle agent at loop_wait 10 s");
            let cpu0 = own_cpu();
            for _ in 0..100 {
                assert!(matches!(a.status().await.state, PgState::Running(_)));
            }
            let used = own_cpu().saturating_sub(cpu0);
            tracing::info!(?used, "cpu used by 100 status calls");
            // The whole agent may use 0.05 s per minute; status gets a small share of it.
            assert!(
                used < Duration::from_millis(200),
                "100 status calls used {used:?}"
            );
            // One persistent connection: the same backend served every call.
            assert_eq!(agent_backends().await, backends);

            tracing::info!("--- a terminated status connection is replaced within the same call");
            let c = a.client().await;
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'hapg'",
                &[],
            )
            .await
            .unwrap();
            wait_for("old backend gone", SECS_30, || async {
                (!agent_backends().await.contains(&backends[0])).then_some(())
            })
            .await;
            assert!(matches!(a.status().await.state, PgState::Running(_)));
        },
    );
}
