//! Proves crm-snippets/ with Pacemaker's own tools, offline on CIB files: the
//! three dialects load and agree, and the scheduler places the blocks as the README says.

mod cib;
mod xml;

use crate::util::{TempDir, run_ok as run};
use cib::{Cib, Dialect, READ_BLOCK, WRITE_BLOCK, action, nodes, snippet};
use std::collections::BTreeSet;
use std::process::Command;

const WRITE_RSC: &str = "RedisLBWriteBlock";
const READ_RSC: &str = "RedisLBReadBlock";
const ALL: &str = "node1 node2 node3";

/// Where the blocks run: (WriteBlock nodes, ReadBlock nodes).
type Placement = (BTreeSet<String>, BTreeSet<String>);

fn placement(cib: &Cib) -> Placement {
    (cib.locate(WRITE_BLOCK), cib.locate(READ_BLOCK))
}

/// A CIB with the block clones (XML dialect), the recommended properties (crm
/// dialect) and the given roles, after the scheduler has placed the blocks.
fn placed(dir: &TempDir, roles: &str) -> Cib {
    let cib = Cib::empty(dir, "base.xml");
    cib.load("redis-ha", Dialect::Xml);
    cib.load("cluster-properties", Dialect::Crm);
    cib.set_roles(roles);
    cib.simulate(dir, "placed.xml", true).0
}

#[test]
fn block_clones_load_in_every_dialect_and_agree() {
    let dir = TempDir::new("dialects");
    let mut reference: Option<(Dialect, Vec<String>)> = None;
    for dialect in [Dialect::Xml, Dialect::Crm, Dialect::Pcs, Dialect::PcsLive] {
        let cib = Cib::empty(&dir, &format!("{dialect:?}.xml"));
        cib.load("redis-ha", dialect);
        let verify = cib.verify();
        assert!(
            !verify.stderr.to_lowercase().contains("error"),
            "{dialect:?}: crm_verify:\n{verify}"
        );
        // What the sync reads of it (crmsh, for one, keeps the comment lines above
        // the order constraint inside it).
        let (placed, _) = cib.simulate(&dir, &format!("{dialect:?}-placed.xml"), true);
        assert_eq!(reads_ordered(&placed), "yes", "{dialect:?}");
        let text = cib.text();
        let got = [
            xml::normalised(&text, "resources"),
            xml::normalised(&text, "constraints"),
        ]
        .concat();
        let top = |kind: &str| {
            got.iter()
                .filter(|l| l.starts_with(kind) && !l.contains("}/"))
                .count()
        };
        assert_eq!(
            (top("clone{"), top("rsc_location{"), top("rsc_order{")),
            (2, 4, 1),
            "{dialect:?}: clones, locations, orders: {got:#?}"
        );
        // A failover's transition records no pending actions of the blocks: each record
        // is one more CIB update for every node to apply while the new primary's write
        // port waits (README, "Failover benchmark").
        let ops: Vec<&String> = got.iter().filter(|l| l.contains("/op{")).collect();
        assert!(
            ops.len() == 6 && ops.iter().all(|l| l.contains("record-pending=false")),
            "{dialect:?}: every operation without pending records: {ops:#?}"
        );
        match &reference {
            None => reference = Some((dialect, got)),
            Some((first, want)) => {
                let only = |a: &[String], b: &[String]| -> Vec<String> {
                    a.iter().filter(|l| !b.contains(l)).cloned().collect()
                };
                assert_eq!(
                    (only(&got, want), only(want, &got)),
                    (vec![], vec![]),
                    "{dialect:?} loads differently from {first:?}: (only in {dialect:?}, only in {first:?})"
                );
            }
        }
    }
}

#[test]
fn cluster_properties_load_in_crm_and_pcs_and_agree() {
    let dir = TempDir::new("properties");
    let mut loaded = Vec::new();
    // (Live pcs ignores CIB_file for "property set", so no PcsLive here.)
    for dialect in [Dialect::Crm, Dialect::Pcs] {
        let cib = Cib::empty(&dir, &format!("{dialect:?}.xml"));
        cib.load("cluster-properties", dialect);
        cib.verify();
        let got = xml::normalised(&cib.text(), "crm_config");
        assert!(
            got.iter()
                .any(|l| l.ends_with("nvpair{name=no-quorum-policy value=freeze}")),
            "{dialect:?} sets no-quorum-policy=freeze: {got:#?}"
        );
        loaded.push(got);
    }
    assert!(
        loaded.windows(2).all(|w| w[0] == w[1]),
        "crm and pcs set the same properties: {loaded:#?}"
    );
}

#[test]
fn blocks_follow_redis_role_in_opt_in_and_symmetric_clusters() {
    // (redis_role of node1 node2 node3, "-" undefined; WriteBlock nodes; ReadBlock nodes)
    let cases = [
        ("primary replica replica", "node2 node3", ""),
        ("primary replica fail", "node2 node3", "node3"),
        ("- - -", ALL, ALL),
        ("primary - replica", "node2 node3", "node2"),
        ("replica replica fail", ALL, "node3"),
        ("fail fail fail", ALL, ALL),
        // The rules do not arbitrate: two primaries both take writes.
        ("primary primary replica", "node3", ""),
        // A misspelt role blocks writes but, not being "fail", not reads.
        ("primray replica primary", "node1 node2", ""),
        // Pacemaker compares strings case-insensitively.
        ("PRIMARY replica replica", "node2 node3", ""),
    ];
    let dir = TempDir::new("placement");
    for symmetric in ["false", "true"] {
        let base = Cib::empty(&dir, &format!("base-{symmetric}.xml"));
        base.load("redis-ha", Dialect::Xml);
        base.set_property("symmetric-cluster", symmetric);
        for (i, (roles, write, read)) in cases.into_iter().enumerate() {
            let cib = base.copy(&dir, &format!("case-{symmetric}-{i}.xml"));
            cib.set_roles(roles);
            let (after, _) = cib.simulate(&dir, &format!("out-{symmetric}-{i}.xml"), true);
            assert_eq!(
                placement(&after),
                (nodes(write), nodes(read)),
                "roles ({roles}) with symmetric-cluster={symmetric}: (WriteBlock, ReadBlock) nodes"
            );
        }
    }
}

#[test]
fn original_opt_in_design_fails_open_for_a_node_without_role() {
    // The rules this project replaces: blocks only where the role says so.
    let original = r#"<constraints>
      <rsc_location id="read-on-fail" rsc="RedisLBReadBlock-clone">
        <rule id="read-on-fail-rule" score="INFINITY">
          <expression id="read-on-fail-e" attribute="redis_role" operation="eq" value="fail"/></rule></rsc_location>
      <rsc_location id="write-on-fail" rsc="RedisLBWriteBlock-clone">
        <rule id="write-on-fail-rule" score="INFINITY">
          <expression id="write-on-fail-e" attribute="redis_role" operation="eq" value="fail"/></rule></rsc_location>
      <rsc_location id="write-on-replica" rsc="RedisLBWriteBlock-clone">
        <rule id="write-on-replica-rule" score="INFINITY">
          <expression id="write-on-replica-e" attribute="redis_role" operation="eq" value="replica"/></rule></rsc_location>
    </constraints>"#;
    let dir = TempDir::new("original");
    let cib = Cib::empty(&dir, "cib.xml");
    cib.load("redis-ha", Dialect::Xml);
    run(cib.cmd("cibadmin").args([
        "--replace",
        "--scope",
        "constraints",
        "--xml-text",
        original,
    ]));
    cib.set_property("symmetric-cluster", "false");
    cib.set_roles("primary - replica");
    let (after, _) = cib.simulate(&dir, "out.xml", true);
    assert_eq!(
        placement(&after),
        (nodes("node3"), nodes("")),
        "original design, roles (primary - replica): node2 takes writes"
    );
}

#[test]
fn moving_primary_in_one_step_unblocks_the_new_primary_before_blocking_the_old() {
    let dir = TempDir::new("one-step");
    let cib = placed(&dir, "primary replica replica");
    cib.set_roles("replica primary -");
    let (after, graph) = cib.simulate(&dir, "moved.xml", true);
    let unblock_new = action(WRITE_RSC, "stop", "node2");
    let block_old = action(WRITE_RSC, "start", "node1");
    assert!(
        graph.orders(&unblock_new, &block_old),
        "one transition stops WriteBlock on node2 before it starts it on node1: {graph:#?}"
    );
    assert!(
        !graph.orders(&block_old, &unblock_new),
        "and not the other way round: {graph:#?}"
    );
    let writable = writable_during(&writable(&cib), &graph.nodes(WRITE_RSC, "stop"));
    assert_eq!(
        writable,
        nodes("node1 node2"),
        "one-step move: writable nodes during the transition"
    );
    assert_eq!(
        after.locate(WRITE_BLOCK),
        nodes("node1 node3"),
        "one-step move: WriteBlock after"
    );
}

#[test]
fn demoting_first_then_promoting_never_leaves_two_nodes_writable() {
    let dir = TempDir::new("two-step");
    let cib = placed(&dir, "primary replica replica");
    // (step, roles, WriteBlock after)
    let steps = [
        ("demote node1", "replica - -", ALL),
        ("promote node2", "- primary -", "node1 node3"),
    ];
    let mut cib = cib;
    for (i, (step, roles, write_after)) in steps.into_iter().enumerate() {
        cib.set_roles(roles);
        let (after, graph) = cib.simulate(&dir, &format!("step-{i}.xml"), true);
        let writable = writable_during(&writable(&cib), &graph.nodes(WRITE_RSC, "stop"));
        assert!(
            writable.len() <= 1,
            "{step}: writable nodes during the transition: {writable:?}"
        );
        assert_eq!(
            after.locate(WRITE_BLOCK),
            nodes(write_after),
            "{step}: WriteBlock after the transition"
        );
        cib = after;
    }
}

#[test]
fn a_failover_in_one_update_refuses_the_reads_left_behind_before_the_new_primary_opens() {
    // The sync's one CIB update at a crash: the dead primary node1 and the replica
    // left behind, node3, to `fail` (their reads refused: they lack what node2 will
    // acknowledge), node2 to `primary`. The shipped order constraint makes the
    // scheduler start every read block of that transition before it stops node2's
    // write block; without it, nothing orders them, and the sync must not write both
    // at once (`cluster-debug reads-ordered` is what it reads).
    let dir = TempDir::new("reads-ordered");
    let cib = placed(&dir, "primary replica replica");
    assert_eq!(reads_ordered(&cib), "yes");
    cib.set_roles("fail primary fail");
    let (after, graph) = cib.simulate(&dir, "failover.xml", true);
    let open_new = action(WRITE_RSC, "stop", "node2");
    for node in ["node1", "node3"] {
        assert!(
            graph.orders(&action(READ_RSC, "start", node), &open_new),
            "{node}'s reads are refused before node2's writes open: {graph:#?}"
        );
    }
    assert_eq!(after.locate(READ_BLOCK), nodes("node1 node3"));
    assert_eq!(after.locate(WRITE_BLOCK), nodes("node1 node3"));

    // Without the constraint the same update is unordered.
    let dir = TempDir::new("reads-unordered");
    let bare = placed(&dir, "primary replica replica");
    run(bare.cmd("cibadmin").args([
        "--delete",
        "--xml-text",
        r#"<rsc_order id="RedisLBReadBlock-before-promotion"/>"#,
    ]));
    assert_eq!(reads_ordered(&bare), "no");
    bare.set_roles("fail primary fail");
    let (_, graph) = bare.simulate(&dir, "unordered.xml", true);
    assert!(
        !graph.orders(&action(READ_RSC, "start", "node3"), &open_new),
        "{graph:#?}"
    );
}

/// What `redis-ha cluster-debug reads-ordered` says of a CIB: whether the sync counts on
/// Pacemaker to refuse the reads before it opens a promoted node's writes.
fn reads_ordered(cib: &Cib) -> String {
    let out = run(Command::new(crate::util::bin())
        .args(["cluster-debug", "reads-ordered"])
        .env("CIB_file", &cib.path));
    out.trim().to_string()
}

/// The nodes without WriteBlock in a (placed) CIB.
fn writable(cib: &Cib) -> BTreeSet<String> {
    nodes(ALL)
        .difference(&cib.locate(WRITE_BLOCK))
        .cloned()
        .collect()
}

/// The nodes without WriteBlock at the worst moment of a transition: stops run
/// before starts, so the nodes unblocked before plus every node it stops.
fn writable_during(before: &BTreeSet<String>, stopped: &BTreeSet<String>) -> BTreeSet<String> {
    before.union(stopped).cloned().collect()
}

#[test]
fn standby_and_clean_shutdown_stop_the_blocks_unless_in_maintenance_mode() {
    type Change = fn(&Cib);
    fn standby(c: &Cib) {
        c.set_node_attr("node3", "standby", "on");
    }
    fn shutdown(c: &Cib) {
        c.set_transient("node3", "shutdown", "1");
    }
    fn maintenance(c: &Cib) {
        c.set_property("maintenance-mode", "true");
    }
    // (what happens, changes, WriteBlock nodes, ReadBlock nodes); before: node2 node3, node3.
    let cases: [(&str, &[Change], &str, &str); 4] = [
        ("standby node3", &[standby], "node2", ""),
        ("clean shutdown of node3", &[shutdown], "node2", ""),
        (
            "standby node3 in maintenance-mode",
            &[maintenance, standby],
            "node2 node3",
            "node3",
        ),
        (
            "shutdown of node3 in maintenance-mode",
            &[maintenance, shutdown],
            "node2 node3",
            "node3",
        ),
    ];
    let dir = TempDir::new("standby");
    let cib = placed(&dir, "primary replica fail");
    assert_eq!(
        placement(&cib),
        (nodes("node2 node3"), nodes("node3")),
        "before any change"
    );
    for (i, (name, changes, write, read)) in cases.into_iter().enumerate() {
        let changed = cib.copy(&dir, &format!("changed-{i}.xml"));
        changes.iter().for_each(|change| change(&changed));
        let (after, _) = changed.simulate(&dir, &format!("after-{i}.xml"), true);
        assert_eq!(
            placement(&after),
            (nodes(write), nodes(read)),
            "{name}: (WriteBlock, ReadBlock) nodes"
        );
    }
}

#[test]
fn quorum_loss_stops_the_blocks_unless_no_quorum_policy_freezes_or_ignores() {
    let kept = (nodes("node2 node3"), nodes("node3"));
    let gone = (nodes(""), nodes(""));
    // None: as cluster-properties.crm sets it (freeze).
    let cases = [
        (None, kept.clone()),
        (Some("freeze"), kept.clone()),
        (Some("ignore"), kept.clone()),
        (Some("stop"), gone.clone()),
        (Some("demote"), gone.clone()),
    ];
    let dir = TempDir::new("quorum");
    let cib = placed(&dir, "primary replica fail");
    for (i, (policy, want)) in cases.into_iter().enumerate() {
        let cib = cib.copy(&dir, &format!("policy-{i}.xml"));
        if let Some(policy) = policy {
            cib.set_property("no-quorum-policy", policy);
        }
        let (after, _) = cib.simulate(&dir, &format!("lost-{i}.xml"), false);
        let policy = policy.unwrap_or("freeze from cluster-properties.crm");
        assert_eq!(
            placement(&after),
            want,
            "quorum lost, no-quorum-policy={policy}: (WriteBlock, ReadBlock)"
        );
    }
}

#[test]
fn without_quorum_freeze_starts_no_block_but_still_stops_them() {
    let dir = TempDir::new("freeze");
    // no-quorum-policy=freeze, from cluster-properties.crm.
    let cib = placed(&dir, "primary replica replica");
    cib.set_roles("replica - -");
    let (demoted, _) = cib.simulate(&dir, "demoted.xml", false);
    assert_eq!(
        demoted.locate(WRITE_BLOCK),
        nodes("node2 node3"),
        "demoted node1 without quorum: not blocked"
    );
    demoted.set_roles("- primary -");
    let (promoted, _) = demoted.simulate(&dir, "promoted.xml", false);
    assert_eq!(
        promoted.locate(WRITE_BLOCK),
        nodes("node3"),
        "then promoted node2: node1 and node2 writable"
    );
}

#[test]
fn haproxy_example_config_is_valid() {
    run(Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(snippet("haproxy.cfg")));
}

#[test]
fn sentinel_example_calls_our_scripts() {
    let conf = std::fs::read_to_string(snippet("sentinel.conf")).unwrap();
    for line in [
        "sentinel client-reconfig-script redis-ha /usr/lib/redis-ha/sentinel-reconfig",
        "sentinel notification-script redis-ha /usr/lib/redis-ha/sentinel-notify",
    ] {
        assert!(
            conf.lines().any(|l| l.trim() == line),
            "sentinel.conf lacks: {line}"
        );
    }
}

#[test]
fn redis_example_is_accepted_by_redis_itself() {
    // A Redis on a socket only, in a scratch directory: it must start with the snippet
    // and report the settings as written.
    let dir = TempDir::new("redis-snippet");
    let sock = dir.join("redis.sock");
    let mut redis = Command::new("redis-server")
        .arg(snippet("redis.conf"))
        .args([
            "--port",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
            "--unixsocket",
        ])
        .arg(&sock)
        .arg("--dir")
        .arg(dir.join(""))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ask = |key: &str| {
        Command::new("redis-cli")
            .arg("-s")
            .arg(&sock)
            .args(["CONFIG", "GET", key])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let start = std::time::Instant::now();
    while !sock.exists() && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got = (ask("min-replicas-to-write"), ask("min-replicas-max-lag"));
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(got.0, "min-replicas-to-write\n1\n");
    assert_eq!(got.1, "min-replicas-max-lag\n10\n");
}
