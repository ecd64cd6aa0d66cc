//! Drill 5: a failover while Sentinel's scripts cannot do their work (their config,
//! sentinel-scripts.conf, is made unusable on every node: they exit 2, which Sentinel
//! does not retry), then the scripts are repaired: the periodic sync (`redis-ha sync
//! --every 5s`) must have healed `redis_role` within 10 s of the failover.

use std::time::Duration;

use crate::Shared;
use crate::clients::{haproxy_changes, start_haproxy_watch};
use crate::cluster::{Cluster, NODES, wait_for};
use crate::drill_kill_redis::finish;
use crate::timeline::{Timeline, now_us};

/// The bound the periodic sync (every 5 s) must keep.
const HEAL_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let result = drill(c, &mut tl, old);
    // Whatever happened: repair the scripts' config.
    let repaired = repair(c);
    if result.is_ok() {
        tl.act("sentinel-scripts.conf repaired on every node");
    }
    let changes = hap.stop();
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();
    let mut errors = Vec::new();
    match result {
        Ok((new, healed_ms)) => {
            println!("  --- heal");
            println!(
                "  primary node{old} -> node{new}; redis_role healed {healed_ms} ms after every Sentinel named node{new} (bound {} ms)",
                HEAL_WITHIN.as_millis()
            );
        }
        Err(e) => errors.push(e),
    }
    if let Err(e) = repaired {
        errors.push(e);
    }
    // Sentinel's scripts work again: the cluster settles as before.
    if let Err(e) = c.wait_healthy(&all, Duration::from_secs(90)) {
        errors.push(e);
    }
    finish(errors)
}

fn conf(c: &Cluster, n: usize) -> std::path::PathBuf {
    c.node_dir(n).join("sentinel-scripts.conf")
}

fn repair(c: &Cluster) -> Result<(), String> {
    for n in 1..=NODES {
        std::fs::copy(c.node_dir(n).join("redis-ha.conf"), conf(c, n))
            .map_err(|e| format!("restore {}: {e}", conf(c, n).display()))?;
    }
    Ok(())
}

fn drill(c: &Cluster, tl: &mut Timeline, old: usize) -> Result<(usize, i64), String> {
    for n in 1..=NODES {
        std::fs::write(
            conf(c, n),
            "this line is not a redis-ha setting (drill 5)\n",
        )
        .map_err(|e| format!("break {}: {e}", conf(c, n).display()))?;
    }
    tl.act("sentinel-scripts.conf made unusable on every node (the scripts exit 2)");
    tl.act("SENTINEL FAILOVER redis-ha (node1's Sentinel)");
    let reply = c.sentinel_cmd(1, &["SENTINEL", "FAILOVER", "redis-ha"])?;
    tl.act(&format!("  Sentinel replied {reply:?}"));
    let new = wait_for(
        "every Sentinel to name a new master",
        Duration::from_secs(60),
        || c.sentinel_master().filter(|&m| m != old),
    )?;
    let known = tl.act(&format!("every Sentinel names node{new}"));
    let healed = wait_for(
        &format!("redis_role: node{new} primary, node{old} not primary"),
        Duration::from_secs(60),
        || {
            let p = c.role_attr(new, new)?;
            let o = c.role_attr(new, old)?;
            (p == "primary" && o != "primary").then(now_us)
        },
    )?;
    tl.add_at(
        healed,
        "drill",
        &format!("redis_role: node{new}=primary, node{old} demoted"),
    );
    let ms = (healed - known) / 1000;
    if ms > HEAL_WITHIN.as_millis() as i64 {
        return Err(format!(
            "redis_role healed {ms} ms after the Sentinels named node{new}: more than {} ms",
            HEAL_WITHIN.as_millis()
        ));
    }
    Ok((new, ms))
}
