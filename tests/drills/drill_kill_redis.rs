//! Drill 1: SIGKILL the primary's Redis while a client writes through HAProxy every
//! 10 ms and every node's read port is probed every 20 ms. No write may be acknowledged
//! by a node that was not the primary at that moment. The promoted node may not refuse
//! reads from the first `+sdown` of the dead master to the end, the other survivor not
//! until a majority of the Sentinels see the master down (the replicas' data is the
//! newest there is until one of them may take writes: the sync may foresee which from
//! then, and refuses the other's reads until it resyncs from it), both at most until the
//! read bound. Reported: the write gap and the
//! acknowledged writes lost (async replication may lose the last few acks before the
//! kill: reported, not failed).

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    Attempt, NodePort, Outcome, RoleSampler, ack_violations, describe_refused, haproxy_changes,
    probe_changes, promotion_violations, refused_rounds, role_changes, start_haproxy_watch,
    start_prober, start_writer, writer_changes,
};
use crate::cluster::{Cluster, NODES, redis_addr, wait_for};
use crate::netns::in_client;
use crate::resp::{Conn, Reply};
use crate::timeline::Timeline;

const PREFIX: &str = "drill1:";

pub(crate) fn run(c: &Cluster, shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let primary = c.wait_healthy(&all, Duration::from_secs(90))?;
    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let reads = NodePort::every_node(READ_PORT);
    let prober = start_prober(reads.clone());
    let writer = start_writer(PREFIX, false);
    std::thread::sleep(Duration::from_secs(1));

    let kill = tl.act(&format!("SIGKILL node{primary}'s redis-server"));
    c.kill_redis(primary)?;
    shared.killed_redis = Some(primary);
    // Writes resume on another node; then the roles settle.
    let resumed = wait_new_primary(c, primary);
    std::thread::sleep(Duration::from_secs(2));
    let attempts = writer.stop();
    let rounds = prober.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    let new = resumed?;
    tl.act(&format!(
        "writer stopped; the Sentinels' master is node{new}"
    ));

    writer_changes(&mut tl, "writer", &attempts);
    probe_changes(&mut tl, &rounds, &reads);
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();

    let report = WriteReport::of(PREFIX, &attempts, kill, new)?;
    report.print(&tl);
    let mut errors = ack_violations(&attempts, &samples);
    errors.extend(promotion_violations(tl.events(), &samples));
    let all: Vec<usize> = (1..=NODES).collect();
    match tl.first_master_sdown(kill, &all) {
        Some(sdown) => {
            let survivors = all.iter().filter(|&&n| n != primary);
            let foreseeable = tl.majority_master_sdown(kill, &all);
            for &n in survivors {
                let p = NodePort::new(n, READ_PORT);
                let until = match foreseeable {
                    Some(t) if n != new => t.min(kill + READ_BOUND_US),
                    _ => kill + READ_BOUND_US,
                };
                let refused = refused_rounds(&rounds, p, sdown, until);
                if !refused.is_empty() {
                    errors.push(format!(
                        "{} after the master's +sdown (before {:+} ms: the read bound, or for \
                         a replica not promoted a majority's +sdown)",
                        describe_refused(&tl, p, &refused),
                        tl.ms(until)
                    ));
                }
            }
        }
        None => errors.push("no +sdown of the master after the kill".into()),
    }
    if report.first_after.is_none() {
        errors.push(format!("no write was acked by node{new} after the kill"));
    }
    // The end state: the new primary alone takes writes, the dead Redis is `fail`.
    let settled = wait_for("redis_role to follow", Duration::from_secs(30), || {
        let r: Vec<Option<String>> = (1..=NODES).map(|n| c.role_attr(new, n)).collect();
        let ok = (1..=NODES).all(|n| {
            let want = if n == new {
                "primary"
            } else if n == primary {
                "fail"
            } else {
                "replica"
            };
            r[n - 1].as_deref() == Some(want)
        });
        ok.then_some(())
    });
    if let Err(e) = settled {
        errors.push(e);
    }
    finish(errors)
}

/// The public read port.
const READ_PORT: u16 = 6380;

/// How long a replica of a lost master keeps its reads by default (`read_max_stale_ms =
/// auto`): the cluster's down-after-milliseconds (2000) + twice its failover-timeout
/// (10000: Sentinel's retry of a split election) + 5 s, counted from the kill (when its
/// link went down). A failover that takes longer ends the reads there, as it must.
const READ_BOUND_US: i64 = 27_000_000;

/// The Sentinels name another master and HAProxy sends writes to it.
pub(crate) fn wait_new_primary(c: &Cluster, old: usize) -> Result<usize, String> {
    let new = wait_for(
        "the Sentinels to name a new master",
        Duration::from_secs(60),
        || c.sentinel_master().filter(|&m| m != old),
    )?;
    wait_writes_to(c, new)?;
    Ok(new)
}

/// HAProxy's write backend has node N up.
pub(crate) fn wait_writes_to(c: &Cluster, n: usize) -> Result<(), String> {
    wait_up(c, "redis-write", n, Duration::from_secs(60))
}

/// Waits until HAProxy's `backend` has node `n` up.
pub(crate) fn wait_up(
    c: &Cluster,
    backend: &str,
    n: usize,
    within: Duration,
) -> Result<(), String> {
    let up = format!("{backend}/node{n}");
    wait_for(&format!("HAProxy: {up} UP"), within, || {
        (c.haproxy().get(&up).map(String::as_str) == Some("UP")).then_some(())
    })
}

pub(crate) fn finish(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors
            .iter()
            .map(|e| format!("  VIOLATION: {e}"))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// What the writer saw around a failure at `t_fail`.
pub(crate) struct WriteReport {
    pub(crate) acked: usize,
    pub(crate) failed: usize,
    pub(crate) last_before: Option<Attempt>,
    pub(crate) first_after: Option<Attempt>,
    pub(crate) lost: Vec<u64>,
}

impl WriteReport {
    /// Reads every acked key back from the new primary (straight to its 6379).
    pub(crate) fn of(
        prefix: &str,
        attempts: &[Attempt],
        t_fail: i64,
        new: usize,
    ) -> Result<Self, String> {
        let acked: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Ack(_)))
            .collect();
        let first_after = acked
            .iter()
            .find(|a| a.sent >= t_fail && a.outcome == Outcome::Ack(new))
            .map(|a| (*a).clone());
        // The last ack before writes stopped (it may come just after the kill command).
        let last_before = acked
            .iter()
            .rev()
            .find(|a| first_after.as_ref().is_none_or(|f| a.seq < f.seq))
            .map(|a| (*a).clone());
        let seqs: Vec<u64> = acked.iter().map(|a| a.seq).collect();
        let keys: Vec<String> = acked.iter().map(|a| format!("{prefix}{}", a.seq)).collect();
        let present = in_client(move || read_back(new, &keys))?;
        let lost = seqs
            .iter()
            .zip(present)
            .filter(|(_, p)| !p)
            .map(|(s, _)| *s)
            .collect();
        Ok(WriteReport {
            acked: acked.len(),
            failed: attempts.len() - acked.len(),
            last_before,
            first_after,
            lost,
        })
    }

    pub(crate) fn print(&self, tl: &Timeline) {
        println!("  --- writes");
        println!(
            "  attempts acked: {}, not acked: {}",
            self.acked, self.failed
        );
        match (&self.last_before, &self.first_after) {
            (Some(b), Some(a)) => println!(
                "  write gap: {} ms (last ack before: seq {} at {:+} ms; first ack after: seq {} at {:+} ms, {})",
                (a.done - b.done) / 1000,
                b.seq,
                tl.ms(b.done),
                a.seq,
                tl.ms(a.done),
                a.outcome.kind()
            ),
            _ => println!("  write gap: writes did not resume"),
        }
        println!(
            "  acknowledged writes lost: {}{}",
            self.lost.len(),
            if self.lost.is_empty() {
                String::new()
            } else {
                format!(" (seq {:?})", self.lost)
            }
        );
    }
}

/// Which of `keys` exist on node N's Redis (MGET in batches).
pub(crate) fn read_back(n: usize, keys: &[String]) -> Result<Vec<bool>, String> {
    let mut conn = Conn::connect(redis_addr(n), Duration::from_secs(2))
        .map_err(|e| format!("node{n} redis: {e}"))?;
    let mut present = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut args = vec!["MGET"];
        args.extend(chunk.iter().map(String::as_str));
        let reply = conn
            .cmd(&args)
            .map_err(|e| format!("MGET on node{n}: {e}"))?;
        let items = reply.items();
        if items.len() != chunk.len() {
            return Err(format!("MGET on node{n}: {reply:?}"));
        }
        present.extend(items.iter().map(|r| *r != Reply::Bulk(None)));
    }
    Ok(present)
}
