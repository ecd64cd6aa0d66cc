//! `make bench-switchover`: planned switchovers on the tests/cluster cluster, a plain
//! `SENTINEL FAILOVER` and `redis-ha switchover` in turn (drill 2's rounds, each from a
//! healthy cluster to a healthy cluster), then their figures side by side.

use crate::bench_table::print_columns;
use crate::cluster::Cluster;
use crate::drill_switchover::{How, Round, round};

/// The table's rows, and each round's figure for them.
const LABELS: [&str; 6] = [
    "total write gap (ms)",
    "acknowledged writes lost",
    "stale reads",
    "6381 probes with two nodes open",
    "failed reads",
    "longest time without a read answered (ms)",
];

fn row(r: &Round) -> Vec<Option<f64>> {
    vec![
        r.write_gap_ms.map(|ms| ms as f64),
        Some(r.lost as f64),
        Some(r.stale as f64),
        Some(r.two_open as f64),
        Some(r.failed_reads as f64),
        Some(r.longest_read_gap_ms as f64),
    ]
}

/// The whole benchmark; the table is printed also when a round failed (with the rounds
/// measured until then).
pub(crate) fn run(c: &Cluster, rounds: usize, verbose: bool) -> Result<(), String> {
    let (mut plain, mut ours) = (Vec::new(), Vec::new());
    let result = (|| {
        for n in 1..=rounds {
            for (how, into) in [
                (How::SentinelFailover, &mut plain),
                (How::Switchover, &mut ours),
            ] {
                println!("\n=== {} round {n}", how.name());
                let r = round(c, how, &format!("bench-sw-{n}-{}:", into.len()), verbose)?;
                println!(
                    "  node{} -> node{} (exit {}): write gap {} ms; {} writes acked, {} lost; {} stale reads; {} probes with two nodes open; {} failed reads, longest without one {} ms",
                    r.old,
                    r.new,
                    r.exit,
                    r.write_gap_ms.map_or("-".into(), |g| g.to_string()),
                    r.acked,
                    r.lost,
                    r.stale,
                    r.two_open,
                    r.failed_reads,
                    r.longest_read_gap_ms
                );
                into.push(row(&r));
            }
        }
        Ok(())
    })();
    print_columns(
        "per switchover",
        &LABELS,
        ("SENTINEL FAILOVER", &plain),
        ("redis-ha switchover", &ours),
    );
    result
}
