//! Drill 11: `redis-ha switchover` where it is hard. First the target lags: a burst of
//! large writes through HAProxy runs into the switchover, and the target's Redis is
//! stopped (SIGSTOP) for a second once the old primary is demoted, so the switchover must
//! wait for it to catch up; no acknowledged write may be lost (the burst's included).
//! Then it cannot finish: the target's Redis is stopped before the old primary is
//! demoted and stays stopped; the switchover must roll back (exit 2): the old primary
//! takes writes again, the other replica's `replica-priority` is restored, the hold is
//! gone, and no acknowledged write was lost. Last, Ctrl-C: SIGINT to the command once it
//! has set the other replica's priority to 0 rolls back the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Shared;
use crate::clients::{NodePort, Records, Watchers, stale_reads};
use crate::cluster::{Cluster, NODES, redis_addr, wait_for, write_frontend};
use crate::drill_kill_redis::{WriteReport, finish};
use crate::netns::in_client;
use crate::resp::{Conn, Reply};
use crate::timeline::Timeline;

/// As in drill 2: older than a write acknowledged this long before the read began.
const STALE_GRACE: Duration = Duration::from_millis(250);

pub(crate) fn run(c: &Cluster, _shared: &mut Shared) -> Result<(), String> {
    let mut errors = lagging(c)?;
    errors.extend(target_stopped(c)?);
    errors.extend(interrupted(c)?);
    finish(errors)
}

/// The primary, a target and the remaining replica of a healthy cluster.
fn three(c: &Cluster) -> Result<(usize, usize, usize), String> {
    let all: Vec<usize> = (1..=NODES).collect();
    let old = c.wait_healthy(&all, Duration::from_secs(90))?;
    crate::drill_switchover::wait_synced_for_sentinels(c, &all, old)?;
    let mut others = all.into_iter().filter(|&n| n != old);
    let target = others.next().expect("three nodes");
    let other = others.next().expect("three nodes");
    Ok((old, target, other))
}

/// The switchover while a burst of large writes runs and the target stalls for a second.
fn lagging(c: &Cluster) -> Result<Vec<String>, String> {
    println!("  --- the target lags: a burst of 64 KiB writes, the target stalled 1 s");
    let (old, target, _) = three(c)?;
    let prefix = "drill11a:";
    let mut tl = Timeline::new();
    let w = Watchers::start_all(c, prefix, &NodePort::every_node(6381));
    let stop = Arc::new(AtomicBool::new(false));
    let bursting = burst(stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let pid = c.daemon_pid(target, "redis")?;
    let t = tl.act(&format!(
        "redis-ha switchover --to node{target} on node{old}, during the burst"
    ));
    let switching = Switching::start(c, old, target, "30s")?;
    // The target falls behind for a second, as the old primary's writes stop.
    let demoted = wait_for(
        "the old primary's demotion",
        Duration::from_secs(30),
        || (c.role_attr(old, old).as_deref() == Some("replica")).then_some(()),
    );
    if demoted.is_ok() {
        tl.act(&format!("SIGSTOP node{target}'s redis-server for 1 s"));
        let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        std::thread::sleep(Duration::from_secs(1));
        let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        tl.act(&format!("SIGCONT node{target}'s redis-server"));
    }
    let (exit, said) = switching.finish()?;
    let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
    stop.store(true, Ordering::SeqCst);
    let burst_acked = bursting
        .join()
        .map_err(|_| "the burst panicked".to_string())?;
    let all: Vec<usize> = (1..=NODES).collect();
    let new = c.wait_healthy(&all, Duration::from_secs(90))?;
    std::thread::sleep(Duration::from_secs(1));
    let Records {
        attempts, reads, ..
    } = w.stop(&mut tl, c, "clients stopped");
    print_said(&said);
    let mut errors = Vec::new();
    if exit != Some(0) {
        errors.push(format!(
            "redis-ha switchover during a burst exited {exit:?}"
        ));
    }
    if new != target {
        errors.push(format!("the primary is node{new}, not node{target}"));
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
    // Under the burst a replica's replication lags by more than the grace: reported,
    // not judged (after a switchover, stale reads come from lost writes, judged above).
    let stale = stale_reads(&attempts, &reads, STALE_GRACE);
    println!(
        "  reads older than a write acknowledged {} ms before: {} (replication lag under the burst)",
        STALE_GRACE.as_millis(),
        stale.len()
    );
    Ok(errors)
}

/// The switchover whose target stops answering before the old primary is demoted.
fn target_stopped(c: &Cluster) -> Result<Vec<String>, String> {
    println!("  --- it cannot finish: the target's Redis stopped before the demotion");
    let (old, target, other) = three(c)?;
    let priority_before = priority(c, other)?;
    let prefix = "drill11b:";
    let mut tl = Timeline::new();
    let w = Watchers::start_all(c, prefix, &NodePort::every_node(6381));
    let pid = c.daemon_pid(target, "redis")?;
    let t = tl.act(&format!(
        "redis-ha switchover --to node{target} --timeout 15s on node{old}"
    ));
    let switching = Switching::start(c, old, target, "15s")?;
    // Its first change: the other replica's priority 0. Then the target stops, before
    // the old primary is demoted, and stays stopped until the switchover gives up.
    let stopped = wait_for(
        &format!("node{other}'s replica-priority 0"),
        Duration::from_secs(30),
        || (priority(c, other).ok() == Some(0)).then_some(()),
    );
    if stopped.is_ok() {
        tl.act(&format!("SIGSTOP node{target}'s redis-server"));
        let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
    }
    let (exit, said) = switching.finish()?;
    let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
    tl.act(&format!("SIGCONT node{target}'s redis-server"));
    let all: Vec<usize> = (1..=NODES).collect();
    let back = c.wait_healthy(&all, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(1));
    let Records { attempts, .. } = w.stop(&mut tl, c, "clients stopped");
    print_said(&said);
    stopped?;
    let mut errors = Vec::new();
    if exit != Some(2) {
        errors.push(format!(
            "the stopped switchover exited {exit:?}, not 2 (rolled back)"
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
    errors.extend(left_behind(c, old, other, priority_before)?);
    Ok(errors)
}

/// Ctrl-C once the switchover has changed the other replica's priority.
fn interrupted(c: &Cluster) -> Result<Vec<String>, String> {
    println!("  --- Ctrl-C: SIGINT once the other replica's priority is 0");
    let (old, target, other) = three(c)?;
    let priority_before = priority(c, other)?;
    let switching = Switching::start(c, old, target, "30s")?;
    let changed = wait_for(
        &format!("node{other}'s replica-priority 0"),
        Duration::from_secs(30),
        || (priority(c, other).ok() == Some(0)).then_some(()),
    );
    if changed.is_ok() {
        let _ = kill(switching.pid(), Signal::SIGINT);
    }
    let (exit, said) = switching.finish()?;
    print_said(&said);
    changed?;
    let mut errors = Vec::new();
    if exit != Some(2) {
        errors.push(format!(
            "the interrupted switchover exited {exit:?}, not 2 (rolled back)"
        ));
    }
    let all: Vec<usize> = (1..=NODES).collect();
    match c.wait_healthy(&all, Duration::from_secs(90)) {
        Ok(p) if p == old => {}
        Ok(p) => errors.push(format!("the primary is node{p}, not node{old} still")),
        Err(e) => errors.push(e),
    }
    errors.extend(
        left_behind(c, old, other, priority_before)?
            .into_iter()
            .map(|e| format!("after Ctrl-C {e}")),
    );
    Ok(errors)
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
                let Some(c) = conn.as_mut() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
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

/// What a rolled-back switchover must not leave: `other`'s replica-priority other than
/// `before`, a hold or a priorities record on the old primary's node.
fn left_behind(c: &Cluster, old: usize, other: usize, before: u32) -> Result<Vec<String>, String> {
    let mut errors = Vec::new();
    let after = priority(c, other)?;
    println!("  node{other}'s replica-priority: {before} before, {after} after");
    if after != before {
        errors.push(format!(
            "node{other}'s replica-priority is {after}, not {before} again"
        ));
    }
    for attribute in ["redis-ha-hold", "redis-ha-priorities"] {
        if let Some(value) = c.attribute(old, old, attribute) {
            errors.push(format!("node{old} still carries {attribute}={value}"));
        }
    }
    Ok(errors)
}

/// `redis-ha switchover --to node<target>` running on node `old`'s namespaces.
struct Switching(std::process::Child);

impl Switching {
    fn start(c: &Cluster, old: usize, target: usize, timeout: &str) -> Result<Self, String> {
        let to = format!("node{target}");
        c.spawn(
            old,
            &["redis-ha", "switchover", "--to", &to, "--timeout", timeout],
        )
        .map(Switching)
        .map_err(|e| format!("cannot start the switchover: {e}"))
    }

    /// The command's own pid (cluster.sh and nsenter exec it).
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }

    /// Its exit code and what it printed.
    fn finish(self) -> Result<(Option<i32>, String), String> {
        let out = self
            .0
            .wait_with_output()
            .map_err(|e| format!("the switchover: {e}"))?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code(), said))
    }
}

fn print_said(said: &str) {
    for line in said.lines() {
        println!("  | {line}");
    }
}

/// `CONFIG GET replica-priority` of node N's Redis.
fn priority(c: &Cluster, n: usize) -> Result<u32, String> {
    let reply = c.redis_cmd(n, &["CONFIG", "GET", "replica-priority"])?;
    match reply.items().get(1) {
        Some(Reply::Bulk(Some(v))) => v
            .parse()
            .map_err(|e| format!("replica-priority {v:?}: {e}")),
        _ => Err(format!("CONFIG GET replica-priority on node{n}: {reply:?}")),
    }
}

/// Which of `keys` exist on node N's Redis.
fn present_on(n: usize, keys: &[String]) -> Result<Vec<bool>, String> {
    let mut conn = Conn::connect(redis_addr(n), Duration::from_secs(2))
        .map_err(|e| format!("node{n} redis: {e}"))?;
    keys.iter()
        .map(|k| {
            conn.cmd(&["EXISTS", k])
                .map(|r| r == Reply::Int(1))
                .map_err(|e| format!("EXISTS on node{n}: {e}"))
        })
        .collect()
}
