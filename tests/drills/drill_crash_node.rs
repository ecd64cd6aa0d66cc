//! Drill 4: crash the primary node (SIGKILL everything in it: Corosync, Pacemaker, Redis,
//! Sentinel, the periodic sync) while a client writes through HAProxy every 10 ms. The
//! survivors must converge (a new primary, roles and blocks placed, HAProxy following)
//! and writes resume; no write acked by a node that was not the primary. Destructive:
//! the last drill.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    RoleSampler, ack_violations, haproxy_changes, promotion_violations, role_changes,
    start_haproxy_watch, start_writer, writer_changes,
};
use crate::cluster::{Cluster, NODES, wait_for};
use crate::drill_kill_redis::{WriteReport, finish, wait_new_primary};
use crate::timeline::Timeline;

const PREFIX: &str = "drill4:";

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let survivors: Vec<usize> = all.iter().copied().filter(|&n| n != old).collect();
    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let writer = start_writer(PREFIX, false);
    std::thread::sleep(Duration::from_secs(1));

    let crash = tl.act(&format!(
        "kill-node node{old}: SIGKILL every process of the node"
    ));
    c.sh(&["kill-node", &format!("node{old}")])?;
    let moved = wait_new_primary(c, old);
    // The survivors converge: roles, blocks and HAProxy as the rules say.
    let converged = moved.as_ref().map_err(Clone::clone).and_then(|&new| {
        let other = *survivors
            .iter()
            .find(|&&n| n != new)
            .expect("two survivors");
        wait_for("the survivors to converge", Duration::from_secs(60), || {
            let ok = c.role_attr(new, new).as_deref() == Some("primary")
                && c.role_attr(new, other).as_deref() == Some("replica")
                && c.role_attr(new, old).as_deref() == Some("fail")
                && c.blocks(new, "RedisLBWriteBlock-clone") == vec![other]
                && c.blocks(new, "RedisLBReadBlock-clone").is_empty()
                && {
                    let h = c.haproxy();
                    let up = |s: &str| h.get(s).map(String::as_str) == Some("UP");
                    up(&format!("redis-write/node{new}"))
                        && !up(&format!("redis-write/node{other}"))
                        && up(&format!("redis-read/node{other}"))
                };
            ok.then_some(())
        })
    });
    tl.act("survivors converged (or the wait ended)");
    std::thread::sleep(Duration::from_secs(1));
    let attempts = writer.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    tl.act("writer stopped");

    writer_changes(&mut tl, "writer", &attempts);
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();

    let mut errors = ack_violations(&attempts, &samples);
    errors.extend(promotion_violations(tl.events(), &samples));
    match moved {
        Ok(new) => {
            let report = WriteReport::of(PREFIX, &attempts, crash, new)?;
            report.print(&tl);
            if report.first_after.is_none() {
                errors.push(format!("no write was acked by node{new} after the crash"));
            }
        }
        Err(e) => errors.push(e),
    }
    if let Err(e) = converged {
        errors.push(e);
    }
    finish(errors)
}
