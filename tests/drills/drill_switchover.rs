//! Drill 2: a planned switchover (`SENTINEL FAILOVER`) with every node alive, while a
//! prober in the client namespace connects to every node's 6381 every 20 ms: at no
//! probe may two nodes accept.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    NodePort, RoleSampler, haproxy_changes, role_changes, start_haproxy_watch, start_prober,
};
use crate::cluster::{Cluster, NODES};
use crate::drill_kill_redis::{finish, wait_new_primary};
use crate::timeline::Timeline;

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let prober = start_prober(NodePort::every_node(6381));
    std::thread::sleep(Duration::from_secs(1));

    tl.act("SENTINEL FAILOVER redis-ha (node1's Sentinel)");
    let reply = c.sentinel_cmd(1, &["SENTINEL", "FAILOVER", "redis-ha"])?;
    tl.act(&format!("  Sentinel replied {reply:?}"));
    let moved = wait_new_primary(c, old);
    // Until everything agrees again: the old master converted, synced, `replica`.
    let healthy = moved
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| c.wait_healthy(&all, Duration::from_secs(90)));
    std::thread::sleep(Duration::from_secs(1));
    let rounds = prober.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    tl.act("prober stopped");

    let mut errors = Vec::new();
    let mut last: Option<Vec<usize>> = None;
    let (mut two, mut none) = (0, 0);
    let mut closed_from: Option<i64> = None;
    let mut closed_ms = 0;
    for r in &rounds {
        let open = r.nodes_open(6381);
        if last.as_ref() != Some(&open) {
            let who = open.iter().map(|n| format!("node{n}")).collect::<Vec<_>>();
            tl.add_at(
                r.t,
                "prober",
                &format!(
                    "6381 open on: {}",
                    if who.is_empty() {
                        "no node".to_string()
                    } else {
                        who.join(", ")
                    }
                ),
            );
            last = Some(open.clone());
        }
        match open.len() {
            0 => {
                none += 1;
                closed_from.get_or_insert(r.t);
            }
            n => {
                if let Some(f) = closed_from.take() {
                    closed_ms += (r.t - f) / 1000;
                }
                if n > 1 {
                    two += 1;
                    errors.push(format!(
                        "probe at {:+} ms: 6381 open on {:?}",
                        tl.ms(r.t),
                        open
                    ));
                }
            }
        }
    }
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();

    println!("  --- probes");
    println!(
        "  rounds: {}; with two or more nodes open: {two}; with none open: {none} (about {closed_ms} ms without a writable node)",
        rounds.len()
    );
    if let Ok(new) = &moved {
        println!("  primary: node{old} -> node{new}");
    }
    if let Err(e) = moved {
        errors.push(e);
    } else if let Err(e) = healthy {
        errors.push(e);
    }
    finish(errors)
}
