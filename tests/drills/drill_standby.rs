//! Drill 10: what stops a replica's block clones without a failure: standby (until
//! Pacemaker stopped its blocks, 3 s more, then online again) and a clean Pacemaker
//! shutdown (3 s down, then started again). Its 6381 and 6380 are probed every 20 ms: 6381
//! never accepts (the isolation guard keeps it refused when the blocks are gone), 6380
//! refuses from 2 s after Pacemaker is gone until it is started again; a writer through
//! HAProxy keeps getting acks from the primary and never reaches the replica.

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

const HOLD: Duration = Duration::from_secs(3);
/// The longest the primary may go without acking a write through HAProxy.
const MAX_WRITE_GAP: Duration = Duration::from_secs(1);

/// When things happened, for the report.
#[derive(Default)]
struct Moments {
    standby: i64,
    standby_blocks_gone: Option<i64>,
    online: Option<i64>,
    stop: Option<i64>,
    /// pacemakerd gone: the node has no Pacemaker from here...
    stopped: Option<i64>,
    /// ...until here (start-pacemaker issued).
    start: Option<i64>,
    blocks_back: Option<i64>,
}

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let p = c.wait_healthy(&all, Duration::from_secs(90))?;
    let r = (1..=NODES).find(|&n| n != p).expect("three nodes");
    let ports = [NodePort::new(r, 6381), NodePort::new(r, 6380)];
    let [r_w, r_r] = ports;

    let mut tl = Timeline::new();
    let watchers = Watchers::start(c, "drill10:", &ports);
    let mut m = Moments::default();
    let result = drill(c, &mut tl, &mut m, p, r);
    let Records {
        attempts, rounds, ..
    } = watchers.stop(&mut tl, c, "clients stopped");

    let mut errors = Vec::new();
    if let Err(e) = result {
        errors.push(e);
        // Leave no standby behind, whatever failed.
        let _ = c.set_standby(p, r, false);
    }
    let since = |t: Option<i64>, from: Option<i64>| match (t, from) {
        (Some(t), Some(f)) => format!("{} ms", (t - f) / 1000),
        _ => "-".to_string(),
    };
    println!("  --- node{r}");
    println!(
        "  standby: blocks stopped after {}; {r_w} accepted {} probe round(s) while in standby",
        since(m.standby_blocks_gone, Some(m.standby)),
        open_rounds(&rounds, r_w, m.standby, m.online.unwrap_or(i64::MAX)).len()
    );
    println!(
        "  Pacemaker stop: pacemakerd gone after {}; {r_w} accepted {} probe round(s) from the stop until the blocks were back",
        since(m.stopped, m.stop),
        m.stop.map_or(0, |s| open_rounds(
            &rounds,
            r_w,
            s,
            m.blocks_back.unwrap_or(i64::MAX)
        )
        .len())
    );
    if let Some(stopped) = m.stopped {
        let until = m.start.unwrap_or(i64::MAX);
        // From the stop command on: the guard may close it before pacemakerd is gone.
        match refused_from(&rounds, r_r, m.stop.unwrap_or(stopped), until) {
            Some(t) => println!(
                "  {r_r} refused from {:+} ms after pacemakerd was gone until Pacemaker started again",
                (t - stopped) / 1000
            ),
            None => println!("  {r_r} accepted connections until Pacemaker started again"),
        }
        if let Some(s) = m.start {
            match reopened(&rounds, r_r, stopped) {
                Some(t) => println!(
                    "  {r_r} open again {} ms after the start (the blocks back after {})",
                    (t - s) / 1000,
                    since(m.blocks_back, Some(s))
                ),
                None if first_open(&rounds, r_r, stopped).is_some() => {
                    println!("  {r_r} never closed")
                }
                None => println!("  {r_r} not open again when the drill ended"),
            }
        }
        let open_r = open_rounds(
            &rounds,
            r_r,
            stopped + REFUSE_WITHIN.as_micros() as i64,
            until,
        );
        if !open_r.is_empty() {
            errors.push(format!(
                "from {} ms after pacemakerd was gone until it started again: {}",
                REFUSE_WITHIN.as_millis(),
                describe_open(&tl, r_r, &open_r)
            ));
        }
    }
    let open_w = open_rounds(&rounds, r_w, i64::MIN, i64::MAX);
    if !open_w.is_empty() {
        errors.push(describe_open(&tl, r_w, &open_w));
    }

    let (gap, gap_at) = match (attempts.first(), attempts.last()) {
        (Some(a), Some(b)) => longest_ack_gap(&attempts, p, a.done, b.done),
        _ => (i64::MAX, tl.t0),
    };
    let routed: Vec<_> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ack(n) | Outcome::ReadOnly(n) if n == r))
        .collect();
    println!(
        "  writes: {} attempts, {} acked by node{p}, {} routed to node{r}; longest wait for an ack: {} ms (from {:+} ms)",
        attempts.len(),
        attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Ack(p))
            .count(),
        routed.len(),
        gap / 1000,
        tl.ms(gap_at)
    );
    if let Some(a) = routed.first() {
        errors.push(format!(
            "{} write(s) routed to node{r}, the first at {:+} ms ({})",
            routed.len(),
            tl.ms(a.sent),
            a.outcome.kind()
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
    finish(errors)
}

fn drill(
    c: &Cluster,
    tl: &mut Timeline,
    m: &mut Moments,
    p: usize,
    r: usize,
) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let node = format!("node{r}");
    let on_r = |clone: &str| c.blocks(p, clone).contains(&r);

    m.standby = tl.act(&format!(
        "standby {node} (crm_attribute --name standby --update on)"
    ));
    c.set_standby(p, r, true)?;
    let gone = wait_for(
        &format!("Pacemaker to stop the blocks on {node}"),
        Duration::from_secs(30),
        || (!on_r("RedisLBWriteBlock-clone")).then(now_us),
    )?;
    m.standby_blocks_gone = Some(gone);
    tl.add_at(gone, "drill", &format!("{node}: RedisLBWriteBlock stopped"));
    std::thread::sleep(HOLD);
    m.online = Some(tl.act(&format!("{node} online again (standby off)")));
    c.set_standby(p, r, false)?;
    c.wait_healthy(&all, Duration::from_secs(90))?;
    tl.act("healthy");

    m.stop = Some(tl.act(&format!(
        "stop Pacemaker on {node} (SIGTERM pacemakerd: a clean shutdown)"
    )));
    c.sh(&["stop-pacemaker", &node])?;
    m.stopped = Some(tl.act(&format!("{node}: pacemakerd gone")));
    std::thread::sleep(HOLD);
    m.start = Some(tl.act(&format!("start Pacemaker on {node}")));
    c.sh(&["start-pacemaker", &node])?;
    tl.act(&format!("{node}: online again, DC idle"));
    let back = wait_for(
        &format!("RedisLBWriteBlock back on {node}"),
        Duration::from_secs(60),
        || on_r("RedisLBWriteBlock-clone").then(now_us),
    )?;
    m.blocks_back = Some(back);
    tl.add_at(
        back,
        "drill",
        &format!("{node}: RedisLBWriteBlock runs again"),
    );
    c.wait_healthy(&all, Duration::from_secs(90))?;
    tl.act("healthy");
    Ok(())
}
