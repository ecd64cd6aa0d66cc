//! Name resolution under a name server that never answers (tests/it/fixture/silent_dns):
//! each program that resolves a name gives it its own timeout, not the resolver's
//! (30 s a try there), and says which name did not resolve in time.

use std::time::{Duration, Instant};

use crate::fixture::canned_sentinel::CannedSentinel;
use crate::fixture::cib_cluster::CibCluster;
use crate::fixture::silent_dns::{HOST_IP, SilentDns};
use crate::util::{TempDir, run};

/// Cluster node names in no `/etc/hosts`: only DNS could resolve them.
const NODES: [&str; 3] = ["rha-dns-node1", "rha-dns-node2", "rha-dns-node3"];

/// The config: the canned Sentinel, a 1 s timeout, no `node` lines (node names are
/// resolved), the guard's record and the hand-off socket in `dir`.
fn config(dir: &TempDir, sentinel: &str) -> std::path::PathBuf {
    let path = dir.join("redis-ha.conf");
    std::fs::write(
        &path,
        format!(
            "master_name = redis-ha\nsentinel = {sentinel}\ntimeout_ms = 1000\n\
             guard_record_file = {}\nsync_socket = {}\n",
            dir.join("guard").display(),
            dir.join("sync.sock").display()
        ),
    )
    .unwrap();
    path
}

/// Without `node` lines the sync, `status` and `switchover` resolve the cluster's node
/// names; a silent name server once held each of them for as long as the resolver
/// waited (here 2 tries of 30 s), the sync with its lock. A lookup cut short is not a
/// name without an address: the sync asks Sentinel to retry (exit 1), naming the names,
/// where it once gave up (exit 2).
#[test]
fn a_silent_name_server_costs_node_name_mapping_the_timeout_not_more() {
    let dns = SilentDns::new("dns-nodes");
    let sentinel = CannedSentinel::start(dns.ns(), HOST_IP, HOST_IP);
    let cib = CibCluster::new(&NODES);
    let dir = TempDir::new("dns-nodes");
    let conf = config(&dir, sentinel.addr());
    // (arguments, exit code, what it says)
    let table: [(&[&str], i32, &str); 3] = [
        (&["status"], 1, "belongs to no cluster node"),
        (
            &["sync", "--dry-run"],
            1,
            "the lookup of rha-dns-node1, rha-dns-node2, rha-dns-node3 did not finish in time",
        ),
        (&["switchover"], 1, "cannot switch over"),
    ];
    for (args, code, says) in table {
        let started = Instant::now();
        let out = run(dns
            .cmd(dir.persona("redis-ha"))
            .args(args)
            .envs(cib.env())
            .env("REDIS_HA_CONFIG", &conf));
        let took = started.elapsed();
        assert_eq!(out.code, code, "{args:?}\n{out}");
        assert!(
            out.stdout.contains(says) || out.stderr.contains(says),
            "{args:?}\n{out}"
        );
        // The names within 1 s, the Sentinel and the Redis replication within 1 s each.
        assert!(
            took < Duration::from_secs(6),
            "{args:?} took {took:?}\n{out}"
        );
    }
}

/// `redis-ha backup` resolves the host name the Sentinels announce for the primary: a
/// silent name server once held it for as long as the resolver waited.
#[test]
fn a_silent_name_server_costs_a_backup_its_timeout_not_more() {
    let dns = SilentDns::new("dns-backup");
    let sentinel = CannedSentinel::start(dns.ns(), HOST_IP, "rha-dns-primary");
    let dir = TempDir::new("dns-backup");
    let conf = config(&dir, sentinel.addr());
    let started = Instant::now();
    let out = run(dns
        .cmd(dir.persona("redis-ha"))
        .args(["backup", "--timeout", "2", "--config"])
        .arg(&conf)
        .arg(dir.path()));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}\n{out}");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("cannot reach rha-dns-primary:6379: rha-dns-primary not resolved within 2s"),
        "{out}"
    );
}
