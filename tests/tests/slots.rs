//! Replication slots the user owns (issue 12): a physical slot `ignore_slots` names survives the
//! leader's slot clean-up, across loops and across a switchover away and back, while an
//! inactive slot nobody asked for is dropped (so the clean-up did run); `PATCH /config` refuses
//! a bad `ignore_slots` and permanent `slots` (not supported) by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ha_tests::agent::{ClusterSettings, http};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{init_tracing, wait_for};
use tracing::info;

async fn physical_slots(c: &TestCluster, member: &str) -> Vec<String> {
    let cl = c.node(member).client().await.unwrap();
    cl.query(
        "select slot_name::text from pg_replication_slots where slot_type = 'physical' \
         order by 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn switchover(c: &TestCluster, from: &str, to: &str) {
    let r = http()
        .post(format!("{}/switchover", c.node(from).api_base()))
        .json(&serde_json::json!({"leader": from, "candidate": to}))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    assert_eq!(code, 200, "{}", r.text().await.unwrap());
    let others = c.others(&[to]);
    c.wait_streaming(to, &[&others[0], &others[1]], Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_slots_survive_the_clean_up_and_switchovers() {
    init_tracing();
    let opts = Opts {
        settings: ClusterSettings {
            extra_dcs: "    ignore_slots:\n    - name: keepme\n      type: physical\n".into(),
            ..ClusterSettings::default()
        },
        ..Opts::default()
    };
    let c = TestCluster::start("slots_ignore", opts).await;
    let a = c.wait_healthy(Duration::from_secs(90)).await;
    let others = c.others(&[&a]);
    c.wait_streaming(&a, &[&others[0], &others[1]], Duration::from_secs(60))
        .await;

    info!("--- a user's slots on the leader {a}: keepme (ignored) and dropme");
    let cl = c.node(&a).client().await.unwrap();
    for s in ["keepme", "dropme"] {
        cl.execute(
            &format!("select pg_create_physical_replication_slot('{s}')"),
            &[],
        )
        .await
        .unwrap();
    }

    info!("--- switchover {a} -> {} and back", others[0]);
    switchover(&c, &a, &others[0]).await;
    switchover(&c, &others[0], &a).await;

    info!("--- back as leader, {a} cleans up: dropme goes, keepme stays");
    wait_for(
        "dropme dropped by the leader's clean-up",
        Duration::from_secs(30),
        || async { (!physical_slots(&c, &a).await.contains(&"dropme".to_string())).then_some(()) },
    )
    .await;
    // Several loops later (loop_wait is 2 s here) it is still there.
    tokio::time::sleep(Duration::from_secs(3 * c.settings.loop_wait)).await;
    let slots = physical_slots(&c, &a).await;
    assert!(slots.contains(&"keepme".to_string()), "{slots:?}");
    for m in &others {
        assert!(slots.contains(m), "the members' slots are kept: {slots:?}");
    }

    info!("--- PATCH /config refuses a bad ignore_slots and permanent slots, by name");
    c.assert_config_patches_refused(
        &a,
        &[
        (
            serde_json::json!({"ignore_slots": "keepme"}),
            "ignore_slots",
        ),
        (serde_json::json!({"ignore_slots": [{}]}), "ignore_slots"),
        (
            serde_json::json!({"slots": {"cdc": {"type": "logical", "database": "postgres", "plugin": "pgoutput"}}}),
            "slots",
        ),
    ],
    )
    .await;
}
