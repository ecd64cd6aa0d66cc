//! Drill 2: planned switchovers with every node alive, while a client writes through
//! HAProxy every 10 ms (a new connection each time, each write also setting
//! `<prefix>last`), reads `<prefix>last` every 50 ms, and every node's 6381 is probed
//! every 20 ms. First `redis-ha switchover`: no acknowledged write lost, no read older
//! than a write acknowledged 250 ms before (a replica lags by milliseconds), never two
//! nodes open on 6381, reads never stop. Then a plain `SENTINEL FAILOVER`:
//! never two nodes open on 6381; what it loses is reported (`BENCH=switchover` compares
//! the two over many rounds).

use std::time::Duration;

use crate::Shared;
use crate::clients::{NodePort, Records, Watchers, stale_reads};
use crate::cluster::{Cluster, NODES};
use crate::drill_kill_redis::{WriteReport, finish, wait_new_primary};
use crate::timeline::Timeline;

/// How a round moves the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// `redis-ha switchover`, run on the old primary's node.
    Switchover,
    /// `SENTINEL FAILOVER`, asked of node1's Sentinel.
    SentinelFailover,
}

impl How {
    pub(crate) fn name(self) -> &'static str {
        match self {
            How::Switchover => "redis-ha switchover",
            How::SentinelFailover => "SENTINEL FAILOVER",
        }
    }
}

/// A read answered later than this after an acknowledged write, with an older value, is
/// stale: a replica lags by milliseconds; a lost write never arrives.
const STALE_GRACE: Duration = Duration::from_millis(250);
/// Reads stop when this long passes without an answered read (the reader reads every
/// 50 ms; a failover that refuses reads refused them for over a second).
const READS_STOPPED_US: i64 = 1_000_000;

/// What one round measured.
pub(crate) struct Round {
    pub(crate) old: usize,
    pub(crate) new: usize,
    /// The command's exit code (0 for SENTINEL FAILOVER's OK).
    pub(crate) exit: i32,
    /// From the last write acknowledged before to the first by the new primary.
    pub(crate) write_gap_ms: Option<i64>,
    pub(crate) acked: usize,
    pub(crate) lost: usize,
    pub(crate) stale: usize,
    /// Probe rounds that found 6381 open on two nodes or more.
    pub(crate) two_open: usize,
    pub(crate) failed_reads: usize,
    pub(crate) longest_read_gap_ms: i64,
    /// What broke a rule, whichever the setup (for the drill to judge).
    pub(crate) notes: Vec<String>,
}

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let mut errors = Vec::new();
    let r = round(c, How::Switchover, "drill2a:", true)?;
    if r.exit != 0 {
        errors.push(format!("redis-ha switchover exited {}", r.exit));
    }
    for (what, n) in [
        ("acknowledged writes lost", r.lost),
        (
            "reads older than a write acknowledged 250 ms before",
            r.stale,
        ),
    ] {
        if n > 0 {
            errors.push(format!("redis-ha switchover: {n} {what}"));
        }
    }
    if r.longest_read_gap_ms * 1000 >= READS_STOPPED_US {
        errors.push(format!(
            "redis-ha switchover: no read answered for {} ms",
            r.longest_read_gap_ms
        ));
    }
    errors.extend(r.notes);
    let r = round(c, How::SentinelFailover, "drill2b:", true)?;
    errors.extend(r.notes);
    println!(
        "  (SENTINEL FAILOVER alone: {} acknowledged writes lost, {} stale reads)",
        r.lost, r.stale
    );
    finish(errors)
}

/// Until every Sentinel's INFO calls every node but `old` a synced replica (what the
/// switchover checks; up to 10 s behind the replicas' own `ROLE` after a resync).
pub(crate) fn wait_synced_for_sentinels(
    c: &Cluster,
    all: &[usize],
    old: usize,
) -> Result<(), String> {
    let replicas: Vec<usize> = all.iter().copied().filter(|&n| n != old).collect();
    crate::cluster::wait_for(
        "every Sentinel to see the replicas synced",
        Duration::from_secs(30),
        || {
            replicas
                .iter()
                .all(|&n| c.sentinels_see_synced(n))
                .then_some(())
        },
    )
}

/// One switchover from a healthy cluster to a healthy cluster, with everything
/// measured; `verbose` prints its timeline.
pub(crate) fn round(c: &Cluster, how: How, prefix: &str, verbose: bool) -> Result<Round, String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    wait_synced_for_sentinels(c, &all, old)?;
    let mut tl = Timeline::new();
    let ports = NodePort::every_node(6381);
    let w = Watchers::start_all(c, prefix, &ports);
    let t = tl.act(&format!("{} (the primary is node{old})", how.name()));
    let (exit, said) = match how {
        How::Switchover => {
            let node = format!("node{old}");
            let (code, out, err) =
                c.sh_status(&["exec", &node, "redis-ha", "switchover", "--timeout", "30s"]);
            (code, format!("{out}{err}"))
        }
        How::SentinelFailover => match c.sentinel_cmd(1, &["SENTINEL", "FAILOVER", "redis-ha"]) {
            Ok(reply) => (0, format!("{reply:?}")),
            Err(e) => (1, e),
        },
    };
    let moved = wait_new_primary(c, old);
    let healthy = moved
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| c.wait_healthy(&all, Duration::from_secs(90)));
    std::thread::sleep(Duration::from_secs(1));
    let Records {
        attempts,
        rounds,
        reads,
        ..
    } = if verbose {
        w.stop(&mut tl, c, "clients stopped")
    } else {
        w.collect(&mut tl, c, "clients stopped")
    };
    if verbose {
        println!("  --- {} said (exit {exit})", how.name());
        for line in said.lines() {
            println!("  | {line}");
        }
    }
    let new = moved?;
    let mut notes = Vec::new();
    if let Err(e) = healthy {
        notes.push(e);
    }
    let two = crate::clients::two_writable(&rounds, &tl);
    let report = WriteReport::of(prefix, &attempts, t, new)?;
    let stale = stale_reads(&attempts, &reads, STALE_GRACE);
    let answered: Vec<i64> = reads
        .iter()
        .filter(|r| r.answered())
        .map(|r| r.sent)
        .collect();
    let longest_read_gap = answered.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    if verbose {
        report.print(&tl);
        println!(
            "  reads: {} ({} without an answer; longest without one: {} ms); stale: {}",
            reads.len(),
            reads.iter().filter(|r| !r.answered()).count(),
            longest_read_gap / 1000,
            stale.len()
        );
        for s in stale.iter().take(5) {
            println!("    {s}");
        }
        println!("  6381 probes with two nodes open: {}", two.len());
    }
    notes.extend(two.iter().take(5).cloned());
    Ok(Round {
        old,
        new,
        exit,
        write_gap_ms: match (&report.last_before, &report.first_after) {
            (Some(b), Some(a)) => Some((a.done - b.done) / 1000),
            _ => None,
        },
        acked: report.acked,
        lost: report.lost.len(),
        stale: stale.len(),
        two_open: two.len(),
        failed_reads: reads.iter().filter(|r| !r.answered()).count(),
        longest_read_gap_ms: longest_read_gap / 1000,
        notes,
    })
}
