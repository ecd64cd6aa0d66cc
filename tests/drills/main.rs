//! The failover drills: a real 3-node cluster (tests/cluster/cluster.sh), six failures
//! driven through it while clients write, read and probe through HAProxy, each drill
//! printing a merged timeline and asserting correctness (never timing, except the
//! periodic sync's bound of drill 5). Run as root: `cargo test --release --test drills`;
//! `DRILLS=1,3` picks drills, `DEMO=1` is `make demo` (`KEEP=1` leaves the cluster up).

mod clients;
mod cluster;
mod drill_crash_node;
mod drill_helper_down;
mod drill_kill_redis;
mod drill_pacemaker_restart;
mod drill_rejoin;
mod drill_switchover;
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
}

type Drill = fn(&Cluster, &mut Shared) -> Result<(), String>;

/// The run order: 3 restarts what 1 killed, 4 is destructive so it goes last.
const ORDER: [(u8, &str, Drill); 6] = [
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
        "planned switchover: never two nodes on 6381",
        drill_switchover::run,
    ),
    (
        6,
        "restart Pacemaker on a replica: no write routed to it",
        drill_pacemaker_restart::run,
    ),
    (
        5,
        "failover while Sentinel's scripts fail: the periodic sync heals",
        drill_helper_down::run,
    ),
    (
        4,
        "crash the primary node: the survivors converge",
        drill_crash_node::run,
    ),
];

fn main() {
    // libtest's arguments (`-- --test-threads=4`, `--nocapture`) are not ours: ignored.
    std::process::exit(run());
}

fn run() -> i32 {
    if !nix::unistd::geteuid().is_root() {
        println!("drills: skipped, they need root (network namespaces, Pacemaker, iptables)");
        println!("\ntest result: ok. 0 passed; 0 failed; 0 ignored; 6 filtered out");
        return 0;
    }
    let demo = env_flag("DEMO");
    let keep = env_flag("KEEP");
    let wanted = match std::env::var("DRILLS") {
        _ if demo => vec![1],
        Ok(list) if !list.trim().is_empty() => match parse_list(&list) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("drills: DRILLS={list:?}: {e}");
                return 2;
            }
        },
        _ => vec![1, 2, 3, 4, 5, 6],
    };
    let mut wanted = wanted;
    if wanted.contains(&1)
        && !wanted.contains(&3)
        && wanted.iter().any(|n| [2, 4, 5, 6].contains(n))
    {
        println!(
            "drills: 3 added: it restarts the Redis that drill 1 kills, which the later drills need"
        );
        wanted.push(3);
    }
    let started = Instant::now();
    let cluster = match Cluster::up(wanted.contains(&4), keep) {
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
            6 - wanted.len()
        );
        0
    } else {
        println!("\nfailed drills: {failed:?}");
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed; 0 ignored; {} filtered out",
            failed.len(),
            6 - wanted.len()
        );
        1
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn parse_list(list: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<u8>() {
            Ok(n @ 1..=6) => v.push(n),
            _ => return Err(format!("{item:?} is not a drill (1 to 6, comma-separated)")),
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
