//! Drill 3: restart the Redis that drill 1 killed (the old primary, empty: no
//! persistence). No read through HAProxy's read frontend may be served by it until it
//! is a synced replica (zero stale reads); reported: how long until it serves reads.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    ReadReport, RoleSampler, first_synced, haproxy_changes, role_changes, start_haproxy_watch,
    start_reader,
};
use crate::cluster::{Cluster, NODES, wait_for, write_frontend};
use crate::drill_kill_redis::{finish, wait_new_primary, wait_up};
use crate::timeline::{Timeline, now_us};

const KEY: &str = "drill3:marker";

pub(crate) fn run(c: &Cluster, shared: &mut Shared) -> Result<(), String> {
    let killed = match shared.killed_redis {
        Some(k) => k,
        None => {
            // Run alone: kill the primary's Redis first, as drill 1 does.
            let all: Vec<usize> = (1..=NODES).collect();
            let p = c.wait_healthy(&all, Duration::from_secs(90))?;
            println!("  (setup) SIGKILL node{p}'s redis-server, wait for the failover");
            c.kill_redis(p)?;
            wait_new_primary(c, p)?;
            p
        }
    };
    let others: Vec<usize> = (1..=NODES).filter(|&n| n != killed).collect();
    // The precondition: the roles say the dead one is `fail`, HAProxy agrees.
    wait_for(
        &format!("node{killed}: redis_role fail, out of HAProxy"),
        Duration::from_secs(60),
        || {
            let hap = c.haproxy();
            let out = hap
                .get(&format!("redis-read/node{killed}"))
                .map(String::as_str)
                != Some("UP");
            (out && c.role_attr(others[0], killed).as_deref() == Some("fail")).then_some(())
        },
    )?;
    // The value every read must return, on the primary and its live replicas.
    let value = format!("v{}", now_us());
    c.set_replicated(write_frontend(), KEY, &value, others.len() - 1)?;

    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let reader = start_reader(KEY, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(500));
    let restart = tl.act(&format!("start node{killed}'s redis-server again"));
    c.start_redis(killed)?;
    let served = wait_up(c, "redis-read", killed, Duration::from_secs(90));
    // Long enough for leastconn to send it a share of the reads.
    std::thread::sleep(Duration::from_secs(2));
    let reads = reader.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    tl.act("reader stopped");

    let mut errors = Vec::new();
    if let Err(e) = served {
        errors.push(e);
    }
    // When the rejoining Redis was a synced replica, per its own ROLE.
    let synced_at = first_synced(&samples, killed, restart);
    let report = ReadReport::of(&tl, &reads, &value, killed, synced_at);
    errors.extend(report.errors.iter().cloned());
    let first_read = report.first_read;
    if let Some(t) = first_read {
        tl.add_at(t, "reader", &format!("first read served by node{killed}"));
    }
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();

    report.print();
    match (synced_at, first_read) {
        (Some(s), Some(f)) => println!(
            "  node{killed}: synced replica {} ms after the restart, serving reads after {} ms",
            (s - restart) / 1000,
            (f - restart) / 1000
        ),
        _ => errors.push(format!("node{killed} served no read after its restart")),
    }
    shared.killed_redis = None;
    finish(errors)
}
