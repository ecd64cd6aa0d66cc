//! Drill 9: quorum loss of a replica, under each `no-quorum-policy` (stop, freeze,
//! ignore). The replica is cut off from both other nodes (the client still reaches it)
//! until its partition has no quorum (and, under `stop`, until Pacemaker there stopped its
//! block clones: the case that opens its ports without the isolation guard), 3 s more,
//! then healed. Its 6381, 6380 and the primary's 6381 are probed every 20 ms: the
//! replica's 6381 never accepts, its 6380 refuses from 2 s after the cut until the heal,
//! and the primary's 6381 always accepts while a writer through HAProxy never waits more
//! than 1 s for an ack. The policy of cluster-properties.crm is restored at the end.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    NodePort, Outcome, Records, Watchers, describe_open, first_open, longest_ack_gap, open_rounds,
    refused_from, reopened,
};
use crate::cluster::{Cluster, NODES, wait_for};
use crate::drill_kill_redis::finish;
use crate::drill_partition_primary::REFUSE_WITHIN;
use crate::timeline::{Timeline, now_us};

const POLICIES: [&str; 3] = ["stop", "freeze", "ignore"];
/// cluster-properties.crm's value: what the drill puts back when the CIB had none.
const RECOMMENDED: &str = "freeze";
/// The longest the primary may go without acking a write through HAProxy.
const MAX_WRITE_GAP: Duration = Duration::from_secs(1);
/// How long the cut stays once the partition lost quorum (and the blocks went, under stop).
const HOLD: Duration = Duration::from_secs(3);

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let p = c.wait_healthy(&all, Duration::from_secs(90))?;
    let before = c
        .property(p, "no-quorum-policy")
        .unwrap_or_else(|| RECOMMENDED.to_string());
    let mut errors = Vec::new();
    for policy in POLICIES {
        println!("\n  === no-quorum-policy={policy}");
        match one_policy(c, policy) {
            Ok(v) => errors.extend(v.into_iter().map(|e| format!("{policy}: {e}"))),
            Err(e) => {
                errors.push(format!("{policy}: {e}"));
                break;
            }
        }
    }
    // Whatever happened: no cut, the policy as it was, everything agreeing.
    let restored = c.heal().and_then(|()| {
        let p = wait_for("a Sentinel master", Duration::from_secs(60), || {
            c.sentinel_master()
        })?;
        c.set_property(p, "no-quorum-policy", &before)
    });
    match restored {
        Ok(()) => println!("  no-quorum-policy={before} again"),
        Err(e) => errors.push(format!("restoring no-quorum-policy={before}: {e}")),
    }
    if let Err(e) = c.wait_healthy(&all, Duration::from_secs(90)) {
        errors.push(e);
    }
    finish(errors)
}

/// One policy: the violations found, or why the drill could not run.
fn one_policy(c: &Cluster, policy: &str) -> Result<Vec<String>, String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let p = c.wait_healthy(&all, Duration::from_secs(90))?;
    c.set_property(p, "no-quorum-policy", policy)?;
    let p = c.wait_healthy(&all, Duration::from_secs(90))?;
    let r = (1..=NODES).rev().find(|&n| n != p).expect("three nodes");
    let rest: Vec<usize> = all.iter().copied().filter(|&n| n != r).collect();
    let ports = [
        NodePort::new(r, 6381),
        NodePort::new(r, 6380),
        NodePort::new(p, 6381),
    ];
    let [r_w, r_r, p_w] = ports;

    let mut tl = Timeline::new();
    let watchers = Watchers::start(c, &format!("drill9-{policy}:"), &ports);

    let cut = tl.act(&format!(
        "cut node{r} (a replica) from node{} and node{}",
        rest[0], rest[1]
    ));
    let during = c.cut(r, &rest).and_then(|()| {
        tl.act("cut in place (the client still reaches every node)");
        during_cut(c, &mut tl, policy, r)
    });
    let heal = tl.act("heal");
    let healed = c.heal();
    let healthy = healed.and_then(|()| c.wait_healthy(&all, Duration::from_secs(90)));
    let healthy_at = tl.act("healthy again (or the wait ended)");
    let Records {
        attempts, rounds, ..
    } = watchers.stop(&mut tl, c, "clients stopped");

    let (no_quorum, blocks_gone, kept) = during?;
    let mut errors = Vec::new();
    if let Err(e) = healthy {
        errors.push(e);
    }
    let after_cut = |t: i64| format!("{} ms after the cut", (t - cut) / 1000);
    println!("  --- no-quorum-policy={policy}, node{r} cut off");
    println!("  node{r}: no quorum {}", after_cut(no_quorum));
    match blocks_gone {
        Some(t) => println!(
            "  node{r}: Pacemaker stopped its block clones {} (what opens the ports without the guard)",
            after_cut(t)
        ),
        None => println!(
            "  node{r}: Pacemaker {} its WriteBlock through the hold",
            if kept { "kept" } else { "did NOT keep" }
        ),
    }
    let deadline = cut + REFUSE_WITHIN.as_micros() as i64;
    match refused_from(&rounds, r_r, cut, heal) {
        Some(t) => println!("  {r_r} refused {} until the heal", after_cut(t)),
        None => println!("  {r_r} accepted connections until the heal"),
    }
    match (reopened(&rounds, r_r, cut), first_open(&rounds, r_r, heal)) {
        (Some(t), _) => println!(
            "  {r_r} open again {} ms after the heal (healthy after {} ms)",
            (t - heal) / 1000,
            (healthy_at - heal) / 1000
        ),
        (None, Some(_)) => println!("  {r_r} never closed"),
        (None, None) => println!("  {r_r} not open again when the drill ended"),
    }
    let primary_acks = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Ack(p))
        .count();
    let (gap, gap_at) = match (attempts.first(), attempts.last()) {
        (Some(a), Some(b)) => longest_ack_gap(&attempts, p, a.done, b.done),
        _ => (i64::MAX, cut),
    };
    println!(
        "  writes: {} attempts, {primary_acks} acked by node{p}; longest wait for an ack: {} ms (from {:+} ms)",
        attempts.len(),
        gap / 1000,
        tl.ms(gap_at)
    );

    let open_w = open_rounds(&rounds, r_w, i64::MIN, i64::MAX);
    if !open_w.is_empty() {
        errors.push(describe_open(&tl, r_w, &open_w));
    }
    let open_r = open_rounds(&rounds, r_r, deadline, heal);
    if !open_r.is_empty() {
        errors.push(format!(
            "from {} ms after the cut until the heal: {}",
            REFUSE_WITHIN.as_millis(),
            describe_open(&tl, r_r, &open_r)
        ));
    }
    let closed: Vec<_> = rounds.iter().filter(|x| !x.is_open(p_w)).collect();
    if let (Some(a), Some(b)) = (closed.first(), closed.last()) {
        errors.push(format!(
            "{p_w} (the primary) refused in {} probe round(s), from {:+} to {:+} ms",
            closed.len(),
            tl.ms(a.t),
            tl.ms(b.t)
        ));
    }
    if gap > MAX_WRITE_GAP.as_micros() as i64 {
        errors.push(format!(
            "no write acked by node{p} for {} ms from {:+} ms (bound {} ms)",
            gap / 1000,
            tl.ms(gap_at),
            MAX_WRITE_GAP.as_millis()
        ));
    }
    let elsewhere: Vec<_> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ack(n) if n != p))
        .collect();
    if let Some(a) = elsewhere.first() {
        errors.push(format!(
            "{} write(s) acked by a node other than node{p}, the first at {:+} ms ({})",
            elsewhere.len(),
            tl.ms(a.sent),
            a.outcome.kind()
        ));
    }
    Ok(errors)
}

/// While node R is cut off: until its partition has no quorum, under `stop` until its
/// blocks stopped, then `HOLD`. Returns when quorum was lost, when the blocks went, and
/// whether WriteBlock still ran there at the end.
fn during_cut(
    c: &Cluster,
    tl: &mut Timeline,
    policy: &str,
    r: usize,
) -> Result<(i64, Option<i64>, bool), String> {
    let no_quorum = wait_for(
        &format!("node{r}'s partition to lose quorum"),
        Duration::from_secs(60),
        || (c.quorate(r) == Some(false)).then(now_us),
    )?;
    tl.add_at(
        no_quorum,
        "drill",
        &format!("node{r}: no quorum (crm_mon there)"),
    );
    let on_r = || c.blocks(r, "RedisLBWriteBlock-clone").contains(&r);
    let blocks_gone = if policy == "stop" {
        // The case the drill is for: without quorum, Pacemaker stops the blocks.
        let t = wait_for(
            &format!("Pacemaker on node{r} to stop its block clones (no-quorum-policy=stop)"),
            Duration::from_secs(30),
            || (!on_r()).then(now_us),
        )?;
        tl.add_at(
            t,
            "drill",
            &format!("node{r}: RedisLBWriteBlock stopped there"),
        );
        Some(t)
    } else {
        None
    };
    tl.act(&format!("hold the cut for {} s", HOLD.as_secs()));
    std::thread::sleep(HOLD);
    let kept = on_r();
    tl.act(&format!(
        "node{r}: RedisLBWriteBlock {} there (crm_resource --locate on node{r})",
        if kept { "runs" } else { "does not run" }
    ));
    Ok((no_quorum, blocks_gone, kept))
}
