//! The real `Pacemaker` (what the Sentinel helper reads and writes) through the hidden
//! `redis-ha cluster-debug`, on CIB files emulating a cluster: exit 0 done, 1 transient
//! (retry), 2 permanent (give up).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixture::cib_cluster::CibCluster;
use crate::util::{Run, TempDir, bin, run, run_ok};

const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// `redis-ha cluster-debug ARGS` on `cluster`.
fn debug(cluster: &CibCluster, args: &[&str]) -> Run {
    run(Command::new(bin())
        .arg("cluster-debug")
        .args(args)
        .envs(cluster.env()))
}

/// `redis-ha cluster-debug ARGS` with only the given environment (and PATH unless given).
fn debug_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.arg("cluster-debug").args(args).env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// Nodes where `cluster-debug write-block` says the write block is active.
fn write_block_nodes(cluster: &CibCluster) -> BTreeSet<String> {
    NODES
        .iter()
        .filter(|node| {
            let out = debug(cluster, &["write-block", node]).expect(0);
            match out.stdout.as_str() {
                "active\n" => true,
                "inactive\n" => false,
                _ => panic!("unexpected output\n{out}"),
            }
        })
        .map(|n| n.to_string())
        .collect()
}

fn set(names: &str) -> BTreeSet<String> {
    names.split_whitespace().map(String::from).collect()
}

#[test]
fn state_reads_quorum_and_every_nodes_role() {
    let c = CibCluster::new(&NODES);
    c.set_role("node1", Some("primary"));
    c.set_role("node2", Some("replica"));
    let out = debug(&c, &["state"]).expect(0);
    assert_eq!(
        out.stdout,
        "quorate yes\nnode1 primary\nnode2 replica\nnode3 -\n"
    );
    c.set_quorum(false);
    let out = debug(&c, &["state"]).expect(0);
    assert_eq!(
        out.stdout,
        "quorate no\nnode1 primary\nnode2 replica\nnode3 -\n"
    );
}

/// `cibadmin --empty` writes no have-quorum; Pacemaker's scheduler then has no quorum.
#[test]
fn a_cib_without_have_quorum_is_not_quorate() {
    let dir = TempDir::new("no-quorum-attr");
    let cib = dir.join("cib.xml");
    fs::write(&cib, run_ok(Command::new("cibadmin").arg("--empty"))).unwrap();
    let out = debug_env(&["state"], &[("CIB_file", cib.to_str().unwrap())]).expect(0);
    assert_eq!(out.stdout, "quorate no\n");
}

#[test]
fn set_role_writes_a_permanent_attribute() {
    let c = CibCluster::new(&NODES);
    let out = debug(&c, &["set-role", "node2", "replica"]).expect(0);
    assert_eq!(out.stdout, "node2 replica\n");
    let query = |lifetime: &str| {
        run(c.cmd("crm_attribute").args([
            "--node",
            "node2",
            "--name",
            "redis_role",
            "--query",
            "--quiet",
            "--lifetime",
            lifetime,
        ]))
    };
    assert_eq!(query("forever").expect(0).stdout, "replica\n");
    // Nothing transient: that would vanish when the node leaves.
    query("reboot").expect(105);
    let roles = c.roles();
    assert_eq!(roles["node2"].as_deref(), Some("replica"));
    assert_eq!(roles["node1"], None);
    // The value is case-folded to our word.
    debug(&c, &["set-role", "node2", "PRIMARY"]).expect(0);
    assert_eq!(query("forever").expect(0).stdout, "primary\n");
}

/// The sync's writes, in one `cibadmin --modify`: an nvpair set by someone else under
/// another id is changed, not doubled; a new one gets `crm_attribute`'s ids, so a later
/// `crm_attribute` changes the same; a node missing from the CIB writes nothing at all.
#[test]
fn one_transaction_writes_where_crm_attribute_would() {
    let c = CibCluster::new(&NODES);
    run_ok(c.cmd("cibadmin").args([
        "--modify",
        "--scope",
        "nodes",
        "--xml-text",
        r#"<nodes><node id="2"><instance_attributes id="by-hand"><nvpair id="by-hand-role" name="redis_role" value="replica"/></instance_attributes></node></nodes>"#,
    ]));
    debug(
        &c,
        &[
            "write",
            "node1:epoch=4",
            "node1=fail",
            "node2=primary",
            "node3=replica",
        ],
    )
    .expect(0);
    let nodes = run_ok(c.cmd("cibadmin").args(["--query", "--scope", "nodes"]));
    for expected in [
        r#"<nvpair id="nodes-1-redis-ha-config-epoch" name="redis-ha-config-epoch" value="4"/>"#,
        r#"<nvpair id="nodes-1-redis_role" name="redis_role" value="fail"/>"#,
        r#"<nvpair id="by-hand-role" name="redis_role" value="primary"/>"#,
        r#"<nvpair id="nodes-3-redis_role" name="redis_role" value="replica"/>"#,
    ] {
        assert!(nodes.contains(expected), "{expected} missing from\n{nodes}");
    }
    assert_eq!(nodes.matches("name=\"redis_role\"").count(), 3, "{nodes}");
    // crm_attribute finds exactly one to change (several would be an error).
    c.set_role("node1", Some("replica"));
    c.set_role("node2", Some("replica"));
    assert_eq!(
        c.roles().into_values().collect::<Vec<_>>(),
        [
            Some("replica".into()),
            Some("replica".into()),
            Some("replica".into())
        ]
    );
    let out = debug(&c, &["write", "node1=fail", "nodeX=primary"]).expect(2);
    assert!(out.stderr.contains("node nodeX is not in the CIB"), "{out}");
    assert_eq!(c.roles()["node1"].as_deref(), Some("replica"));
}

/// The block follows the status the scheduler writes, not the attribute: after each
/// change it moves only once the transition has run.
#[test]
fn write_block_follows_the_snippet_rules_once_the_scheduler_ran() {
    let c = CibCluster::new(&NODES);
    // Every role undefined: blocked everywhere (fail closed).
    assert_eq!(write_block_nodes(&c), set("node1 node2 node3"));
    let table = [
        (
            "primary on node1",
            &[("node1", "primary")][..],
            "node2 node3",
        ),
        (
            "replicas",
            &[("node2", "replica"), ("node3", "replica")][..],
            "node2 node3",
        ),
        (
            "node1 demoted",
            &[("node1", "replica")][..],
            "node1 node2 node3",
        ),
        ("node2 promoted", &[("node2", "primary")][..], "node1 node3"),
        ("node3 failed", &[("node3", "fail")][..], "node1 node3"),
    ];
    for (case, roles, blocked) in table {
        let before = write_block_nodes(&c);
        for (node, role) in roles {
            debug(&c, &["set-role", node, role]).expect(0);
        }
        assert_eq!(
            write_block_nodes(&c),
            before,
            "{case}: moved before the scheduler ran"
        );
        c.settle();
        assert_eq!(write_block_nodes(&c), set(blocked), "{case}");
        assert_eq!(
            c.write_blocks(),
            set(blocked),
            "{case}: crm_resource disagrees"
        );
    }
}

#[test]
fn a_node_not_in_the_cib_is_permanent() {
    let c = CibCluster::new(&NODES);
    let out = debug(&c, &["set-role", "node9", "primary"]).expect(2);
    assert!(
        out.stderr
            .contains("crm_attribute --node node9 --name redis_role --update primary")
            && out.stderr.contains("Could not map name=node9")
            && out.stderr.contains("crm_node --list"),
        "{out}"
    );
    assert_eq!(c.roles().values().flatten().count(), 0);
    // Not running there is an answer, not an error.
    assert_eq!(
        debug(&c, &["write-block", "node9"]).expect(0).stdout,
        "inactive\n"
    );
}

/// cibadmin and friends exit 105 "Could not connect to the CIB: No such device or
/// address" when CIB_file names no file.
#[test]
fn a_missing_cib_file_is_permanent() {
    let dir = TempDir::new("no-cib");
    let missing = dir.join("missing.xml");
    let env = [("CIB_file", missing.to_str().unwrap())];
    for args in [
        &["state"][..],
        &["set-role", "node1", "primary"],
        &["write-block", "node1"],
    ] {
        let out = debug_env(args, &env).expect(2);
        assert!(
            out.stderr.contains("exit 105") && out.stderr.contains("does not exist"),
            "{out}"
        );
    }
    assert!(!missing.exists(), "a tool created the CIB file");
}

/// What another tool rewriting the file in place leaves for a moment (crm_attribute
/// truncates, then writes), cut inside the configuration: exit 78, worth a retry. (Cut
/// inside the status section, libxml2's recovery makes it load without error and read
/// wrong: the fixture's lock is what keeps tests from seeing that.)
#[test]
fn a_cib_file_cut_short_is_transient() {
    let c = CibCluster::new(&NODES);
    let dir = TempDir::new("cut-cib");
    let cut = dir.join("cut.xml");
    let whole = fs::read_to_string(c.path()).unwrap();
    let inside_resources = whole.find("<resources>").unwrap() + 200;
    fs::write(&cut, &whole[..inside_resources]).unwrap();
    let out = debug_env(&["state"], &[("CIB_file", cut.to_str().unwrap())]).expect(1);
    assert!(out.stderr.contains("exit 78"), "{out}");
}

/// Without CIB_file and without Pacemaker running, the tools are "not connected" (102).
#[test]
fn no_running_cluster_is_transient() {
    let out = debug_env(&["state"], &[]);
    if out.code == 0 {
        eprintln!("a live cluster answers here: skipping\n{out}");
        return;
    }
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("exit 102"), "{out}");
    debug_env(&["write-block", "node1"], &[]).expect(1);
}

#[test]
fn a_tool_missing_from_path_is_permanent() {
    let c = CibCluster::new(&NODES);
    let empty = TempDir::new("empty-path");
    let cib = c.path().to_str().unwrap();
    let path = empty.path().to_str().unwrap();
    for (args, tool) in [
        (&["state"][..], "cibadmin"),
        (&["set-role", "node1", "primary"], "crm_attribute"),
        (&["write-block", "node1"], "cibadmin"),
    ] {
        let out = debug_env(args, &[("CIB_file", cib), ("PATH", path)]).expect(2);
        assert!(
            out.stderr.contains(tool) && out.stderr.contains("not found on PATH"),
            "{out}"
        );
    }
}

/// A tool that hangs (a busy cluster) is killed at the deadline, and that is transient.
#[test]
fn a_hung_tool_is_killed_at_the_deadline() {
    let dir = TempDir::new("hung-tool");
    // A duration no other process uses, to find a leftover.
    let marker = "97.531";
    let tool = dir.join("cibadmin");
    fs::write(&tool, format!("#!/bin/sh\nexec sleep {marker}\n")).unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let started = Instant::now();
    let out = debug_env(&["--timeout-ms", "300", "state"], &[("PATH", &path)]).expect(1);
    let took = started.elapsed();
    assert!(out.stderr.contains("no answer within 300ms"), "{out}");
    assert!(took < Duration::from_secs(3), "took {took:?}\n{out}");
    let left = run(Command::new("pgrep").args(["-f", &format!("sleep {marker}")]));
    assert_eq!(left.code, 1, "the hung tool survived\n{left}");
}

/// A transient redis_role overrides the permanent one in Pacemaker's rules: state says so
/// and how to remove it, instead of reporting a role the blocks do not follow.
#[test]
fn a_transient_role_is_refused_with_the_fix() {
    let c = CibCluster::new(&NODES);
    debug(&c, &["set-role", "node1", "replica"]).expect(0);
    let transient = [
        "--node",
        "node1",
        "--name",
        "redis_role",
        "--lifetime",
        "reboot",
    ];
    run_ok(
        c.cmd("crm_attribute")
            .args(transient)
            .args(["--update", "primary"]),
    );
    let out = debug(&c, &["state"]).expect(2);
    let fix = "crm_attribute --node node1 --name redis_role --lifetime reboot --delete";
    assert!(out.stderr.contains(fix), "{out}");
    run_ok(c.cmd("crm_attribute").args(transient).arg("--delete"));
    let out = debug(&c, &["state"]).expect(0);
    assert_eq!(out.stdout, "quorate yes\nnode1 replica\nnode2 -\nnode3 -\n");
}
