//! Drill 6: restart Pacemaker on a replica (a clean stop, then a start: what `systemctl
//! restart pacemaker` does) while a client writes through HAProxy on a new connection
//! every 10 ms: the replica's blocks must be back before HAProxy ever routes a write to
//! it (HAProxy never has it UP in redis-write, no write reaches it).

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    Outcome, RoleSampler, haproxy_changes, role_changes, start_haproxy_watch, start_writer,
    writer_changes,
};
use crate::cluster::{Cluster, NODES, wait_for};
use crate::drill_kill_redis::finish;
use crate::timeline::Timeline;

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let primary = c.wait_healthy(&all, Duration::from_secs(90))?;
    let replica = (1..=NODES).find(|&n| n != primary).expect("three nodes");
    let node = format!("node{replica}");
    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let writer = start_writer("drill6:", true);
    std::thread::sleep(Duration::from_secs(1));

    tl.act(&format!(
        "stop Pacemaker on {node} (SIGTERM pacemakerd: a clean shutdown)"
    ));
    let stopped = c.sh(&["stop-pacemaker", &node]);
    tl.act(&format!("{node}: pacemakerd gone; start it again"));
    let started = stopped.and_then(|_| c.sh(&["start-pacemaker", &node]));
    tl.act(&format!("{node}: online again, DC idle"));
    let placed = started.and_then(|_| {
        wait_for(
            &format!("RedisLBWriteBlock back on {node}"),
            Duration::from_secs(60),
            || {
                c.blocks(primary, "RedisLBWriteBlock-clone")
                    .contains(&replica)
                    .then_some(())
            },
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    let attempts = writer.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    tl.act("writer stopped");

    let mut errors = Vec::new();
    if let Err(e) = placed {
        errors.push(e);
    }
    let server = format!("redis-write/{node}");
    let up: Vec<i64> = changes
        .iter()
        .filter(|ch| ch.server == server && ch.status == "UP")
        .map(|ch| ch.t)
        .collect();
    if let Some(t) = up.first() {
        errors.push(format!(
            "HAProxy had {server} UP at {:+} ms ({} time(s))",
            tl.ms(*t),
            up.len()
        ));
    }
    let routed: Vec<&crate::clients::Attempt> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ack(n) | Outcome::ReadOnly(n) if n == replica))
        .collect();
    if let Some(a) = routed.first() {
        errors.push(format!(
            "{} write(s) routed to {node}, the first at {:+} ms ({})",
            routed.len(),
            tl.ms(a.sent),
            a.outcome.kind()
        ));
    }
    writer_changes(&mut tl, "writer", &attempts);
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();
    println!("  --- writes");
    println!(
        "  attempts: {}, acked by node{primary}: {}, routed to {node}: {}",
        attempts.len(),
        attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Ack(primary))
            .count(),
        routed.len()
    );
    finish(errors)
}
