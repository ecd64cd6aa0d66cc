//! `make bench-failover` (`BENCH=failover`): drill 1 and drill 3 as one round (SIGKILL the
//! primary's Redis while a client writes and reads through HAProxy, restart it, wait until
//! everything has settled), ROUNDS times with our setup, then ROUNDS times on the same
//! cluster with HAProxy's checks alone (`cluster.sh strip`). Prints each round's figures
//! and a table of their p50, p95 and max side by side. Figures only: no number fails it.

use std::time::{Duration, Instant};

use crate::bench_table::{Figures, print_table};
use crate::clients::{ReadFigures, Records, Watchers, ack_violations, failed_read_sessions};
use crate::cluster::{Cluster, NODES, retry, write_frontend};
use crate::drill_kill_redis::{WriteReport, wait_new_primary};
use crate::timeline::{Timeline, now_us};

/// The client: a write every 10 ms (the Watchers' writer, a new connection each, so
/// HAProxy routes every write), a read every 50 ms.
const READ_EVERY: Duration = Duration::from_millis(50);
/// Every read asks for this key; each round sets it before the kill, on every node.
const MARKER: &str = "bench:marker";
/// From writes resuming on the new primary to the restart of the old one.
const RESTART_AFTER: Duration = Duration::from_secs(2);
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// As shipped: block clones, Sentinel's scripts, `redis-ha sync --every` and its guard.
    Ours,
    /// None of that: HAProxy's write check (`role:master`) and read check (`PING`) alone.
    HaproxyAlone,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Ours => "ours",
            Setup::HaproxyAlone => "HAProxy alone",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Setup::Ours => "ours",
            Setup::HaproxyAlone => "alone",
        }
    }

    /// Waits until every Redis is up and synced and HAProxy routes to them as it should
    /// (ours: `redis-ha status` agrees too); the primary.
    fn settle(self, c: &Cluster) -> Result<usize, String> {
        let all: Vec<usize> = (1..=NODES).collect();
        match self {
            Setup::Ours => c.wait_healthy(&all, SETTLE_WITHIN),
            Setup::HaproxyAlone => retry("settled", SETTLE_WITHIN, || c.settled_without_us(&all)),
        }
    }
}

/// The whole benchmark; the table is printed also when a round failed (with the rounds
/// measured until then).
pub(crate) fn run(c: &Cluster, rounds: usize, verbose: bool) -> Result<(), String> {
    let (mut ours, mut alone) = (Vec::new(), Vec::new());
    let result = (|| {
        for n in 1..=rounds {
            ours.push(round(c, Setup::Ours, n, verbose)?);
        }
        println!("\n=== cluster.sh strip: HAProxy's checks alone from here on");
        c.strip()?;
        for n in 1..=rounds {
            alone.push(round(c, Setup::HaproxyAlone, n, verbose)?);
        }
        Ok(())
    })();
    print_table(&ours, &alone);
    result
}

/// One round; prints its figures in a line.
fn round(c: &Cluster, setup: Setup, n: usize, verbose: bool) -> Result<Figures, String> {
    let started = Instant::now();
    let all: Vec<usize> = (1..=NODES).collect();
    println!("\n=== {} round {n}", setup.name());
    let old = setup.settle(c)?;
    let marker = format!("{}-{n}-{}", setup.tag(), now_us());
    c.set_replicated(write_frontend(), MARKER, &marker, NODES - 1)?;
    let prefix = format!("bench-{}-{n}:", setup.tag());

    let mut tl = Timeline::new();
    let watchers = Watchers::start_reading(c, &prefix, (MARKER, &marker), READ_EVERY);
    let kill = tl.act(&format!("SIGKILL node{old}'s redis-server"));
    let driven = (|| {
        c.kill_redis(old)?;
        let new = wait_new_primary(c, old)?;
        tl.act(&format!("HAProxy sends writes to node{new}"));
        std::thread::sleep(RESTART_AFTER);
        let restart = tl.act(&format!("start node{old}'s redis-server again"));
        c.start_redis(old)?;
        let last = setup.settle(c)?;
        tl.act("settled");
        if last != new {
            return Err(format!(
                "a second failover: node{last} is the primary, not node{new}"
            ));
        }
        // Reads for the returning node too, now that HAProxy counts it in.
        std::thread::sleep(Duration::from_secs(1));
        Ok((new, restart))
    })();
    let Records {
        attempts,
        reads,
        samples,
        ..
    } = watchers.collect(&mut tl, c, "clients stopped");
    failed_read_sessions(&mut tl, c, &reads);
    if verbose || driven.is_err() {
        tl.print();
    }
    let (new, restart) = driven?;
    let ours_ran = our_lines(&tl);
    if setup == Setup::HaproxyAlone && ours_ran > 0 {
        return Err(format!(
            "HAProxy alone, yet {ours_ran} log line(s) of our scripts, sync or agents"
        ));
    }

    let writes = WriteReport::of(&prefix, &attempts, kill, new)?;
    let master = tl.master_mode(kill, new);
    let read = ReadFigures::of(&reads, &marker, (old, restart), master.map(|t| (new, t)));
    let switch = tl.first_switch_master(kill, &all);
    let first_write = writes.first_after.as_ref().map(|a| a.done);
    let f = Figures {
        kill_to_switch: switch.map(|s| s - kill),
        kill_to_master: master.map(|m| m - kill),
        master_to_write: master.zip(first_write).map(|(m, w)| w - m),
        write_gap: match (&writes.last_before, &writes.first_after) {
            (Some(b), Some(a)) => Some(a.done - b.done),
            _ => None,
        },
        switch_to_write: switch.zip(first_write).map(|(s, w)| w - s),
        read_gap: read.longest_gap.0,
        failed_reads: read.failed,
        failed_at_promotion: read.failed_at_promotion,
        lost: writes.lost.len(),
        non_primary_acks: ack_violations(&attempts, &samples).len(),
        stale_reads: read.stale,
        acked: writes.acked,
        reads: read.total,
    };
    let ms = |t: Option<i64>| t.map_or("-".to_string(), |t| format!("{}", t / 1000));
    println!(
        "  node{old} killed, node{new} primary; kill -> +switch-master {} ms; write gap {} ms; \
         +switch-master -> write {} ms; kill -> MASTER MODE {} ms, then write {} ms; \
         read gap {} ms (from {:+} ms), {} of {} reads failed ({} at the promotion); \
         {} writes acked, {} lost, {} by a non-primary; {} stale reads from node{old} ({:.0} s)",
        ms(f.kill_to_switch),
        ms(f.write_gap),
        ms(f.switch_to_write),
        ms(f.kill_to_master),
        ms(f.master_to_write),
        f.read_gap / 1000,
        tl.ms(read.longest_gap.1),
        f.failed_reads,
        f.reads,
        f.failed_at_promotion,
        f.acked,
        f.lost,
        f.non_primary_acks,
        f.stale_reads,
        started.elapsed().as_secs_f64()
    );
    Ok(f)
}

/// Lines in the round's timeline from our programs: Sentinel's scripts, the periodic
/// sync, the block agents (every node log line that is not Sentinel's or Redis's own).
fn our_lines(tl: &Timeline) -> usize {
    tl.events()
        .iter()
        .filter(|e| {
            e.who.starts_with("node") && !e.who.ends_with(" sentinel") && !e.who.ends_with(" redis")
        })
        .count()
}
