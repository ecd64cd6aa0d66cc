//! The real `Cluster`: cibadmin and crm_attribute, each bounded in time.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use super::cib::{self, Cib};
use super::failure::{self, Failure};
use super::{
    Cluster, ClusterError, ClusterState, HOLD_ATTRIBUTE, NodeName, PRIORITIES_ATTRIBUTE,
    PriorityRecord, ROLE_ATTRIBUTE, Role, Write,
};
use quick_xml::escape::escape;

use crate::child::{self, End};
use crate::deadline::Deadline;

/// Runs Pacemaker's tools from PATH; they inherit our environment, so `CIB_file` works
/// as it does for them.
pub(crate) struct Pacemaker {
    /// The longest any one tool may take before it is killed.
    pub(crate) timeout: Duration,
    /// The run's: a tool gets what is left of it when that is less than `timeout`, and
    /// is not started once it has passed.
    pub(crate) deadline: Deadline,
}

impl Pacemaker {
    /// The bound the Sentinel helper and `redis-ha status` give each tool: well inside
    /// Sentinel's 60 s kill, long enough for a busy CIB.
    pub(crate) fn for_helper() -> Self {
        Pacemaker {
            timeout: std::time::Duration::from_secs(10),
            deadline: Deadline::NONE,
        }
    }

    /// The same tools, under the run's `deadline`.
    pub(crate) fn within(self, deadline: Deadline) -> Self {
        Pacemaker { deadline, ..self }
    }

    /// Runs `program args`; its stdout when it exits 0.
    fn run(&self, program: &str, args: &[&str]) -> Result<String, ClusterError> {
        let command = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let timeout = self.deadline.bound(self.timeout);
        if timeout.is_zero() {
            return Err(failure::error(&command, Failure::OutOfTime));
        }
        let done = child::run(Command::new(program).args(args), timeout)
            .map_err(|e| failure::error(&command, Failure::Spawn(e.kind())))?;
        let stderr = done.stderr_text();
        let failed = match done.end {
            End::Code(0) => return Ok(done.stdout_text()),
            End::Code(code) => Failure::Exit(code, &stderr),
            End::Signal(signal) => Failure::Signal(signal),
            End::TimedOut(limit) => Failure::TimedOut(limit),
        };
        Err(failure::error(&command, failed))
    }
}

impl Pacemaker {
    /// Sets (or, with `None`, deletes) a permanent node attribute.
    fn node_attribute(
        &self,
        node: &NodeName,
        name: &str,
        value: Option<String>,
    ) -> Result<(), ClusterError> {
        let mut args = vec!["--node", &node.0, "--name", name];
        match &value {
            Some(v) => args.extend(["--update", v.as_str()]),
            None => args.push("--delete"),
        }
        self.run("crm_attribute", &args).map(|_| ())
    }
}

impl Cluster for Pacemaker {
    /// One `cibadmin --query`, parsed.
    fn cib(&self) -> Result<Cib, ClusterError> {
        let xml = self.run("cibadmin", &["--query"])?;
        cib::parse(&xml).map_err(|e| ClusterError::Permanent {
            command: "cibadmin --query".into(),
            reason: format!("cannot read its output: {e}"),
        })
    }

    /// `crm_attribute --update` without a lifetime: permanent, in the nodes section.
    fn set_role(&self, node: &NodeName, role: Role) -> Result<(), ClusterError> {
        self.node_attribute(node, ROLE_ATTRIBUTE, Some(role.word().to_string()))
    }

    /// A permanent node attribute, like the roles; `--delete` lifts it.
    fn set_hold(&self, node: &NodeName, until: Option<u64>) -> Result<(), ClusterError> {
        self.node_attribute(node, HOLD_ATTRIBUTE, until.map(|u| u.to_string()))
    }

    fn set_priority_record(
        &self,
        node: &NodeName,
        record: Option<&PriorityRecord>,
    ) -> Result<(), ClusterError> {
        self.node_attribute(node, PRIORITIES_ATTRIBUTE, record.map(|r| r.to_string()))
    }

    /// One `cibadmin --modify` of the nodes section: one CIB transaction however many
    /// attributes, where `crm_attribute` takes one each (and a node-name lookup).
    fn write(
        &self,
        state: &ClusterState,
        writes: &[(NodeName, Write)],
    ) -> Result<(), ClusterError> {
        if writes.is_empty() {
            return Ok(());
        }
        let xml = modification(state, writes)?;
        self.run(
            "cibadmin",
            &["--modify", "--scope", "nodes", "--xml-text", &xml],
        )
        .map(|_| ())
    }
}

/// A node's attribute sets by id, each with its nvpairs (id, what).
type Sets = BTreeMap<String, Vec<(String, Write)>>;

/// The `<nodes>` document `cibadmin --modify` merges by id: each node with only its id
/// (nothing of it changes), each attribute set and nvpair where [`NodeHome::place`] puts
/// them.
fn modification(
    state: &ClusterState,
    writes: &[(NodeName, Write)],
) -> Result<String, ClusterError> {
    let mut by_node: BTreeMap<&NodeName, Sets> = BTreeMap::new();
    for (node, write) in writes {
        let home = state
            .homes
            .get(node)
            .ok_or_else(|| ClusterError::Permanent {
                command: "cibadmin --modify".into(),
                reason: format!("node {node} is not in the CIB's nodes section"),
            })?;
        let (set, nvpair) = home.place(write.name());
        by_node
            .entry(node)
            .or_default()
            .entry(set)
            .or_default()
            .push((nvpair, *write));
    }
    let mut xml = String::from("<nodes>");
    for (node, sets) in by_node {
        let id = &state.homes[node].id;
        xml.push_str(&format!("<node id=\"{}\">", escape(id)));
        for (set, nvpairs) in sets {
            xml.push_str(&format!("<instance_attributes id=\"{}\">", escape(&set)));
            for (id, write) in nvpairs {
                xml.push_str(&format!(
                    "<nvpair id=\"{}\" name=\"{}\" value=\"{}\"/>",
                    escape(&id),
                    write.name(),
                    write.value()
                ));
            }
            xml.push_str("</instance_attributes>");
        }
        xml.push_str("</node>");
    }
    xml.push_str("</nodes>");
    Ok(xml)
}
