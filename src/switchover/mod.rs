//! `redis-ha switchover`: moves the primary to another node with no acknowledged write
//! lost. The primary refuses writes first (held from `primary` and demoted, its
//! `RedisLBWriteBlock` waited for), the target catches up with it, every other replica
//! gets `replica-priority` 0 so that Sentinel can only pick the target, `SENTINEL
//! FAILOVER`, and the sync promotes the target as after any failover. The priorities and
//! the hold are restored on every path, Ctrl-C included; before the failover, a failure
//! hands the primary back.

mod check;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ClusterState, NodeName, Pacemaker, PriorityRecord, Role};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::exit::SwitchoverExit;
use crate::observe::{Mapped, Resolve, observe_in_order, resolver, verdict};
use crate::ocf::Logger;
use crate::process::Process;
use crate::sentinel::{Addr, RedisServers, Sentinels};

pub(crate) use check::{Moves, check};

/// How often the waits look again.
const POLL: Duration = Duration::from_millis(50);
/// How long handing the primary back may take after a failure (its block to stop).
const GIVE_BACK: Duration = Duration::from_secs(20);
/// Added to the hold's deadline: a switchover that died holds its node no longer.
const HOLD_MARGIN: Duration = Duration::from_secs(10);

/// Set by SIGINT/SIGTERM: every wait checks it and rolls back.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn interrupted(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM end the switchover through its rollback.
fn catch_interrupts() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(interrupted),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// `redis-ha switchover` with the real effects: each step printed and logged.
pub(crate) fn run(p: &Process, config_path: &Path, request: &Request) -> SwitchoverExit {
    let log = Logger::for_tool("redis-ha-switchover", p);
    let say = |line: &str| {
        println!("{line}");
        log.info(line);
    };
    let ready = Config::load(config_path).and_then(|c| {
        let (s, r) = (c.sentinel_client()?, c.redis_client()?);
        Ok((c, s, r))
    });
    let (config, sentinels, redis) = match ready {
        Ok(ready) => ready,
        Err(e) => {
            say(&format!("cannot switch over: {e}; nothing was changed"));
            return SwitchoverExit::Refused;
        }
    };
    catch_interrupts();
    let cluster = Pacemaker::for_helper();
    let sync = || {
        let _ = crate::sync::once(&config, &log, false, Deadline::NONE);
    };
    Switchover {
        config: &config,
        sentinels: &sentinels,
        cluster: &cluster,
        redis: &redis,
        resolve: &resolver(config.timeout),
        say: &say,
        sync: &sync,
    }
    .run(request)
}

/// The request, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) to: Option<NodeName>,
    /// For the whole switchover, from the first change to the target taking writes.
    pub(crate) timeout: Duration,
}

/// The effects of one switchover, and where it says what it does.
pub(crate) struct Switchover<'a, S, C, R> {
    pub(crate) config: &'a Config,
    pub(crate) sentinels: &'a S,
    pub(crate) cluster: &'a C,
    pub(crate) redis: &'a R,
    pub(crate) resolve: Resolve<'a>,
    /// One line per step, as it happens.
    pub(crate) say: &'a dyn Fn(&str),
    /// Runs one sync (under the host's sync lock, logged): the promotion, the give-back.
    pub(crate) sync: &'a dyn Fn(),
}

/// Why a step could not finish.
#[derive(Debug)]
enum Stop {
    TimedOut(&'static str),
    Interrupted,
    Failed(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::TimedOut(what) => write!(f, "timed out waiting for {what}"),
            Stop::Interrupted => f.write_str("interrupted"),
            Stop::Failed(why) => f.write_str(why),
        }
    }
}

/// What has been changed so far, to be undone.
#[derive(Default)]
struct Changed {
    /// Replicas whose priority we set to 0, with the value to restore.
    priorities: Vec<(Addr, u32)>,
    /// The node carrying the record of those values (`PRIORITIES_ATTRIBUTE`).
    recorded: Option<NodeName>,
    /// The node we hold (and demoted).
    held: Option<NodeName>,
}

impl<S, C, R> Switchover<'_, S, C, R>
where
    S: Sentinels + Sync,
    C: Cluster + Sync,
    R: RedisServers,
{
    pub(crate) fn run(&self, request: &Request) -> SwitchoverExit {
        let start = Instant::now();
        let deadline = start + request.timeout;
        let say =
            |what: &str| (self.say)(&format!("[{:>6} ms] {what}", start.elapsed().as_millis()));
        let checked = self.observe().and_then(|(state, mapped)| {
            let moves = check(&state, &mapped, request.to.as_ref()).map_err(Stop::Failed)?;
            Ok((moves, state.nodes()))
        });
        let (moves, nodes) = match checked {
            Ok(checked) => checked,
            Err(why) => {
                say(&format!("cannot switch over: {why}; nothing was changed"));
                return SwitchoverExit::Refused;
            }
        };
        let (old, new) = (&moves.primary, &moves.target);
        say(&format!(
            "moving the primary from {} ({}) to {} ({}), through Sentinel {}",
            old.0, old.1, new.0, new.1, moves.sentinel
        ));
        let mut changed = Changed::default();
        let mut blocked_at = None;
        let result = self.steps(
            &moves,
            &nodes,
            deadline,
            &say,
            &mut changed,
            &mut blocked_at,
        );
        let exit = match &result {
            Ok(open_at) => {
                let gap = blocked_at.map(|b: Instant| open_at.duration_since(b));
                say(&format!(
                    "{} takes writes; writes were refused for {} ms",
                    new.0,
                    gap.unwrap_or_default().as_millis()
                ));
                SwitchoverExit::Done
            }
            Err((stop, promoted)) if *promoted => {
                say(&format!(
                    "{stop}, after Sentinel promoted {}: it stays the primary; the sync \
                     finishes the move (see `redis-ha status`)",
                    new.0
                ));
                SwitchoverExit::Stuck
            }
            Err((stop, _)) => {
                say(&format!("{stop}: handing the primary back to {}", old.0));
                SwitchoverExit::RolledBack
            }
        };
        let gave_back = matches!(exit, SwitchoverExit::RolledBack);
        let undone = self.undo(&mut changed, &say);
        if gave_back {
            return match undone.and_then(|()| self.give_back(&old.0, &say)) {
                Ok(()) => SwitchoverExit::RolledBack,
                Err(why) => {
                    say(&format!(
                        "could not hand the primary back: {why}; see `redis-ha status`"
                    ));
                    SwitchoverExit::Stuck
                }
            };
        }
        if let Err(why) = undone {
            say(&format!("could not restore everything: {why}"));
            return SwitchoverExit::Stuck;
        }
        exit
    }

    /// The switchover's steps; `Err((why, promoted))`: stopped, and whether Sentinel had
    /// promoted the target by then (no going back).
    fn steps(
        &self,
        m: &Moves,
        nodes: &BTreeSet<NodeName>,
        deadline: Instant,
        say: &dyn Fn(&str),
        changed: &mut Changed,
        blocked_at: &mut Option<Instant>,
    ) -> Result<Instant, (Stop, bool)> {
        let before = |stop| (stop, false);
        // 1. Only the target may be picked. What to give back is recorded in the CIB
        //    first: if this process dies, a sync restores it after the deadline.
        let mut originals = Vec::new();
        for addr in &m.others {
            let old = self.redis.priority(addr).map_err(|e| before(failed(e)))?;
            if old != 0 {
                originals.push((addr.clone(), old));
            }
        }
        if !originals.is_empty() {
            let record = PriorityRecord {
                until: self.deadline_unix(deadline),
                entries: originals.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
            };
            self.cluster
                .set_priority_record(&m.primary.0, Some(&record))
                .map_err(|e| before(failed(e)))?;
            changed.recorded = Some(m.primary.0.clone());
        }
        for (addr, old) in originals {
            self.redis
                .set_priority(&addr, 0)
                .map_err(|e| before(failed(e)))?;
            say(&format!("replica-priority of {addr}: {old} -> 0"));
            changed.priorities.push((addr, old));
        }
        if !changed.priorities.is_empty() {
            self.wait(deadline, "the Sentinel to see the priorities", || {
                let v = self
                    .sentinels
                    .view(&m.sentinel, &self.config.master_name)
                    .ok()?;
                let zero = changed.priorities.iter().all(|(a, _)| {
                    v.replicas.iter().any(|r| {
                        r.addr.canonical() == a.canonical() && r.candidacy.priority == Some(0)
                    })
                });
                zero.then_some(())
            })
            .map_err(before)?;
            say(&format!("Sentinel {} sees them", m.sentinel));
        }
        // 2. The primary refuses writes: held (no sync makes it primary again), demoted,
        //    its block running.
        let (old, new) = (&m.primary.0, &m.target.0);
        self.cluster
            .set_hold(old, Some(self.deadline_unix(deadline)))
            .map_err(|e| before(failed(e)))?;
        changed.held = Some(old.clone());
        self.cluster
            .set_role(old, Role::Replica)
            .map_err(|e| before(failed(e)))?;
        say(&format!("{old}: redis_role replica (held from primary)"));
        self.wait(deadline, "the old primary's write block", || {
            let state = self.cluster.state().ok()?;
            state.write_blocks.contains(old).then_some(())
        })
        .map_err(before)?;
        *blocked_at = Some(Instant::now());
        say(&format!(
            "{old}: RedisLBWriteBlock runs: its writes are refused"
        ));
        // 3. Nothing it acknowledged is missing on the target.
        let info = self
            .redis
            .replication(&m.primary.1)
            .map_err(|e| before(failed(e)))?;
        let Some(last) = info.master_offset() else {
            return Err(before(Stop::Failed(format!(
                "{} is no longer a master with an offset ({})",
                m.primary.1, info.role
            ))));
        };
        self.wait(deadline, "the target to catch up", || {
            let info = self.redis.replication(&m.target.1).ok()?;
            (info.offset? >= last).then_some(())
        })
        .map_err(before)?;
        say(&format!(
            "{new} has everything {old} acknowledged (offset {last})"
        ));
        // 4. The failover: Sentinel can only pick the target.
        self.sentinels
            .failover(&m.sentinel, &self.config.master_name)
            .map_err(|e| before(failed(e)))?;
        say(&format!("SENTINEL FAILOVER accepted by {}", m.sentinel));
        // 5. The sync promotes it as after any failover; until its write port (where
        //    HAProxy sends writes) reaches a master.
        let mut promoted = false;
        let mut synced = Instant::now();
        let write_port = Addr {
            host: m.target.1.host.clone(),
            port: self.config.guard.write_port.get(),
        };
        // Each round asks the Sentinels (the nodes do not change meanwhile); the CIB only
        // once they name the target, the write port only once the CIB has it open.
        let open = self.wait(deadline, "the target to take writes", || {
            let verdict = verdict(self.config, self.sentinels).ok()?;
            let named = Mapped::new(self.config, self.resolve, verdict, nodes)
                .assignment
                .primary
                .is_some_and(|(n, _)| n == *new);
            promoted |= named;
            if !named {
                return None;
            }
            let state = self.cluster.state().ok()?;
            if state.role(new) != Some(Role::Primary) || state.write_blocks.contains(new) {
                if synced.elapsed() >= Duration::from_millis(500) {
                    (self.sync)();
                    synced = Instant::now();
                }
                return None;
            }
            let info = self.redis.replication(&write_port).ok()?;
            (info.role == "master").then_some(())
        });
        match open {
            Ok(()) => Ok(Instant::now()),
            Err(stop) => Err((stop, promoted)),
        }
    }

    /// `deadline` as a Unix time, with `HOLD_MARGIN`: when what this switchover recorded
    /// counts for nothing any more.
    fn deadline_unix(&self, deadline: Instant) -> u64 {
        let left = deadline.saturating_duration_since(Instant::now()) + HOLD_MARGIN;
        crate::sync::unix_now() + left.as_secs()
    }

    /// Polls `ready` until it says yes, the deadline passes, or an interrupt comes.
    fn wait(
        &self,
        deadline: Instant,
        what: &'static str,
        mut ready: impl FnMut() -> Option<()>,
    ) -> Result<(), Stop> {
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(Stop::Interrupted);
            }
            if ready().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Stop::TimedOut(what));
            }
            std::thread::sleep(POLL);
        }
    }

    fn observe(&self) -> Result<(ClusterState, Mapped), Stop> {
        let seen = observe_in_order(self.config, self.cluster, self.sentinels, self.resolve);
        let state = seen.cib.map_err(failed)?.writable().map_err(failed)?;
        let mapped = seen.sentinels.map_err(failed)?;
        Ok((state, mapped))
    }

    /// Restores every priority and lifts the hold; says what it could not.
    fn undo(&self, changed: &mut Changed, say: &dyn Fn(&str)) -> Result<(), String> {
        let mut left = Vec::new();
        for (addr, old) in changed.priorities.drain(..) {
            match self.redis.set_priority(&addr, old) {
                Ok(()) => say(&format!("replica-priority of {addr}: restored to {old}")),
                Err(e) => left.push(format!(
                    "replica-priority of {addr} is still 0 ({e}): a sync restores it to {old} \
                     once the record's time has passed"
                )),
            }
        }
        // Kept while a priority could not be restored: the sync's to finish.
        if let Some(node) = changed.recorded.take()
            && left.is_empty()
            && let Err(e) = self.cluster.set_priority_record(&node, None)
        {
            left.push(format!(
                "the priorities record on {node} is still there ({e}); the sync deletes it"
            ));
        }
        if let Some(node) = changed.held.take() {
            match self.cluster.set_hold(&node, None) {
                Ok(()) => say(&format!("{node}: hold lifted")),
                Err(e) => left.push(format!(
                    "the hold on {node} is still there ({e}); it runs out by itself"
                )),
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("; "))
        }
    }

    /// After a failure before the promotion: a sync makes the old primary `primary` again
    /// (the Sentinels still call it the master); wait until its block stops.
    fn give_back(&self, old: &NodeName, say: &dyn Fn(&str)) -> Result<(), String> {
        let deadline = Instant::now() + GIVE_BACK;
        INTERRUPTED.store(false, Ordering::SeqCst);
        let mut synced: Option<Instant> = None;
        self.wait(deadline, "the old primary's write block to stop", || {
            if synced.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                (self.sync)();
                synced = Some(Instant::now());
            }
            let state = self.cluster.state().ok()?;
            (state.role(old) == Some(Role::Primary) && !state.write_blocks.contains(old))
                .then_some(())
        })
        .map_err(|e| e.to_string())?;
        say(&format!("{old} takes writes again"));
        Ok(())
    }
}

fn failed(e: impl std::fmt::Display) -> Stop {
    Stop::Failed(e.to_string())
}

#[cfg(test)]
mod tests;
