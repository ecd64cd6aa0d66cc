//! One sync: observe the cluster, plan, write `redis_role` in a safe order. Effects go
//! through the `Sentinels` and `Cluster` traits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::SyncError;
use super::plan::{hold, plan};
use super::report::Report;
use crate::cluster::{
    Cluster, ClusterState, NodeName, PRIORITIES_ATTRIBUTE, PriorityRecord, Role, Write,
};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::observe::caught_up::{CATCH_UP_POLL, CATCH_UP_WAIT, Lag, lag};
use crate::observe::{
    Mapped, MappingError, ObserveError, Resolve, Verdict, observe_in_order, verdict,
};
use crate::sentinel::{RedisServers, Sentinels, parse_addr};

/// Seconds since the Unix epoch (a clock before it counts as 0: no hold is then in force,
/// as with no hold at all).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How often a sync waiting for a block asks the Sentinels again (counted from when it
/// first asked). Often: a sync woken by the first `+sdown` planned from one Sentinel's
/// word, and the others call the lost master down within tens of milliseconds, which
/// ends the wait for a block that a dead node's Pacemaker may start late or never. An
/// ask is one short exchange with each Sentinel.
const SENTINEL_RECHECK: Duration = Duration::from_millis(100);

/// How long a sync of the service leaves a promotion to the promoted node's own sync
/// (see [`Sync::courtesy`]): about what a failover's whole sync takes under load (0.4-0.6
/// s in drill 1), so that in the common case one node writes, not three at once.
pub(crate) const COURTESY: Duration = Duration::from_millis(600);

/// The inputs and effects of one sync.
pub(crate) struct Sync<'a, S: Sentinels, C: Cluster> {
    pub(crate) config: &'a Config,
    pub(crate) sentinels: &'a S,
    pub(crate) cluster: &'a C,
    /// The Redis servers, to give back what a switchover that died left (None: their
    /// credentials are unreadable).
    pub(crate) redis: Option<&'a dyn RedisServers>,
    /// Name resolution for cluster node names (when the config maps no node).
    pub(crate) resolve: Resolve<'a>,
    pub(crate) dry_run: bool,
    /// This node, in a sync of the service (`--every`), which every node runs at the same
    /// events: a promotion of another node whose Pacemaker is online is left to that
    /// node's own sync for [`COURTESY`], then this one observes again and writes what is
    /// still to be written. Three syncs writing the same at once only queue behind each
    /// other in the CIB and restart the scheduler's transition. None: no wait (Sentinel's
    /// scripts syncing themselves, `redis-ha sync`).
    pub(crate) courtesy: Option<&'a NodeName>,
    /// The run's (a Sentinel script's own sync has one): the catch-up and block waits end
    /// at it too. The effects above carry the same one.
    pub(crate) deadline: Deadline,
}

impl<S: Sentinels + std::marker::Sync, C: Cluster + std::marker::Sync> Sync<'_, S, C> {
    pub(crate) fn run(&self) -> (Report, Result<(), SyncError>) {
        let mut report = Report::default();
        let result = self.run_into(&mut report);
        (report, result)
    }

    fn run_into(&self, report: &mut Report) -> Result<(), SyncError> {
        let started = Instant::now();
        let seen = observe_in_order(self.config, self.cluster, self.sentinels, self.resolve);
        report.observing = started.elapsed();
        let state = seen.cib?.writable()?;
        if !state.quorate {
            return Err(SyncError::NoQuorum);
        }
        self.give_back_priorities(report, &state);
        let mapped = seen.sentinels.inspect_err(|e| {
            if let ObserveError::NoMajority { majority: n, .. } = e {
                report.sentinels_reached = n.reached;
            }
        })?;
        let truth = &mapped.verdict.truth;
        report.sentinels_reached = truth.reached;
        let known: BTreeSet<_> = mapped
            .verdict
            .views
            .iter()
            .flat_map(|v| std::iter::once(&v.sentinel).chain(v.sentinels.iter().map(|p| &p.addr)))
            .cloned()
            .collect();
        report.sentinels = known.into_iter().collect();
        report.epoch = truth.epoch;
        if let Some(applied) = state.applied_epoch.filter(|&e| e > truth.epoch) {
            return Err(SyncError::Stale {
                applied,
                seen: truth.epoch,
            });
        }
        let mut assignment = mapped.assignment;
        report.held = hold(&mut assignment.desired, &state.held(unix_now()));
        report.primary = assignment.primary.clone();
        report.mapping_errors = assignment.mapping_errors.clone();
        if report.mapping_errors.iter().any(|e| e.is_config_error()) {
            return Err(SyncError::UnknownNodes);
        }
        // A node name whose lookup has not finished: its Redis, perhaps the primary, maps
        // to no node, and the plan would demote a `primary` the Sentinels seem not to
        // name. Nothing is written; the retry (or the next period) maps it. Meanwhile the
        // guard refuses what a node cannot confirm.
        let late: BTreeSet<&NodeName> = report
            .mapping_errors
            .iter()
            .filter_map(MappingError::late_names)
            .flatten()
            .collect();
        if !late.is_empty() {
            return Err(SyncError::ResolvedLate {
                names: late.into_iter().cloned().collect(),
            });
        }
        self.confirm_caught_up(report, &state, &mut assignment);
        report.plan = plan(&state.roles, &assignment.desired, &assignment.down);
        if let (Some(me), Some(promotion)) = (self.courtesy, &report.plan.promotion)
            && promotion != me
            && state.online.contains(promotion)
            && !self.dry_run
        {
            std::thread::sleep(COURTESY);
            *report = Report {
                deferred_to: Some(promotion.clone()),
                ..Report::default()
            };
            return Sync {
                courtesy: None,
                ..*self
            }
            .run_into(report);
        }
        if !self.dry_run {
            self.apply(report, &state, &assignment.desired, started)?;
        }
        if report.mapping_errors.is_empty() {
            Ok(())
        } else {
            Err(SyncError::Unmapped)
        }
    }

    /// Gives a node its reads back (`replica` from `fail` or unset) only once its Redis has
    /// what the primary acknowledged (see `caught_up`); until then it stays `fail` and a
    /// later sync looks again. Waits up to [`CATCH_UP_WAIT`] (and not past the deadline)
    /// when this sync promotes nobody (a promotion is not delayed for reads). Without
    /// Redis credentials, as before: the Sentinels' word.
    fn confirm_caught_up(
        &self,
        report: &mut Report,
        state: &ClusterState,
        assignment: &mut crate::observe::Assignment,
    ) {
        let (Some(redis), Some((primary_node, primary))) = (self.redis, assignment.primary.clone())
        else {
            return;
        };
        let granting: Vec<NodeName> = assignment
            .desired
            .iter()
            .filter(|(n, role)| {
                **role == Role::Replica
                    && !matches!(state.role(n), Some(Role::Replica | Role::Primary))
            })
            .map(|(n, _)| n.clone())
            .collect();
        let promoting = state.role(&primary_node) != Some(Role::Primary);
        let wait = if promoting || self.dry_run {
            Duration::ZERO
        } else {
            self.deadline.bound(CATCH_UP_WAIT)
        };
        let start = Instant::now();
        for node in granting {
            let Some(addr) = assignment.redis.get(&node).and_then(|a| a.first()) else {
                continue;
            };
            loop {
                match lag(redis, &primary, addr) {
                    Lag::CaughtUp => break,
                    Lag::Behind(why) if start.elapsed() >= wait => {
                        assignment.desired.insert(node.clone(), Role::Fail);
                        report.behind.push((node.clone(), why));
                        break;
                    }
                    Lag::Behind(_) => std::thread::sleep(CATCH_UP_POLL),
                }
            }
        }
    }

    /// Restores the `replica-priority` values a switchover recorded and did not live to
    /// restore, once its deadline has passed (before it, it may still be running).
    fn give_back_priorities(&self, report: &mut Report, state: &ClusterState) {
        let now = unix_now();
        for (node, raw) in &state.priorities_left {
            let Some(record) = PriorityRecord::parse(raw) else {
                report.left.push(format!(
                    "{node} has an unreadable {PRIORITIES_ATTRIBUTE} {raw:?}: restore those \
                     priorities by hand, then delete it"
                ));
                continue;
            };
            if record.until > now {
                continue;
            }
            let Some(redis) = self.redis else {
                report.left.push(format!(
                    "a switchover left replica priorities at 0 ({record}); no Redis \
                     credentials to restore them"
                ));
                continue;
            };
            if self.dry_run {
                report.left.push(format!(
                    "would restore priorities left by a switchover: {record}"
                ));
                continue;
            }
            let mut done = true;
            for (at, priority) in &record.entries {
                let restored = parse_addr(at, 6379)
                    .map_err(|e| e.to_string())
                    .and_then(|addr| {
                        redis
                            .set_priority(&addr, *priority)
                            .map_err(|e| e.to_string())
                    });
                match restored {
                    Ok(()) => report.left.push(format!(
                        "restored replica-priority {priority} of {at} (left by a switchover)"
                    )),
                    Err(e) => {
                        done = false;
                        report.left.push(format!(
                            "cannot restore replica-priority {priority} of {at}: {e}"
                        ));
                    }
                }
            }
            if done && let Err(e) = self.cluster.set_priority_record(node, None) {
                report.left.push(format!(
                    "cannot delete {PRIORITIES_ATTRIBUTE} on {node}: {e}"
                ));
            }
        }
    }

    /// What the Sentinels said again while waiting (`fresh`): nodes whose Redis they now report down, or
    /// a synced replica of `promotion`, leave `wait_for`; a view that no longer names
    /// `promotion` at our epoch stops the sync. No answer or no majority changes nothing:
    /// keep waiting.
    fn drop_down_nodes(
        &self,
        report: &mut Report,
        promotion: &NodeName,
        state: &ClusterState,
        fresh: Result<Verdict, ObserveError>,
        wait_for: &mut Vec<NodeName>,
        read_wait: &mut Vec<NodeName>,
    ) -> Result<(), SyncError> {
        let Ok(verdict) = fresh else {
            return Ok(());
        };
        let now = Mapped::new(self.config, self.resolve, verdict, &state.nodes());
        let (epoch, now) = (now.verdict.truth.epoch, now.assignment);
        let primary = now.primary.as_ref().map(|(n, _)| n.clone());
        if epoch != report.epoch || primary.as_ref() != Some(promotion) {
            return Err(SyncError::MovedOn {
                epoch,
                primary,
                promotion: promotion.clone(),
            });
        }
        // Synced to the new primary by now (a replica resyncing after the switch, the old
        // master converted): it answers writes with READONLY and has what the new primary
        // takes, as in the plan.
        let synced = |n: &NodeName| now.desired.get(n) == Some(&Role::Replica);
        wait_for.retain(|n| {
            let down = now.down.contains(n);
            if down {
                report.given_up.push(n.clone());
            }
            !down && !synced(n)
        });
        read_wait.retain(|n| !now.down.contains(n) && !synced(n));
        Ok(())
    }

    /// Writes the plan: the epoch and the demotions in one transaction (from then on a
    /// sync with an older view writes nothing), then, once the ex-primaries' writes and
    /// the demoted nodes' reads are refused and the CIB still says what we planned from,
    /// the promotion. Where Pacemaker orders the reads' refusal before the promotion
    /// itself (`ClusterState::reads_ordered`) and no write block is to be waited for,
    /// all of it in one transaction.
    fn apply(
        &self,
        report: &mut Report,
        before: &ClusterState,
        desired: &BTreeMap<NodeName, Role>,
        mut asked: Instant,
    ) -> Result<(), SyncError> {
        let plan = report.plan.clone();
        let first = plan
            .demotions
            .first()
            .map(|(n, _)| n)
            .or(plan.promotion.as_ref());
        let new_epoch = before.applied_epoch.is_none_or(|e| e < report.epoch);
        let mut writes: Vec<(NodeName, Write)> = first
            .filter(|_| new_epoch)
            .map(|node| (node.clone(), Write::Epoch(report.epoch)))
            .into_iter()
            .collect();
        writes.extend(
            plan.demotions
                .iter()
                .map(|(node, role)| (node.clone(), Write::Role(*role))),
        );
        let Some(promotion) = &plan.promotion else {
            self.write(report, before, &writes)?;
            report.written.extend(plan.demotions);
            return Ok(());
        };
        // Nothing written before it and nobody to wait for: the CIB this sync read first
        // is as recent as a second read would be (only the Sentinels were asked since),
        // so the promotion goes at once. The common case at a crash: the lost master's
        // node was demoted by an earlier sync, when the Sentinels first called it down.
        if writes.is_empty()
            && plan.wait_for.is_empty()
            && reads_open(&plan.read_wait, before).is_empty()
        {
            self.write(
                report,
                before,
                &[(promotion.clone(), Write::Role(Role::Primary))],
            )?;
            report.written.push((promotion.clone(), Role::Primary));
            return Ok(());
        }
        // Pacemaker refuses the demoted nodes' reads before it opens the promoted node's
        // writes, in one transition (the shipped order constraint): everything in one
        // transaction, unless a write block must yet be seen running (a live master's:
        // one clone's start cannot be ordered before another instance's stop). Every
        // node the Sentinels know is written, unchanged ones too: a concurrent sync from
        // another view (this one does not read the CIB again) then either wins whole or
        // loses whole, never leaving two nodes `primary`.
        if before.reads_ordered
            && plan
                .wait_for
                .iter()
                .all(|n| before.write_blocks.contains(n))
        {
            let demoted: Vec<&NodeName> = plan.demotions.iter().map(|(n, _)| n).collect();
            let unchanged = desired
                .iter()
                .filter(|(n, _)| *n != promotion && !demoted.contains(n))
                .map(|(n, role)| (n.clone(), Write::Role(*role)));
            writes.extend(unchanged);
            writes.push((promotion.clone(), Write::Role(Role::Primary)));
            self.write(report, before, &writes)?;
            report.written.extend(plan.demotions.iter().cloned());
            report.written.push((promotion.clone(), Role::Primary));
            return Ok(());
        }
        self.write(report, before, &writes)?;
        report.written.extend(plan.demotions.iter().cloned());
        // One query per round answers both questions: are the ex-primaries' writes
        // refused yet, and does the CIB still say what we planned from (another node's
        // sync, from another view, may have written since we read)?
        let start = Instant::now();
        let block_wait = self.deadline.bound(self.config.block_wait);
        let mut rounds = 0;
        let mut wait_for = plan.wait_for.clone();
        let mut read_wait = plan.read_wait.clone();
        let not_running = |report: &mut Report, (open, reads_open), rounds| {
            report.waited = start.elapsed();
            report.wait_reads = rounds;
            SyncError::BlockNotRunning {
                open,
                reads_open,
                waited: start.elapsed(),
                promotion: promotion.clone(),
            }
        };
        // What the last read left open.
        let mut last: Option<(Vec<NodeName>, Vec<NodeName>)> = None;
        let now = loop {
            // The Sentinels, when due, asked while the CIB is read: a round takes the
            // longer of the two, not both.
            let due = asked.elapsed() >= SENTINEL_RECHECK;
            if due {
                asked = Instant::now();
            }
            let (now, fresh) = std::thread::scope(|scope| {
                let fresh = due.then(|| scope.spawn(|| verdict(self.config, self.sentinels)));
                let now = self.cluster.state();
                let fresh = fresh.map(|f| f.join().expect("asking the Sentinels does not panic"));
                (now, fresh)
            });
            let now = match (now, last.take()) {
                (Ok(now), _) => now,
                // The run's deadline cut this read short: the last one's answer stands.
                (Err(_), Some(left)) if self.deadline.passed() => {
                    return Err(not_running(report, left, rounds));
                }
                (Err(e), _) => return Err(e.into()),
            };
            rounds += 1;
            if let Some(applied) = now.applied_epoch.filter(|&e| e > report.epoch) {
                return Err(SyncError::Stale {
                    applied,
                    seen: report.epoch,
                });
            }
            if let Some(other) = now
                .nodes()
                .into_iter()
                .find(|n| n != promotion && now.role(n) == Some(Role::Primary))
            {
                return Err(SyncError::OtherPrimary {
                    other,
                    promotion: promotion.clone(),
                });
            }
            // A node whose Pacemaker died with it never starts its block: once the
            // Sentinels report its Redis down too (`s_down` comes down-after-milliseconds
            // after they relist the old master), nothing there takes writes.
            if let Some(fresh) = fresh {
                self.drop_down_nodes(
                    report,
                    promotion,
                    &now,
                    fresh,
                    &mut wait_for,
                    &mut read_wait,
                )?;
            }
            let open: Vec<NodeName> = wait_for
                .iter()
                .filter(|n| !now.write_blocks.contains(*n))
                .cloned()
                .collect();
            let reads_open = reads_open(&read_wait, &now);
            if open.is_empty() && reads_open.is_empty() {
                break now;
            }
            if start.elapsed() >= block_wait {
                return Err(not_running(report, (open, reads_open), rounds));
            }
            last = Some((open, reads_open));
            std::thread::sleep(Duration::from_millis(50));
        };
        // Reading the CIB after the demotion is how a sync waits for the block: even the
        // first read counts (the re-check rides on it).
        if !plan.wait_for.is_empty() || !plan.read_wait.is_empty() {
            report.waited = start.elapsed();
            report.wait_reads = rounds;
        }
        // Another node's sync, from the same view, promoted it while we waited: a second
        // write of the same value would only queue behind the transition it started.
        if now.role(promotion) == Some(Role::Primary) {
            return Ok(());
        }
        self.write(
            report,
            &now,
            &[(promotion.clone(), Write::Role(Role::Primary))],
        )?;
        report.written.push((promotion.clone(), Role::Primary));
        Ok(())
    }

    /// One CIB transaction, timed for the report (nothing to write: none).
    fn write(
        &self,
        report: &mut Report,
        state: &ClusterState,
        writes: &[(NodeName, Write)],
    ) -> Result<(), SyncError> {
        if writes.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let written = self.cluster.write(state, writes);
        report.writing += started.elapsed();
        report.transactions += 1;
        Ok(written?)
    }
}

/// Of `nodes`, those whose `RedisLBReadBlock` is not running yet although Pacemaker could
/// start it (a node whose controller is offline runs nothing of ours; its guard, which
/// cannot ask Pacemaker, refuses its reads).
fn reads_open(nodes: &[NodeName], state: &ClusterState) -> Vec<NodeName> {
    nodes
        .iter()
        .filter(|n| state.online.contains(*n) && !state.read_blocks.contains(*n))
        .cloned()
        .collect()
}
