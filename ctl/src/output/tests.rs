//! Every format of `list`, `topology` and `history` against what the real patronictl 4.1.5
//! printed for the same keys (fixtures made by `ctl/tests/fixtures/gen.sh`).

use ha_agent::dcs::{Cluster, Keys, RawKv};
use serde_json::Value;

use super::{Format, Layout, listing, render};
use crate::cmd::history;
use crate::members;

/// The cluster described by a fixture's `kv` map, and its name.
fn cluster(spec: &str) -> (Cluster, String) {
    let spec: Value = serde_json::from_str(spec).unwrap();
    let name = spec["name"].as_str().unwrap().to_string();
    let keys = Keys::new("/service/", &name);
    let kvs: Vec<(String, String)> = spec["kv"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                format!("/service/{name}/{k}"),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    let raw = kvs.iter().map(|(k, v)| RawKv {
        key: k,
        value: v.as_bytes(),
        mod_revision: 1,
        lease: 0,
    });
    (Cluster::from_kvs(&keys, raw), name)
}

/// What patronictl printed, without click's final newline.
fn expected(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

fn check_list(spec: &str, cases: &[(&str, Layout, bool)]) {
    let (c, name) = cluster(spec);
    for (want, layout, extended) in cases {
        let l = members::listing(&c, &name, *extended, *layout == Layout::Topology);
        let got = listing(&l, *layout);
        assert_eq!(got, expected(want), "{name} {layout:?} extended={extended}");
    }
}

#[test]
fn anchor_cluster_prints_as_patronictl() {
    check_list(
        include_str!("../../tests/fixtures/anchor.json"),
        &[
            (
                include_str!("../../tests/fixtures/anchor.pretty.txt"),
                Layout::Format(Format::Pretty),
                false,
            ),
            (
                include_str!("../../tests/fixtures/anchor.extended.txt"),
                Layout::Format(Format::Pretty),
                true,
            ),
            (
                include_str!("../../tests/fixtures/anchor.json.txt"),
                Layout::Format(Format::Json),
                false,
            ),
            (
                include_str!("../../tests/fixtures/anchor.yaml.txt"),
                Layout::Format(Format::Yaml),
                false,
            ),
            (
                include_str!("../../tests/fixtures/anchor.tsv.txt"),
                Layout::Format(Format::Tsv),
                false,
            ),
            (
                include_str!("../../tests/fixtures/anchor.topology.txt"),
                Layout::Topology,
                false,
            ),
        ],
    );
}

#[test]
fn anchor_matches_the_captured_reference_exactly() {
    let reference = include_str!("../../tests/fixtures/reference-list.txt");
    let table = reference.split_once('\n').unwrap().1;
    let (c, name) = cluster(include_str!("../../tests/fixtures/anchor.json"));
    let got = listing(
        &members::listing(&c, &name, false, false),
        Layout::Format(Format::Pretty),
    );
    assert_eq!(got, table.trim_end_matches('\n'));
    let reference = include_str!("../../tests/fixtures/reference-list.json.txt");
    let json = reference.split_once('\n').unwrap().1.trim();
    let got = listing(
        &members::listing(&c, &name, false, false),
        Layout::Format(Format::Json),
    );
    assert_eq!(got, json);
}

#[test]
fn mixed_cluster_prints_as_patronictl() {
    check_list(
        include_str!("../../tests/fixtures/mixed.json"),
        &[
            (
                include_str!("../../tests/fixtures/mixed.pretty.txt"),
                Layout::Format(Format::Pretty),
                false,
            ),
            (
                include_str!("../../tests/fixtures/mixed.extended.txt"),
                Layout::Format(Format::Pretty),
                true,
            ),
            (
                include_str!("../../tests/fixtures/mixed.json.txt"),
                Layout::Format(Format::Json),
                false,
            ),
            (
                include_str!("../../tests/fixtures/mixed.yaml.txt"),
                Layout::Format(Format::Yaml),
                false,
            ),
            (
                include_str!("../../tests/fixtures/mixed.tsv.txt"),
                Layout::Format(Format::Tsv),
                false,
            ),
            (
                include_str!("../../tests/fixtures/mixed.topology.txt"),
                Layout::Topology,
                false,
            ),
        ],
    );
}

#[test]
fn empty_cluster_prints_as_patronictl() {
    check_list(
        include_str!("../../tests/fixtures/empty.json"),
        &[
            (
                include_str!("../../tests/fixtures/empty.pretty.txt"),
                Layout::Format(Format::Pretty),
                false,
            ),
            (
                include_str!("../../tests/fixtures/empty.extended.txt"),
                Layout::Format(Format::Pretty),
                true,
            ),
            (
                include_str!("../../tests/fixtures/empty.json.txt"),
                Layout::Format(Format::Json),
                false,
            ),
            (
                include_str!("../../tests/fixtures/empty.yaml.txt"),
                Layout::Format(Format::Yaml),
                false,
            ),
            (
                include_str!("../../tests/fixtures/empty.tsv.txt"),
                Layout::Format(Format::Tsv),
                false,
            ),
            (
                include_str!("../../tests/fixtures/empty.topology.txt"),
                Layout::Topology,
                false,
            ),
        ],
    );
}

#[test]
fn history_prints_as_patronictl() {
    let (c, _) = cluster(include_str!("../../tests/fixtures/history.json"));
    let (columns, rows) = history::rows(&c);
    for (want, format) in [
        (
            include_str!("../../tests/fixtures/history.pretty.txt"),
            Format::Pretty,
        ),
        (
            include_str!("../../tests/fixtures/history.json.txt"),
            Format::Json,
        ),
        (
            include_str!("../../tests/fixtures/history.yaml.txt"),
            Format::Yaml,
        ),
        (
            include_str!("../../tests/fixtures/history.tsv.txt"),
            Format::Tsv,
        ),
    ] {
        let got = render(&columns, &rows, &history::align, Layout::Format(format), "");
        assert_eq!(got, expected(want), "{format:?}");
    }
}
