//! Drill 7: cut the primary off from both other nodes (`cluster.sh cut`: every packet
//! between them dropped; the client still reaches every node) while a client writes
//! through HAProxy on a new connection every 10 ms. The majority fails over. The old
//! primary, alone, must take no write later than 2 s after the cut (the isolation guard
//! of `redis-ha sync --every`), so every acknowledged write is on the final primary
//! except those the old primary acknowledged within that window (reported). The cut
//! stays in place for drill 8.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    NodePort, Outcome, Records, Watchers, describe_open, open_rounds, promotion_violations,
    refused_from,
};
use crate::cluster::{Cluster, NODES, wait_for};
use crate::drill_kill_redis::{WriteReport, finish};
use crate::timeline::Timeline;

const PREFIX: &str = "drill7:";

/// The requirement: a primary cut off from the others refuses writes within this.
pub(crate) const REFUSE_WITHIN: Duration = Duration::from_secs(2);

pub(crate) fn run(c: &Cluster, shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let majority: Vec<usize> = all.iter().copied().filter(|&n| n != old).collect();
    let mut ports = NodePort::every_node(6381);
    ports.push(NodePort::new(old, 6380));
    let old_w = NodePort::new(old, 6381);

    let mut tl = Timeline::new();
    let watchers = Watchers::start(c, PREFIX, &ports);

    let cut = tl.act(&format!(
        "cut node{old} (the primary) from node{} and node{}",
        majority[0], majority[1]
    ));
    // Set first: whatever happens from here, drill 8 heals.
    shared.cut_primary = Some(old);
    let settled = c.cut(old, &majority).and_then(|()| {
        tl.act("cut in place (the client still reaches every node)");
        wait_majority_settled(c, old, &majority)
    });
    if settled.is_ok() {
        tl.act("the majority settled; writes through HAProxy for 2 s more");
        std::thread::sleep(Duration::from_secs(2));
    }
    let Records {
        attempts,
        rounds,
        samples,
        ..
    } = watchers.stop(&mut tl, c, "clients stopped; the cut stays for drill 8");

    let deadline = cut + REFUSE_WITHIN.as_micros() as i64;
    let mut errors = promotion_violations(tl.events(), &samples);
    let by_old: Vec<_> = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Ack(old))
        .collect();
    let last_ack = by_old.iter().rev().find(|a| a.done >= cut);
    let late: Vec<_> = by_old.iter().filter(|a| a.done > deadline).collect();
    // The majority's first +switch-master (the old primary's Sentinel, alone, never has one).
    let switched = tl.first_switch_master(cut, &majority);
    let after_switch = switched.map(|s| by_old.iter().filter(|a| a.done >= s).count());

    println!("  --- the cut-off primary (node{old})");
    match refused_from(&rounds, old_w, cut, i64::MAX) {
        Some(t) => println!(
            "  {old_w} refused from {} ms after the cut on",
            (t - cut) / 1000
        ),
        None => println!("  {old_w} still accepted connections when the drill ended"),
    }
    match last_ack {
        Some(a) => println!(
            "  last write acked by node{old}: {} ms after the cut (seq {}); {} acked after the cut in all",
            (a.done - cut) / 1000,
            a.seq,
            by_old.iter().filter(|a| a.done >= cut).count()
        ),
        None => println!("  no write acked by node{old} after the cut"),
    }
    match (switched, after_switch) {
        (Some(s), Some(n)) => println!(
            "  acked by node{old} after the majority's first +switch-master ({} ms after the cut): {n}",
            (s - cut) / 1000
        ),
        _ => println!("  no +switch-master in the majority's Sentinel logs"),
    }
    if let (Some(first), Some(last)) = (late.first(), late.last()) {
        errors.push(format!(
            "{} write(s) acked by node{old} later than {} ms after the cut (seq {} at +{} ms to seq {} at +{} ms after it)",
            late.len(),
            REFUSE_WITHIN.as_millis(),
            first.seq,
            (first.done - cut) / 1000,
            last.seq,
            (last.done - cut) / 1000
        ));
    }
    let open = open_rounds(&rounds, old_w, deadline, i64::MAX);
    if !open.is_empty() {
        errors.push(format!(
            "later than {} ms after the cut: {}",
            REFUSE_WITHIN.as_millis(),
            describe_open(&tl, old_w, &open)
        ));
    }

    // The majority's side: every acked write on its primary.
    let new = match settled {
        Ok(new) => new,
        Err(e) => {
            errors.push(e);
            return finish(errors);
        }
    };
    let report = WriteReport::of(PREFIX, &attempts, cut, new)?;
    report.print(&tl);
    // Lost acks: forgiven only when the old primary acked them within the window.
    let (excused, unexcused): (Vec<u64>, Vec<u64>) = report.lost.iter().partition(|&&seq| {
        attempts.iter().any(|a| {
            a.seq == seq && a.outcome == Outcome::Ack(old) && a.done >= cut && a.done <= deadline
        })
    });
    println!(
        "  acked writes lost: {} in all, {} of them acked by node{old} within {} ms of the cut (allowed)",
        report.lost.len(),
        excused.len(),
        REFUSE_WITHIN.as_millis()
    );
    if !unexcused.is_empty() {
        errors.push(format!(
            "{} acknowledged write(s) missing on node{new}, the final primary, not acked by node{old} within {} ms of the cut: seq {}",
            unexcused.len(),
            REFUSE_WITHIN.as_millis(),
            seq_ranges(&unexcused)
        ));
    }
    if report.first_after.is_none() {
        errors.push(format!("no write was acked by node{new} after the cut"));
    }
    finish(errors)
}

/// The majority (the nodes of `majority`, cut off from `old`) has failed over and
/// settled: its Sentinels name a new master, the roles say new primary, other replica,
/// old fail, WriteBlock runs on the other, HAProxy sends writes to the new primary.
pub(crate) fn wait_majority_settled(
    c: &Cluster,
    old: usize,
    majority: &[usize],
) -> Result<usize, String> {
    let new = wait_for(
        "the majority's Sentinels to name a new master",
        Duration::from_secs(60),
        || c.sentinel_master_among(majority).filter(|&m| m != old),
    )?;
    let other = *majority.iter().find(|&&n| n != new).expect("two nodes");
    wait_for(
        &format!("the majority to settle: node{new} primary, node{other} replica, node{old} fail"),
        Duration::from_secs(60),
        || {
            let ok = c.role_attr(new, new).as_deref() == Some("primary")
                && c.role_attr(new, other).as_deref() == Some("replica")
                && c.role_attr(new, old).as_deref() == Some("fail")
                && c.blocks(new, "RedisLBWriteBlock-clone") == vec![other]
                && c.haproxy()
                    .get(&format!("redis-write/node{new}"))
                    .map(String::as_str)
                    == Some("UP");
            ok.then_some(())
        },
    )?;
    Ok(new)
}

/// `301-810, 812, 814` (the first 20 stretches at most): interleaved with another
/// node's acks, the lost seqs of one node are every other number.
pub(crate) fn seq_ranges(seqs: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => runs.push((s, s)),
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .take(20)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let more = runs.len().saturating_sub(20);
    format!(
        "{}{}",
        shown.join(", "),
        if more > 0 {
            format!(", ... ({more} more stretches)")
        } else {
            String::new()
        }
    )
}
