//! The Sentinels' truth in Pacemaker's terms: each Redis address mapped to the one
//! cluster node it runs on. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::Resolve;
use super::nodes::{MappingError, NodeMap};
use super::truth::Truth;
use crate::cluster::{NodeName, Role};
use crate::config::Config;
use crate::sentinel::Addr;

/// The Sentinels' truth in Pacemaker's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// Maps `truth`, by Redis address, to `nodes` (the CIB's): through the config's `node`
/// lines, or, when it has none, the node names and what `resolve` gives for them.
pub(crate) fn assign(
    config: &Config,
    resolve: Resolve<'_>,
    truth: &Truth,
    nodes: &BTreeSet<NodeName>,
) -> Assignment {
    let map = if config.nodes.is_empty() {
        let nodes: Vec<NodeName> = nodes.iter().cloned().collect();
        NodeMap::resolving(&nodes, resolve)
    } else {
        NodeMap::from_config(&config.nodes)
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
    for node in config.nodes.keys() {
        if !nodes.contains(&NodeName(node.clone())) {
            a.mapping_errors.push(MappingError::UnknownNode {
                node: node.clone(),
                known: nodes.iter().cloned().collect(),
            });
        }
    }
    // Only nodes the cluster knows can be written.
    a.desired.retain(|node, _| nodes.contains(node));
    if a.primary
        .as_ref()
        .is_some_and(|(n, _)| a.desired.get(n) != Some(&Role::Primary))
    {
        a.primary = None;
    }
    a
}
