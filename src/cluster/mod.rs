//! Pacemaker's side: the `redis_role` node attributes, quorum, and where the block clones
//! run, through Pacemaker's own command-line tools (so `CIB_file` works in tests).

mod cib;
mod failure;
mod history;
mod pacemaker;

pub(crate) use cib::Cib;
#[cfg(feature = "fuzzing")]
pub(crate) use cib::parse as parse_cib;
pub(crate) use pacemaker::Pacemaker;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The node attribute the location rules read.
pub(crate) const ROLE_ATTRIBUTE: &str = "redis_role";
/// The permanent node attribute recording the Sentinel `config-epoch` the roles were last
/// written from (on the node the sync wrote first; the highest value counts): a sync from
/// an older one writes nothing. A node attribute, not a cluster property: a change under
/// crm_config makes the controller re-read its options and delays the next transition by
/// ~1 s, which the promotion would wait for.
pub(crate) const EPOCH_ATTRIBUTE: &str = "redis-ha-config-epoch";
/// The permanent node attribute `redis-ha switchover` sets on the primary it moves away
/// from: until this Unix time (seconds), no sync makes that node `primary` again, although
/// the Sentinels still call its Redis the master. Past it, it counts for nothing, so a
/// switchover that died cannot hold a node for longer than its own deadline.
pub(crate) const HOLD_ATTRIBUTE: &str = "redis-ha-hold";
/// The permanent node attribute `redis-ha switchover` sets on the old primary's node
/// before it changes any replica's `replica-priority`: what to restore, and from when a
/// sync may (a [`PriorityRecord`]). The switchover restores them and deletes it on every
/// path it lives through; if it dies (SIGKILL, its node lost), the next sync after the
/// deadline restores them: a priority left at 0 would keep Sentinel from ever promoting
/// that replica.
pub(crate) const PRIORITIES_ATTRIBUTE: &str = "redis-ha-priorities";

/// A [`PRIORITIES_ATTRIBUTE`] value: `<unix time> <host>:<port>=<priority>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PriorityRecord {
    /// Until then the switchover that wrote it may still run.
    pub(crate) until: u64,
    /// Each Redis (`host:port`, IPv6 hosts in brackets) and the priority to give it back.
    pub(crate) entries: Vec<(String, u32)>,
}

impl PriorityRecord {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let mut words = value.split_whitespace();
        let until = words.next()?.parse().ok()?;
        let entries = words
            .map(|w| {
                let (redis, priority) = w.rsplit_once('=')?;
                Some((redis.to_string(), priority.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        (!entries.is_empty()).then_some(PriorityRecord { until, entries })
    }
}

impl fmt::Display for PriorityRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.until)?;
        for (redis, priority) in &self.entries {
            write!(f, " {redis}={priority}")?;
        }
        Ok(())
    }
}

/// What a node may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    Primary,
    Replica,
    Fail,
}

impl Role {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Fail => "fail",
        }
    }

    /// Pacemaker compares attribute values case-insensitively; so do we.
    pub(crate) fn parse(value: &str) -> Option<Role> {
        [Role::Primary, Role::Replica, Role::Fail]
            .into_iter()
            .find(|r| r.word().eq_ignore_ascii_case(value.trim()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A `redis_role` value as the CIB holds it: one of ours, or anything else (a typo), which
/// the location rules compare as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleValue {
    Is(Role),
    Other(String),
}

impl RoleValue {
    pub(crate) fn parse(raw: &str) -> Self {
        Role::parse(raw).map_or_else(|| RoleValue::Other(raw.to_string()), RoleValue::Is)
    }

    /// The role, when the value is one.
    pub(crate) fn role(&self) -> Option<Role> {
        match self {
            RoleValue::Is(role) => Some(*role),
            RoleValue::Other(_) => None,
        }
    }
}

impl fmt::Display for RoleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleValue::Is(role) => role.fmt(f),
            RoleValue::Other(raw) => f.write_str(raw),
        }
    }
}

/// A Pacemaker node name (`uname`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeName(pub(crate) String);

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One read of the CIB: what the helper needs to decide, from a single query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterState {
    /// The `have-quorum` of the partition this node is in.
    pub(crate) quorate: bool,
    /// Every node in the CIB's nodes section, with its permanent `redis_role` (None: unset).
    pub(crate) roles: BTreeMap<NodeName, Option<RoleValue>>,
    /// The `config-epoch` the roles were last written from (`EPOCH_ATTRIBUTE`).
    pub(crate) applied_epoch: Option<u64>,
    /// Nodes where the status section shows `RedisLBWriteBlock` running (its writes are
    /// refused).
    pub(crate) write_blocks: BTreeSet<NodeName>,
    /// Nodes where the status section shows `RedisLBReadBlock` running (its reads are
    /// refused).
    pub(crate) read_blocks: BTreeSet<NodeName>,
    /// Nodes whose controller is online: Pacemaker can start a block there.
    pub(crate) online: BTreeSet<NodeName>,
    /// Nodes carrying a `HOLD_ATTRIBUTE`, with its Unix time (unreadable: 0, no hold).
    pub(crate) holds: BTreeMap<NodeName, u64>,
    /// Nodes carrying a `PRIORITIES_ATTRIBUTE`, with its raw value.
    pub(crate) priorities_left: BTreeMap<NodeName, String>,
    /// Where each node's permanent attributes are, to write several in one transaction.
    pub(crate) homes: BTreeMap<NodeName, NodeHome>,
    /// The configuration has Pacemaker start every `RedisLBReadBlock` of a transition
    /// before it stops any `RedisLBWriteBlock` (`crm-snippets`' order constraint): a
    /// promotion may then go in the same transaction as the demotions whose reads must be
    /// refused first. False where the CIB's constraints cannot be read (the ACL of the
    /// Sentinel scripts' own sync).
    pub(crate) reads_ordered: bool,
}

/// Where a node's permanent attributes are in the CIB: what [`Cluster::write`] needs to
/// change several at once, in one `cibadmin --modify`, as `crm_attribute` would one by
/// one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeHome {
    /// The `<node>`'s id (Corosync's node id).
    pub(crate) id: String,
    /// Each attribute's first nvpair (the one the rules and our parser read), by name:
    /// its attribute set's id and its own.
    pub(crate) nvpairs: BTreeMap<String, (String, String)>,
}

impl NodeHome {
    /// The attribute set and nvpair ids a write of `name` goes to: the existing nvpair,
    /// else the ids `crm_attribute` makes (`nodes-<id>`, `nodes-<id>-<name>`), so a write
    /// of ours and one of crm_attribute's never make two nvpairs of one name.
    pub(crate) fn place(&self, name: &str) -> (String, String) {
        self.nvpairs.get(name).cloned().unwrap_or_else(|| {
            let set = sanitize_id(&format!("nodes-{}", self.id));
            let nvpair = sanitize_id(&format!("{set}-{name}"));
            (set, nvpair)
        })
    }
}

/// An XML id as Pacemaker's `crm_xml_sanitize_id` makes one: every character outside
/// `[A-Za-z0-9_.-]` becomes `.`.
fn sanitize_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '.'
            }
        })
        .collect()
}

/// One permanent node attribute the sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `redis_role`.
    Role(Role),
    /// The Sentinel config-epoch the roles are written from ([`EPOCH_ATTRIBUTE`]).
    Epoch(u64),
}

impl Write {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Write::Role(_) => ROLE_ATTRIBUTE,
            Write::Epoch(_) => EPOCH_ATTRIBUTE,
        }
    }

    pub(crate) fn value(self) -> String {
        match self {
            Write::Role(role) => role.word().to_string(),
            Write::Epoch(epoch) => epoch.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// Not connected, busy, timed out: worth retrying.
    #[error("{command} failed (try again): {reason}")]
    Transient { command: String, reason: String },
    /// A tool is missing, or refuses us for good.
    #[error("{command} failed: {reason}")]
    Permanent { command: String, reason: String },
}

impl ClusterState {
    /// Every node in the CIB's nodes section.
    pub(crate) fn nodes(&self) -> BTreeSet<NodeName> {
        self.roles.keys().cloned().collect()
    }

    /// `node`'s permanent role, when it is one.
    pub(crate) fn role(&self, node: &NodeName) -> Option<Role> {
        self.roles.get(node).cloned().flatten()?.role()
    }

    /// Nodes held from `primary` at `now` (Unix seconds).
    pub(crate) fn held(&self, now: u64) -> BTreeSet<NodeName> {
        self.holds
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The Pacemaker effects the Sentinel helper needs, in its own words.
pub(crate) trait Cluster {
    /// The whole CIB, in one query.
    fn cib(&self) -> Result<Cib, ClusterError>;

    /// Quorum, every node's `redis_role`, the recorded epoch and where the write block
    /// runs, from one query, for a program that writes roles: a transient `redis_role`
    /// anywhere is an error, as the rules would follow it, not the permanent value.
    fn state(&self) -> Result<ClusterState, ClusterError> {
        self.cib()?.writable()
    }

    /// Writes a permanent `redis_role` for `node`.
    fn set_role(&self, node: &NodeName, role: Role) -> Result<(), ClusterError>;
    /// Writes permanent node attributes in one CIB transaction: all or none, one
    /// transition of the scheduler. `state` is the read the sync planned from (where the
    /// attributes are).
    fn write(&self, state: &ClusterState, writes: &[(NodeName, Write)])
    -> Result<(), ClusterError>;
    /// Holds `node` from `primary` until `until` (Unix seconds), or lifts the hold (None).
    fn set_hold(&self, node: &NodeName, until: Option<u64>) -> Result<(), ClusterError>;
    /// Records on `node` the priorities a switchover is changing, or deletes the record.
    fn set_priority_record(
        &self,
        node: &NodeName,
        record: Option<&PriorityRecord>,
    ) -> Result<(), ClusterError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_priority_record_reads_back_what_it_wrote_and_nothing_else() {
        let r = PriorityRecord {
            until: 1_796_331_700,
            entries: vec![("10.0.0.2:6379".into(), 100), ("[fd00::3]:6379".into(), 0)],
        };
        assert_eq!(
            r.to_string(),
            "1796331700 10.0.0.2:6379=100 [fd00::3]:6379=0"
        );
        assert_eq!(PriorityRecord::parse(&r.to_string()), Some(r));
        for bad in [
            "",
            "soon 10.0.0.2:6379=100",
            "17 10.0.0.2:6379",
            "17 a=-1",
            "17",
        ] {
            assert_eq!(PriorityRecord::parse(bad), None, "{bad:?}");
        }
    }
}
