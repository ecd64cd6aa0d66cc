//! `redis-ha cluster-debug` (hidden): the real `Pacemaker` one call at a time, for tests
//! and for looking at what the Sentinel helper would see. Sentinel's contract: retry on a
//! transient failure, give up on a permanent one.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cluster::{Cluster, ClusterState, NodeName, Pacemaker, Role, Write};
use crate::deadline::Deadline;
use crate::exit::HelperExit;

#[derive(Debug, Args)]
pub(crate) struct DebugArgs {
    /// Longest wait for any one Pacemaker tool, in milliseconds.
    #[arg(long, default_value = "10000")]
    timeout_ms: u64,
    #[command(subcommand)]
    op: DebugOp,
}

#[derive(Debug, Subcommand)]
enum DebugOp {
    /// Print `quorate yes|no`, then `NODE ROLE` per node (`-` when unset).
    State,
    /// Write a permanent redis_role for NODE.
    SetRole {
        node: String,
        /// primary, replica or fail
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Print `active` if RedisLBWriteBlock-clone runs on NODE, else `inactive`.
    WriteBlock { node: String },
    /// Print `yes` if the configuration starts the read blocks of a transition before
    /// it stops a write block (so the sync promotes in its demotions' transaction), else `no`.
    ReadsOrdered,
    /// Write in one transaction, as the sync does: NODE=ROLE and NODE:epoch=N, in order.
    Write {
        #[arg(required = true, value_parser = parse_write)]
        writes: Vec<(NodeName, Write)>,
    },
}

fn parse_write(v: &str) -> Result<(NodeName, Write), String> {
    if let Some((node, epoch)) = v.split_once(":epoch=") {
        let epoch = epoch
            .parse()
            .map_err(|_| format!("{epoch:?} is not an epoch (a number)"))?;
        return Ok((NodeName(node.to_string()), Write::Epoch(epoch)));
    }
    let (node, role) = v
        .split_once('=')
        .ok_or_else(|| format!("{v:?}: expected NODE=ROLE or NODE:epoch=N"))?;
    Ok((NodeName(node.to_string()), Write::Role(parse_role(role)?)))
}

fn parse_role(v: &str) -> Result<Role, String> {
    Role::parse(v).ok_or_else(|| format!("{v:?} is not a role: use primary, replica or fail"))
}

/// `state`'s text: stable, one fact per line.
fn state_text(state: &ClusterState) -> String {
    let mut text = format!("quorate {}\n", if state.quorate { "yes" } else { "no" });
    for (node, role) in &state.roles {
        let role = role.as_ref().map_or("-".to_string(), ToString::to_string);
        text.push_str(&format!("{node} {role}\n"));
    }
    text
}

pub(crate) fn run(args: DebugArgs) -> HelperExit {
    let cluster = Pacemaker {
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        deadline: Deadline::NONE,
    };
    let result = match args.op {
        DebugOp::State => cluster.state().map(|s| state_text(&s)),
        DebugOp::SetRole { node, role } => cluster
            .set_role(&NodeName(node.clone()), role)
            .map(|()| format!("{node} {role}\n")),
        DebugOp::Write { writes } => cluster
            .state()
            .and_then(|s| cluster.write(&s, &writes))
            .map(|()| String::new()),
        DebugOp::WriteBlock { node } => cluster
            .state()
            .map(|s| s.write_blocks.contains(&NodeName(node)))
            .map(|on| format!("{}\n", if on { "active" } else { "inactive" })),
        DebugOp::ReadsOrdered => cluster
            .state()
            .map(|s| format!("{}\n", if s.reads_ordered { "yes" } else { "no" })),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            HelperExit::Done
        }
        Err(e) => {
            eprintln!("redis-ha cluster-debug: {e}");
            (&e).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RoleValue;
    use std::collections::BTreeMap;

    #[test]
    fn state_text_is_one_fact_per_line() {
        let state = ClusterState {
            quorate: true,
            roles: BTreeMap::from([
                (NodeName("node2".into()), None),
                (NodeName("node1".into()), Some(RoleValue::Is(Role::Primary))),
            ]),
            applied_epoch: None,
            write_blocks: Default::default(),
            read_blocks: Default::default(),
            online: Default::default(),
            holds: Default::default(),
            priorities_left: Default::default(),
            homes: Default::default(),
            reads_ordered: false,
        };
        assert_eq!(state_text(&state), "quorate yes\nnode1 primary\nnode2 -\n");
        let lost = ClusterState {
            quorate: false,
            roles: BTreeMap::new(),
            applied_epoch: None,
            write_blocks: Default::default(),
            read_blocks: Default::default(),
            online: Default::default(),
            holds: Default::default(),
            priorities_left: Default::default(),
            homes: Default::default(),
            reads_ordered: false,
        };
        assert_eq!(state_text(&lost), "quorate no\n");
    }
}
