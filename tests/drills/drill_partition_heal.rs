//! Drill 8: heal the partition of drill 7 (`cluster.sh heal`). The old primary rejoins:
//! Corosync merges, Sentinel converts its Redis into a replica of the new primary (at its
//! next INFO, ~10 s), the sync makes it `replica`. Readers through HAProxy's read
//! frontend must get zero stale reads (as drill 3 defines them: no read served by it
//! before its ROLE says synced replica); its 6380 and 6381, probed every 20 ms, stay
//! refused until then, and 6381 after that too (it is not the primary). Then everything
//! agrees on all three nodes.

use std::time::Duration;

use crate::Shared;
use crate::clients::{
    NodePort, ReadReport, RoleSampler, describe_open, first_synced, haproxy_changes, open_rounds,
    probe_changes, reopened, role_changes, start_haproxy_watch, start_prober, start_reader,
};
use crate::cluster::{Cluster, NODES, redis_addr, wait_for};
use crate::drill_kill_redis::finish;
use crate::drill_partition_primary::wait_majority_settled;
use crate::timeline::{Timeline, now_us};

const KEY: &str = "drill8:marker";

pub(crate) fn run(c: &Cluster, shared: &mut Shared) -> Result<(), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = match shared.cut_primary.take() {
        Some(p) => p,
        None => {
            // Run alone: cut the primary off first, as drill 7 does.
            let p = c.wait_healthy(&all, Duration::from_secs(90))?;
            let majority: Vec<usize> = all.iter().copied().filter(|&n| n != p).collect();
            println!("  (setup) cut node{p} from the others, wait for the majority to fail over");
            if let Err(e) = c
                .cut(p, &majority)
                .and_then(|()| wait_majority_settled(c, p, &majority))
            {
                let _ = c.heal();
                return Err(e);
            }
            p
        }
    };
    let majority: Vec<usize> = all.iter().copied().filter(|&n| n != old).collect();
    let prepared = prepare(c, old, &majority);
    let value = match prepared {
        Ok(v) => v,
        Err(e) => {
            // Whatever failed: no cut stays behind for the next drills.
            return Err(match c.heal() {
                Ok(()) => e,
                Err(h) => format!("{e}\n  and: {h}"),
            });
        }
    };
    let ports = [NodePort::new(old, 6380), NodePort::new(old, 6381)];
    let [old_r, old_w] = ports;

    let mut tl = Timeline::new();
    let hap = start_haproxy_watch(c.haproxy_sock());
    let roles = RoleSampler::start();
    let prober = start_prober(ports.to_vec());
    let reader = start_reader(KEY, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(500));
    let heal = tl.act("heal: every cut removed");
    let healed = c.heal();
    if healed.is_ok() {
        tl.act("healed");
    }
    let back = format!("redis-read/node{old}");
    let served = healed.and_then(|()| {
        wait_for(
            &format!("node{old}: redis_role replica, HAProxy taking it back for reads"),
            Duration::from_secs(90),
            || {
                let replica = c.role_attr(majority[0], old).as_deref() == Some("replica");
                let up = c.haproxy().get(&back).map(String::as_str) == Some("UP");
                (replica && up).then_some(())
            },
        )
    });
    // Long enough for leastconn to send it a share of the reads.
    std::thread::sleep(Duration::from_secs(2));
    let reads = reader.stop();
    let rounds = prober.stop();
    let samples = roles.stop();
    let changes = hap.stop();
    tl.act("clients stopped");

    let mut errors = Vec::new();
    if let Err(e) = served {
        errors.push(e);
    }
    let synced_at = first_synced(&samples, old, heal);
    let report = ReadReport::of(&tl, &reads, &value, old, synced_at);
    errors.extend(report.errors.clone());
    if let Some(t) = report.first_read {
        tl.add_at(t, "reader", &format!("first read served by node{old}"));
    }
    probe_changes(&mut tl, &rounds, &ports);
    role_changes(&mut tl, &samples);
    haproxy_changes(&mut tl, &changes);
    tl.add_logs(&c.state(), NODES);
    tl.print();

    report.print();
    let ms =
        |t: Option<i64>| t.map_or("never".to_string(), |t| format!("{} ms", (t - heal) / 1000));
    println!(
        "  node{old} after the heal: synced replica {}, {old_r} open again {}, first read served {} (negative: before the heal)",
        ms(synced_at),
        ms(reopened(&rounds, old_r, tl.t0)),
        ms(report.first_read)
    );
    let early_r = open_rounds(&rounds, old_r, i64::MIN, synced_at.unwrap_or(i64::MAX));
    if !early_r.is_empty() {
        errors.push(format!(
            "before node{old}'s ROLE said synced replica: {}",
            describe_open(&tl, old_r, &early_r)
        ));
    }
    let open_w = open_rounds(&rounds, old_w, i64::MIN, i64::MAX);
    if !open_w.is_empty() {
        errors.push(format!(
            "node{old} is not the primary: {}",
            describe_open(&tl, old_w, &open_w)
        ));
    }
    if synced_at.is_none() {
        errors.push(format!(
            "node{old} never was a synced replica after the heal"
        ));
    }
    if let Err(e) = c.wait_healthy(&all, Duration::from_secs(90)) {
        errors.push(e);
    }
    finish(errors)
}

/// The majority's primary holds the value every read must return, on its replica too.
fn prepare(c: &Cluster, old: usize, majority: &[usize]) -> Result<String, String> {
    let new = wait_for(
        "the majority's Sentinels to name a new master",
        Duration::from_secs(60),
        || c.sentinel_master_among(majority).filter(|&m| m != old),
    )?;
    let value = format!("v{}", now_us());
    // Straight to its 6379: through HAProxy the write might reach the cut-off old primary.
    c.set_replicated(redis_addr(new), KEY, &value, 1)?;
    Ok(value)
}
