//! One sync: ask the Sentinels, decide, write `redis_role` in a safe order. Effects go
//! through the `Sentinels` and `Cluster` traits; the outcome maps to Sentinel's exit codes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::nodes::{MappingError, NodeMap};
use super::plan::{Plan, plan};
use super::truth::{Truth, decide};
use crate::cluster::{Cluster, ClusterError, ClusterState, EPOCH_ATTRIBUTE, NodeName, Role};
use crate::config::Config;
use crate::sentinel::{Addr, SentinelError, SentinelView, Sentinels};

/// Why a sync stopped, in Sentinel's terms: retry later, or give up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// Exit 1: Sentinel retries (unreachable, no majority, no quorum, CIB busy, lock busy).
    #[error("{0} (will retry)")]
    Retry(String),
    /// Exit 2: retrying cannot help (bad arguments or config, unknown master, mapping).
    #[error("{0}")]
    GiveUp(String),
}

impl SyncError {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            SyncError::Retry(_) => 1,
            SyncError::GiveUp(_) => 2,
        }
    }
}

impl From<ClusterError> for SyncError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Transient { .. } => SyncError::Retry(e.to_string()),
            ClusterError::Permanent { .. } => SyncError::GiveUp(e.to_string()),
        }
    }
}

/// What a sync saw and did, for its one summary line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub(crate) epoch: u64,
    pub(crate) primary: Option<(NodeName, Addr)>,
    pub(crate) sentinels_reached: usize,
    pub(crate) plan: Plan,
    pub(crate) written: Vec<(NodeName, Role)>,
    pub(crate) waited: Duration,
    /// CIB reads while waiting for the block (each ~25 ms on a CIB file).
    pub(crate) wait_reads: u32,
    /// Nodes no longer waited for: the Sentinels reported their Redis down meanwhile.
    pub(crate) given_up: Vec<NodeName>,
    pub(crate) mapping_errors: Vec<MappingError>,
}

impl Report {
    pub(crate) fn summary(&self, dry_run: bool) -> String {
        let primary = self
            .primary
            .as_ref()
            .map_or("none".to_string(), |(n, a)| format!("{n} ({a})"));
        let changes: Vec<String> = if dry_run {
            let mut c: Vec<String> = self
                .plan
                .demotions
                .iter()
                .map(|(n, r)| format!("{n}={r}"))
                .collect();
            c.extend(self.plan.promotion.iter().map(|n| format!("{n}=primary")));
            c
        } else {
            self.written
                .iter()
                .map(|(n, r)| format!("{n}={r}"))
                .collect()
        };
        let verb = if dry_run { "would write" } else { "wrote" };
        let changes = if changes.is_empty() {
            "no change".to_string()
        } else {
            format!("{verb} {}", changes.join(", "))
        };
        let mut line = format!(
            "epoch {}, primary {primary}, {} Sentinels reached: {changes}",
            self.epoch, self.sentinels_reached
        );
        if !self.waited.is_zero() {
            line.push_str(&format!(
                "; waited {} ms ({} CIB read{}) for the old primary's write block",
                self.waited.as_millis(),
                self.wait_reads,
                if self.wait_reads == 1 { "" } else { "s" }
            ));
        }
        if !self.given_up.is_empty() {
            let nodes: Vec<String> = self.given_up.iter().map(|n| n.to_string()).collect();
            line.push_str(&format!(
                "; stopped waiting for {} (Redis down)",
                nodes.join(", ")
            ));
        }
        for e in &self.mapping_errors {
            line.push_str(&format!("; {e}"));
        }
        line
    }
}

/// The Sentinels' truth in Pacemaker's terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assignment {
    /// The role of every cluster node whose Redis the Sentinels know.
    pub(crate) desired: BTreeMap<NodeName, Role>,
    /// Nodes whose Redis the Sentinels report down.
    pub(crate) down: BTreeSet<NodeName>,
    /// The node to promote, and its Redis.
    pub(crate) primary: Option<(NodeName, Addr)>,
    /// The Redis addresses the Sentinels know on each node.
    pub(crate) redis: BTreeMap<NodeName, Vec<Addr>>,
    pub(crate) mapping_errors: Vec<MappingError>,
}

/// The inputs and effects of one sync.
pub(crate) struct Sync<'a, S: Sentinels, C: Cluster> {
    pub(crate) config: &'a Config,
    pub(crate) sentinels: &'a S,
    pub(crate) cluster: &'a C,
    /// Name resolution for cluster node names (when the config maps no node).
    pub(crate) resolve: &'a dyn Fn(&str) -> Vec<IpAddr>,
    pub(crate) dry_run: bool,
}

impl<S: Sentinels, C: Cluster> Sync<'_, S, C> {
    pub(crate) fn run(&self) -> (Report, Result<(), SyncError>) {
        let mut report = Report::default();
        let result = self.run_into(&mut report);
        (report, result)
    }

    fn run_into(&self, report: &mut Report) -> Result<(), SyncError> {
        let state = self.cluster.state()?;
        if !state.quorate {
            return Err(SyncError::Retry(
                "this node's partition has no quorum: writing nothing".into(),
            ));
        }
        let views = self.views()?;
        report.sentinels_reached = views.len();
        let truth =
            decide(&views, &self.config.sentinels).map_err(|e| SyncError::Retry(e.to_string()))?;
        report.epoch = truth.epoch;
        if let Some(applied) = state.applied_epoch.filter(|&e| e > truth.epoch) {
            return Err(stale(applied, truth.epoch));
        }
        let assignment = self.assign(&truth, &state);
        report.primary = assignment.primary.clone();
        report.mapping_errors = assignment.mapping_errors.clone();
        let (desired, down) = (assignment.desired, assignment.down);
        report.plan = plan(&state.roles, &desired, &down);
        if !self.dry_run {
            self.apply(report, &state)?;
        }
        if report.mapping_errors.is_empty() {
            Ok(())
        } else {
            Err(SyncError::GiveUp(
                "some Redis addresses map to no single node".into(),
            ))
        }
    }

    /// Maps the Sentinels' truth, by Redis address, to the cluster's nodes.
    pub(crate) fn assign(&self, truth: &Truth, state: &ClusterState) -> Assignment {
        let map = if self.config.nodes.is_empty() {
            let nodes: Vec<NodeName> = state.roles.keys().cloned().collect();
            NodeMap::resolving(&nodes, self.resolve)
        } else {
            NodeMap::from_config(&self.config.nodes)
        };
        let mut a = Assignment::default();
        for (addr, &role) in &truth.roles {
            match map.node_of(&addr.host) {
                Ok(node) => {
                    // Two addresses of one node disagreeing: the safer role wins.
                    let entry = a.desired.entry(node.clone()).or_insert(role);
                    *entry = (*entry).max(role);
                    a.redis.entry(node.clone()).or_default().push(addr.clone());
                    if role == Role::Primary {
                        a.primary = Some((node.clone(), addr.clone()));
                    }
                    if truth.down.contains(addr) {
                        a.down.insert(node.clone());
                    }
                }
                Err(e) => a.mapping_errors.push(e),
            }
        }
        // Only nodes the cluster knows can be written.
        a.desired.retain(|node, _| state.roles.contains_key(node));
        if a.primary
            .as_ref()
            .is_some_and(|(n, _)| a.desired.get(n) != Some(&Role::Primary))
        {
            a.primary = None;
        }
        a
    }

    /// Every Sentinel's view of the master (see [`views`]).
    pub(crate) fn views(&self) -> Result<Vec<SentinelView>, SyncError> {
        views(self.config, self.sentinels)
    }

    /// Asks the Sentinels again while waiting: nodes whose Redis they now report down, or
    /// a synced replica of `promotion`, leave `wait_for`; a view that no longer names `promotion` at our epoch stops the
    /// sync. No answer or no majority changes nothing: keep waiting.
    fn drop_down_nodes(
        &self,
        report: &mut Report,
        promotion: &NodeName,
        state: &ClusterState,
        wait_for: &mut Vec<NodeName>,
    ) -> Result<(), SyncError> {
        let Ok(views) = self.views() else {
            return Ok(());
        };
        let Ok(truth) = decide(&views, &self.config.sentinels) else {
            return Ok(());
        };
        let now = self.assign(&truth, state);
        let still = now.primary.as_ref().map(|(n, _)| n) == Some(promotion);
        if truth.epoch != report.epoch || !still {
            return Err(SyncError::Retry(format!(
                "the Sentinels moved on while this sync waited (config-epoch {}, primary {}): \
                 not promoting {promotion}",
                truth.epoch,
                now.primary
                    .as_ref()
                    .map_or("none".to_string(), |(n, _)| n.to_string())
            )));
        }
        wait_for.retain(|n| {
            let down = now.down.contains(n);
            if down {
                report.given_up.push(n.clone());
            }
            // Synced to the new primary by now (a replica resyncing after the switch, the
            // old master converted): it answers writes with READONLY, as in the plan.
            let synced = now.desired.get(n) == Some(&Role::Replica);
            !down && !synced
        });
        Ok(())
    }

    /// Writes the plan: the epoch first (from then on a sync with an older view writes
    /// nothing), the demotions, then, once the ex-primaries' writes are refused and the
    /// CIB still says what we planned from, the promotion.
    fn apply(&self, report: &mut Report, before: &ClusterState) -> Result<(), SyncError> {
        let plan = report.plan.clone();
        let first = plan
            .demotions
            .first()
            .map(|(n, _)| n)
            .or(plan.promotion.as_ref());
        if let Some(node) = first
            && before.applied_epoch.is_none_or(|e| e < report.epoch)
        {
            self.cluster.record_epoch(node, report.epoch)?;
        }
        for (node, role) in &plan.demotions {
            self.cluster.set_role(node, *role)?;
            report.written.push((node.clone(), *role));
        }
        let Some(promotion) = &plan.promotion else {
            return Ok(());
        };
        // One query per round answers both questions: are the ex-primaries' writes
        // refused yet, and does the CIB still say what we planned from (another node's
        // sync, from another view, may have written since we read)?
        let start = Instant::now();
        let mut rounds = 0;
        let mut wait_for = plan.wait_for.clone();
        let mut asked = Instant::now();
        loop {
            let now = self.cluster.state()?;
            rounds += 1;
            if let Some(applied) = now.applied_epoch.filter(|&e| e > report.epoch) {
                return Err(stale(applied, report.epoch));
            }
            if let Some((other, _)) = now.roles.iter().find(|(n, v)| {
                *n != promotion && v.as_deref().and_then(Role::parse) == Some(Role::Primary)
            }) {
                return Err(SyncError::Retry(format!(
                    "{other} became primary while this sync ran: not promoting {promotion}"
                )));
            }
            // A node whose Pacemaker died with it never starts its block: once the
            // Sentinels report its Redis down too (`s_down` comes down-after-milliseconds
            // after they relist the old master), nothing there takes writes.
            if asked.elapsed() >= SENTINEL_RECHECK {
                asked = Instant::now();
                self.drop_down_nodes(report, promotion, &now, &mut wait_for)?;
            }
            let open: Vec<&NodeName> = wait_for
                .iter()
                .filter(|n| !now.write_blocks.contains(*n))
                .collect();
            if open.is_empty() {
                break;
            }
            if start.elapsed() >= self.config.block_wait {
                report.waited = start.elapsed();
                report.wait_reads = rounds;
                let open: Vec<String> = open.iter().map(|n| n.to_string()).collect();
                return Err(SyncError::Retry(format!(
                    "{} demoted but RedisLBWriteBlock not running there after {} ms: not promoting {promotion} yet",
                    open.join(", "),
                    start.elapsed().as_millis()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Reading the CIB after the demotion is how a sync waits for the block: even the
        // first read counts (the re-check rides on it).
        if !plan.wait_for.is_empty() {
            report.waited = start.elapsed();
            report.wait_reads = rounds;
        }
        self.cluster.set_role(promotion, Role::Primary)?;
        report.written.push((promotion.clone(), Role::Primary));
        Ok(())
    }
}

/// The configured Sentinels, then any others they name, until all known were asked.
pub(crate) fn views(
    config: &Config,
    sentinels: &impl Sentinels,
) -> Result<Vec<SentinelView>, SyncError> {
    in_rounds(config, |round| {
        round
            .iter()
            .map(|addr| sentinels.view(addr, &config.master_name))
            .collect()
    })
}

/// [`views`], asking the Sentinels of each round all at once: the isolation guard cannot
/// wait out one timeout per unreachable Sentinel.
pub(crate) fn views_at_once<S: Sentinels + std::marker::Sync>(
    config: &Config,
    sentinels: &S,
) -> Result<Vec<SentinelView>, SyncError> {
    in_rounds(config, |round| {
        std::thread::scope(|scope| {
            let asks: Vec<_> = round
                .iter()
                .map(|addr| scope.spawn(move || sentinels.view(addr, &config.master_name)))
                .collect();
            asks.into_iter()
                .map(|ask| ask.join().expect("a Sentinel question does not panic"))
                .collect()
        })
    })
}

/// The configured Sentinels first, then in each round those the last answers named that
/// nobody asked yet. A wrong master name or password gives up; silence just counts less.
fn in_rounds(
    config: &Config,
    ask: impl Fn(&[Addr]) -> Vec<Result<SentinelView, SentinelError>>,
) -> Result<Vec<SentinelView>, SyncError> {
    let mut asked: BTreeSet<Addr> = BTreeSet::new();
    let mut round: Vec<Addr> = config.sentinels.clone();
    let mut views = Vec::new();
    while !round.is_empty() {
        round.retain(|addr| asked.insert(addr.clone()));
        let mut next = Vec::new();
        for answer in ask(&round) {
            match answer {
                Ok(view) => {
                    next.extend(view.sentinels.iter().cloned());
                    views.push(view);
                }
                Err(e @ (SentinelError::UnknownMaster { .. } | SentinelError::Auth { .. })) => {
                    return Err(SyncError::GiveUp(e.to_string()));
                }
                Err(SentinelError::Unreachable { .. } | SentinelError::Protocol { .. }) => {}
            }
        }
        next.retain(|addr| !asked.contains(addr));
        round = next;
    }
    Ok(views)
}

/// How often a sync waiting for a block asks the Sentinels again.
const SENTINEL_RECHECK: Duration = Duration::from_millis(500);

/// A view older than the roles in the CIB: a lagging Sentinel majority, or Sentinels
/// rebuilt from scratch (their epochs restart at 0).
fn stale(applied: u64, seen: u64) -> SyncError {
    SyncError::Retry(format!(
        "the roles were written from Sentinel config-epoch {applied}, newer than the newest \
         the reachable Sentinels know ({seen}): a stale view, writing nothing. If the \
         Sentinels were rebuilt and their epochs restarted, remove the record from every \
         node: crm_attribute --node NODE --name {EPOCH_ATTRIBUTE} --delete"
    ))
}
