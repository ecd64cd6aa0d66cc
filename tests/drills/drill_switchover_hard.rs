//! Drill 11: `redis-ha switchover` where it is hard. First the target lags: a burst of
//! large writes through HAProxy runs into the switchover; no acknowledged write may be
//! lost, no read may be stale. Then it cannot finish: the target's Redis is stopped
//! (SIGSTOP) once the old primary is demoted; the switchover must roll back (exit 2): the
//! old primary takes writes again, the other replica's `replica-priority` is restored,
//! the hold is gone, and no acknowledged write was lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Shared;
use crate::clients::{NodePort, Records, Watchers, stale_reads};
use crate::cluster::{Cluster, NODES, wait_for, write_frontend};
use crate::drill_kill_redis::{WriteReport, finish};
use crate::netns::in_client;
use crate::resp::{Conn, Reply};
use crate::timeline::Timeline;

const STALE_GRACE: Duration = Duration::from_millis(250);

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let mut errors = Vec::new();
    errors.extend(lagging(c)?);
    errors.extend(target_stopped(c)?);
    finish(errors)
}

/// Large writes as fast as HAProxy takes them, until `stop`: the keys acknowledged.
fn burst(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        in_client(move || {
            let value = "x".repeat(64 * 1024);
            let mut acked = Vec::new();
            let mut conn = None;
            for i in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if conn.is_none() {
                    conn = Conn::connect(write_frontend(), Duration::from_secs(1)).ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                let key = format!("drill11:burst:{i}");
                match c.cmd(&["SET", &key, &value]) {
                    Ok(Reply::Status(s)) if s == "OK" => acked.push(key),
                    Ok(_) => {}
                    Err(_) => conn = None,
                }
            }
            acked
        })
    })
}

/// The switchover while a burst of large writes makes the target lag.
fn lagging(c: &Cluster) -> Result<Vec<String>, String> {
    println!("  --- the target lags: a burst of 64 KiB writes runs into the switchover");
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let prefix = "drill11a:";
    let mut tl = Timeline::new();
    let w = Watchers::start_all(c, prefix, &NodePort::every_node(6381));
    let stop = Arc::new(AtomicBool::new(false));
    let bursting = burst(stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let t = tl.act(&format!(
        "redis-ha switchover on node{old}, during the burst"
    ));
    let node = format!("node{old}");
    let (exit, out, err) =
        c.sh_status(&["exec", &node, "redis-ha", "switchover", "--timeout", "30s"]);
    stop.store(true, Ordering::SeqCst);
    let burst_acked = bursting
        .join()
        .map_err(|_| "the burst panicked".to_string())?;
    let new = c.wait_healthy(&all, Duration::from_secs(90))?;
    std::thread::sleep(Duration::from_secs(1));
    let Records {
        attempts, reads, ..
    } = w.stop(&mut tl, c, "clients stopped");
    for line in format!("{out}{err}").lines() {
        println!("  | {line}");
    }
    let mut errors = Vec::new();
    if exit != 0 {
        errors.push(format!("redis-ha switchover during a burst exited {exit}"));
    }
    if new == old {
        errors.push(format!("the primary is still node{old}"));
    }
    let report = WriteReport::of(prefix, &attempts, t, new)?;
    report.print(&tl);
    if !report.lost.is_empty() {
        errors.push(format!("{} acknowledged writes lost", report.lost.len()));
    }
    let keys = burst_acked.clone();
    let present = in_client(move || present_on(new, &keys))?;
    let burst_lost = present.iter().filter(|p| !**p).count();
    println!(
        "  burst: {} writes of 64 KiB acknowledged, {burst_lost} of them lost",
        burst_acked.len()
    );
    if burst_lost > 0 {
        errors.push(format!("{burst_lost} acknowledged burst writes lost"));
    }
    let stale = stale_reads(&attempts, &reads, STALE_GRACE);
    println!("  stale reads: {}", stale.len());
    errors.extend(
        stale
            .into_iter()
            .take(5)
            .map(|s| format!("stale read: {s}")),
    );
    Ok(errors)
}

/// The switchover whose target stops answering once the old primary is demoted.
fn target_stopped(c: &Cluster) -> Result<Vec<String>, String> {
    println!("  --- it cannot finish: the target's Redis is stopped mid-way");
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    let target = all
        .iter()
        .copied()
        .find(|&n| n != old)
        .expect("three nodes");
    let other = all
        .iter()
        .copied()
        .find(|&n| n != old && n != target)
        .expect("three nodes");
    let priority_before = priority(c, other)?;
    let prefix = "drill11b:";
    let mut tl = Timeline::new();
    let w = Watchers::start_all(c, prefix, &NodePort::every_node(6381));
    let t = tl.act(&format!(
        "redis-ha switchover --to node{target} --timeout 8s on node{old}"
    ));
    let node = format!("node{old}");
    let to = format!("node{target}");
    let args = [
        "exec",
        &node,
        "redis-ha",
        "switchover",
        "--to",
        &to,
        "--timeout",
        "8s",
    ];
    let (demoted, pid, stopped_at, (exit, out, err)) = std::thread::scope(|scope| {
        let switching = scope.spawn(|| c.sh_status(&args));
        let demoted = wait_for(
            &format!("node{old}'s redis_role to be demoted"),
            Duration::from_secs(30),
            || (c.role_attr(old, old).as_deref() == Some("replica")).then_some(()),
        );
        let pid = c.sh(&["pid", &to, "redis"]).and_then(|p| {
            p.trim()
                .parse::<i32>()
                .map_err(|e| format!("{to}'s redis pid: {e}"))
        });
        let stopped_at = Instant::now();
        if let (Ok(()), Ok(pid)) = (&demoted, &pid) {
            tl.act(&format!("SIGSTOP node{target}'s redis-server"));
            let _ = kill(Pid::from_raw(*pid), Signal::SIGSTOP);
        }
        let result = switching.join().expect("cluster.sh does not panic");
        (demoted, pid, stopped_at, result)
    });
    // Whatever happened: the target runs again.
    if let Ok(pid) = &pid {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        tl.act(&format!(
            "SIGCONT node{target}'s redis-server ({} ms after the stop)",
            stopped_at.elapsed().as_millis()
        ));
    }
    let back = c.wait_healthy(&all, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(1));
    let Records { attempts, .. } = w.stop(&mut tl, c, "clients stopped");
    for line in format!("{out}{err}").lines() {
        println!("  | {line}");
    }
    let mut errors = Vec::new();
    demoted?;
    pid?;
    if exit != 2 {
        errors.push(format!(
            "the stopped switchover exited {exit}, not 2 (rolled back)"
        ));
    }
    match back {
        Ok(p) if p == old => {}
        Ok(p) => errors.push(format!("the primary is node{p}, not node{old} again")),
        Err(e) => errors.push(e),
    }
    let report = WriteReport::of(prefix, &attempts, t, old)?;
    report.print(&tl);
    if !report.lost.is_empty() {
        errors.push(format!("{} acknowledged writes lost", report.lost.len()));
    }
    if report.first_after.is_none() {
        errors.push(format!(
            "no write acknowledged by node{old} after the rollback"
        ));
    }
    let after = priority(c, other)?;
    println!("  node{other}'s replica-priority: {priority_before} before, {after} after");
    if after != priority_before {
        errors.push(format!(
            "node{other}'s replica-priority is {after}, not {priority_before} again"
        ));
    }
    let hold = c.exec(
        old,
        &[
            "crm_attribute",
            "--node",
            &node,
            "--name",
            "redis-ha-hold",
            "--query",
            "-q",
        ],
    );
    if let Ok(value) = hold {
        errors.push(format!(
            "node{old} still carries redis-ha-hold={}",
            value.trim()
        ));
    }
    Ok(errors)
}

/// `CONFIG GET replica-priority` of node N's Redis.
fn priority(c: &Cluster, n: usize) -> Result<u32, String> {
    let reply = c.redis_cmd(n, &["CONFIG", "GET", "replica-priority"])?;
    let items = reply.items();
    match items.get(1) {
        Some(Reply::Bulk(Some(v))) => v
            .parse()
            .map_err(|e| format!("replica-priority {v:?}: {e}")),
        _ => Err(format!("CONFIG GET replica-priority on node{n}: {reply:?}")),
    }
}

/// Which of `keys` exist on node N's Redis.
fn present_on(n: usize, keys: &[String]) -> Result<Vec<bool>, String> {
    let mut conn = Conn::connect(crate::cluster::redis_addr(n), Duration::from_secs(2))
        .map_err(|e| format!("node{n} redis: {e}"))?;
    keys.iter()
        .map(|k| {
            conn.cmd(&["EXISTS", k])
                .map(|r| r == Reply::Int(1))
                .map_err(|e| format!("EXISTS on node{n}: {e}"))
        })
        .collect()
}
