//! The one line a sync logs: what it saw, what it wrote (or would), what it waited for.

use std::time::Duration;

use super::plan::Plan;
use crate::cluster::{NodeName, Role};
use crate::observe::MappingError;
use crate::sentinel::Addr;

/// What a sync saw and did, for its one summary line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub(crate) epoch: u64,
    pub(crate) primary: Option<(NodeName, Addr)>,
    pub(crate) sentinels_reached: usize,
    /// Every Sentinel the answers named (the askers' own and their peers).
    pub(crate) sentinels: Vec<crate::sentinel::Addr>,
    pub(crate) plan: Plan,
    pub(crate) written: Vec<(NodeName, Role)>,
    pub(crate) waited: Duration,
    /// CIB reads while waiting for the block (each ~25 ms on a CIB file).
    pub(crate) wait_reads: u32,
    /// Nodes no longer waited for: the Sentinels reported their Redis down meanwhile.
    pub(crate) given_up: Vec<NodeName>,
    pub(crate) mapping_errors: Vec<MappingError>,
    /// Nodes the Sentinels call primary that a switchover holds from it.
    pub(crate) held: Vec<NodeName>,
    /// What a switchover that died left behind, and what became of it.
    pub(crate) left: Vec<String>,
    /// Nodes whose reads stay refused until their Redis has caught up with the primary,
    /// and why.
    pub(crate) behind: Vec<(NodeName, String)>,
    /// Reading the CIB and asking the Sentinels, before any decision.
    pub(crate) observing: Duration,
    /// In CIB writes (one transaction each), and how many.
    pub(crate) writing: Duration,
    pub(crate) transactions: u32,
    /// The node whose own sync this one left a promotion to for `COURTESY` first.
    pub(crate) deferred_to: Option<NodeName>,
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
                "; waited {} ms ({} CIB read{}) for the demoted nodes' blocks",
                self.waited.as_millis(),
                self.wait_reads,
                if self.wait_reads == 1 { "" } else { "s" }
            ));
        }
        if let Some(node) = &self.deferred_to {
            line.push_str(&format!(
                "; after leaving the promotion to {node}'s own sync for {} ms",
                super::run::COURTESY.as_millis()
            ));
        }
        if self.transactions > 0 {
            line.push_str(&format!(
                "; observed in {} ms, {} CIB write{} in {} ms",
                self.observing.as_millis(),
                self.transactions,
                if self.transactions == 1 { "" } else { "s" },
                self.writing.as_millis()
            ));
        }
        for (node, why) in &self.behind {
            line.push_str(&format!(
                "; {node} stays {} until it has caught up with the primary ({why})",
                Role::Fail
            ));
        }
        if !self.given_up.is_empty() {
            let nodes: Vec<String> = self.given_up.iter().map(|n| n.to_string()).collect();
            line.push_str(&format!(
                "; stopped waiting for {} (Redis down)",
                nodes.join(", ")
            ));
        }
        if !self.held.is_empty() {
            let nodes: Vec<String> = self.held.iter().map(|n| n.to_string()).collect();
            line.push_str(&format!(
                "; {} held from primary by a switchover",
                nodes.join(", ")
            ));
        }
        for l in &self.left {
            line.push_str(&format!("; {l}"));
        }
        for e in &self.mapping_errors {
            line.push_str(&format!("; {e}"));
        }
        line
    }
}
