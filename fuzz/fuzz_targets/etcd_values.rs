//! The cluster built from etcd keys whose values are arbitrary bytes (the first byte picks
//! the key): read or reported, never a panic.
#![no_main]

use ha_agent::dcs::{Cluster, Keys, RawKv};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 9] = [
    "/service/demo/leader",
    "/service/demo/config",
    "/service/demo/failover",
    "/service/demo/sync",
    "/service/demo/history",
    "/service/demo/status",
    "/service/demo/initialize",
    "/service/demo/members/node1",
    "/service/demo/members/node2",
];

fuzz_target!(|data: &[u8]| {
    let keys = Keys::new("/service/", "demo");
    let kvs: Vec<RawKv<'_>> = data
        .split(|b| *b == 0xff)
        .filter_map(|chunk| {
            let (k, v) = chunk.split_first()?;
            Some(RawKv {
                key: KEYS[usize::from(*k) % KEYS.len()],
                value: v,
                mod_revision: i64::from(*k),
                lease: 0,
            })
        })
        .collect();
    let c = Cluster::from_kvs(&keys, kvs);
    let _ = c.leader_name();
    for m in &c.members {
        let _ = (m.record.conn_target(), m.record.nofailover());
    }
});
