//! The failover drills: a real 3-node cluster (tests/cluster/cluster.sh), ten failures
//! driven through it (kills, a switchover, restarts, partitions, quorum loss, standby)
//! while clients write, read and probe through HAProxy, each drill printing a merged
//! timeline and asserting correctness (never timing, except where a bound is the
//! requirement: the periodic sync's 10 s of drill 5, the isolation guard's 2 s of drills
//! 7, 9 and 10). Run as root: `cargo test --release --test drills`; `DRILLS=1,3` picks
//! drills, `DEMO=1` is `make demo` (`KEEP=1` leaves the cluster up). `BENCH=failover` is
//! `make bench-failover` instead (`ROUNDS=10`, `VERBOSE=1` prints every round's timeline),
//! `BENCH=chaos` is `make chaos` (`CHAOS_SECONDS=600`, `SEED=`; drill 12 is its short run).

mod bench_failover;
mod bench_switchover;
mod bench_table;
mod chaos;
mod clients;
mod cluster;
mod drill_crash_node;
mod drill_helper_down;
mod drill_kill_redis;
mod drill_pacemaker_restart;
mod drill_partition_heal;
mod drill_partition_primary;
mod drill_quorum_loss;
mod drill_rejoin;
mod drill_standby;
mod drill_switchover;
mod drill_switchover_hard;
mod netns;
mod resp;
mod timeline;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use cluster::Cluster;

/// What one drill leaves behind for the next (they share one cluster).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// A node whose Redis drill 1 killed and nobody restarted yet.
    pub(crate) killed_redis: Option<usize>,
    /// The old primary drill 7 cut off from the others; drill 8 heals the cut.
    pub(crate) cut_primary: Option<usize>,
}

type Drill = fn(&Cluster, &mut Shared) -> Result<(), String>;

/// Drills only `DRILLS=` runs, each with the reason it is not in the default run (and so
/// not in CI). None today.
const NOT_BY_DEFAULT: [u8; 0] = [];

/// The run order: 3 restarts what 1 killed, 8 heals what 7 cut, 12 leaves the cluster
/// converged for 4, which is destructive so it goes last.
const ORDER: [(u8, &str, Drill); 12] = [
    (
        1,
        "SIGKILL the primary's Redis under writes",
        drill_kill_redis::run,
    ),
    (
        3,
        "restart the killed Redis: no stale reads",
        drill_rejoin::run,
    ),
    (
        2,
        "planned switchover: redis-ha switchover loses nothing, never two nodes on 6381",
        drill_switchover::run,
    ),
    (
        11,
        "redis-ha switchover with a lagging target, and one that cannot finish",
        drill_switchover_hard::run,
    ),
    (
        6,
        "restart Pacemaker on a replica: no write routed to it",
        drill_pacemaker_restart::run,
    ),
    (
        10,
        "standby and clean Pacemaker shutdown of a replica: its ports stay refused",
        drill_standby::run,
    ),
    (
        9,
        "quorum loss of a replica under each no-quorum-policy: its ports stay refused",
        drill_quorum_loss::run,
    ),
    (
        7,
        "cut the primary off: it refuses writes within 2 s, the majority fails over",
        drill_partition_primary::run,
    ),
    (
        8,
        "heal the partition: the old primary rejoins, no stale reads",
        drill_partition_heal::run,
    ),
    (
        5,
        "failover while Sentinel's scripts fail: the periodic sync heals",
        drill_helper_down::run,
    ),
    (
        12,
        "chaos, fixed seed: five random faults, the invariants after each",
        chaos::drill,
    ),
    (
        4,
        "crash the primary node: the survivors converge",
        drill_crash_node::run,
    ),
];

const ALL: usize = ORDER.len();

fn main() {
    // libtest's arguments (`-- --test-threads=4`, `--nocapture`) are not ours: ignored.
    std::process::exit(run());
}

fn run() -> i32 {
    if !nix::unistd::geteuid().is_root() {
        println!("drills: skipped, they need root (network namespaces, Pacemaker, iptables)");
        println!("\ntest result: ok. 0 passed; 0 failed; 0 ignored; {ALL} filtered out");
        return 0;
    }
    let demo = env_flag("DEMO");
    let keep = env_flag("KEEP");
    if let Ok(name) = std::env::var("BENCH") {
        return bench(&name, keep);
    }
    let wanted = match std::env::var("DRILLS") {
        _ if demo => vec![1],
        Ok(list) if !list.trim().is_empty() => match parse_list(&list) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("drills: DRILLS={list:?}: {e}");
                return 2;
            }
        },
        _ => ORDER
            .iter()
            .map(|d| d.0)
            .filter(|n| !NOT_BY_DEFAULT.contains(n))
            .collect(),
    };
    let mut wanted = wanted;
    if wanted.contains(&1) && !wanted.contains(&3) && wanted.iter().any(|&n| n != 1) {
        println!(
            "drills: 3 added: it restarts the Redis that drill 1 kills, which the later drills need"
        );
        wanted.push(3);
    }
    if wanted.contains(&7) && !wanted.contains(&8) {
        println!("drills: 8 added: it heals the partition that drill 7 leaves in place");
        wanted.push(8);
    }
    wanted.sort();
    wanted.dedup();
    // A crashed or cut-off node is seen lost after about 2.2 x Corosync's token.
    let short_token = wanted.iter().any(|n| [4, 7, 8, 9, 12].contains(n));
    let started = Instant::now();
    let cluster = match Cluster::up(short_token, keep) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drills: the cluster did not come up: {e}");
            println!("\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 filtered out");
            return 1;
        }
    };
    if demo {
        println!("\n=== redis-ha status (node1)");
        print!("{}", cluster.status_screen());
    }
    let mut shared = Shared::default();
    let (mut passed, mut failed) = (0, Vec::new());
    for (n, title, drill) in ORDER {
        if !wanted.contains(&n) {
            continue;
        }
        println!("\n=== drill {n}: {title}");
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| drill(&cluster, &mut shared)))
            .unwrap_or_else(|p| Err(panic_text(&p)));
        match result {
            Ok(()) => {
                passed += 1;
                println!("drill {n} ... ok ({:.1} s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                println!(
                    "drill {n} ... FAILED ({:.1} s)\n{e}",
                    t.elapsed().as_secs_f64()
                );
                failed.push(n);
            }
        }
    }
    if keep {
        println!("\nKEEP=1: the cluster stays up. Look inside with:");
        cluster.print_how_to_look();
    }
    drop(cluster);
    println!("\ndrills: {:.1} s in all", started.elapsed().as_secs_f64());
    if failed.is_empty() {
        println!(
            "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; {} filtered out",
            ALL - wanted.len()
        );
        0
    } else {
        println!("\nfailed drills: {failed:?}");
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed; 0 ignored; {} filtered out",
            failed.len(),
            ALL - wanted.len()
        );
        1
    }
}

/// `BENCH=failover`, `switchover` or `chaos`: a benchmark (or the chaos run) on a
/// cluster of its own, no drill.
fn bench(name: &str, keep: bool) -> i32 {
    type Bench = Box<dyn Fn(&Cluster) -> Result<(), String>>;
    let rounded = |f: fn(&Cluster, usize, bool) -> Result<(), String>| -> Result<Bench, i32> {
        let rounds = match std::env::var("ROUNDS") {
            Err(_) => 10,
            Ok(r) => match r.trim().parse::<usize>() {
                Ok(n @ 1..=100) => n,
                _ => {
                    eprintln!("drills: ROUNDS={r:?}: expected a number of rounds from 1 to 100");
                    return Err(2);
                }
            },
        };
        let verbose = env_flag("VERBOSE");
        Ok(Box::new(move |c: &Cluster| f(c, rounds, verbose)))
    };
    // Chaos cuts nodes off: Corosync's short token, as drills 7-9.
    let (short_token, bench): (bool, Bench) = match name {
        "failover" => match rounded(bench_failover::run) {
            Ok(b) => (false, b),
            Err(code) => return code,
        },
        "switchover" => match rounded(bench_switchover::run) {
            Ok(b) => (false, b),
            Err(code) => return code,
        },
        "chaos" => {
            let verbose = env_flag("VERBOSE");
            (true, Box::new(move |c: &Cluster| chaos::bench(c, verbose)))
        }
        _ => {
            eprintln!("drills: BENCH={name:?}: the benchmarks are failover, switchover and chaos");
            return 2;
        }
    };
    let started = Instant::now();
    let cluster = match Cluster::up(short_token, keep) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench-{name}: the cluster did not come up: {e}");
            return 1;
        }
    };
    let result = bench(&cluster);
    if keep {
        println!("\nKEEP=1: the cluster stays up. Look inside with:");
        cluster.print_how_to_look();
    }
    drop(cluster);
    println!(
        "\nbench-{name}: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    match result {
        Ok(()) => 0,
        Err(e) => {
            println!("bench-{name} FAILED: {e}");
            1
        }
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn parse_list(list: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<u8>() {
            Ok(n) if ORDER.iter().any(|(d, _, _)| *d == n) => v.push(n),
            _ => {
                return Err(format!(
                    "{item:?} is not a drill (1 to {ALL}, comma-separated)"
                ));
            }
        }
    }
    Ok(v)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .map_or("panicked".to_string(), |s| format!("panicked: {s}"))
}
