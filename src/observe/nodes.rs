//! Redis addresses (as Sentinel announces them) to Pacemaker nodes: exact matches only.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::cluster::NodeName;
use crate::sentinel::canonical_host;

/// Which node each announced host (IP in canonical form, or lowercased name) belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NodeMap {
    by_host: BTreeMap<String, Vec<NodeName>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MappingError {
    #[error("Redis at {0} belongs to no cluster node (add `node NAME = {0}` to the config)")]
    Unmapped(String),
    #[error("Redis at {host} matches several nodes ({})", nodes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(", "))]
    Ambiguous { host: String, nodes: Vec<NodeName> },
    /// A `node` line names a node the cluster does not have: its Redis would map to no
    /// node, and its real node be demoted as unknown to the Sentinels.
    #[error("the config's `node {node} = ...` names no cluster node (the cluster has {})", known.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownNode { node: String, known: Vec<NodeName> },
}

impl MappingError {
    /// A configuration that contradicts the cluster: nothing may be written from it.
    pub(crate) fn is_config_error(&self) -> bool {
        matches!(self, MappingError::UnknownNode { .. })
    }
}

impl NodeMap {
    /// From the config's `node NAME = ADDR...` lines.
    pub(crate) fn from_config(nodes: &BTreeMap<String, Vec<String>>) -> Self {
        let mut map = NodeMap::default();
        for (node, hosts) in nodes {
            for host in hosts {
                map.add(host, node);
            }
        }
        map
    }

    /// From the cluster's node names: each name stands for itself (Sentinel may announce
    /// host names) and for every address `resolve` gives for it (all names asked at once).
    pub(crate) fn resolving(
        nodes: &[NodeName],
        resolve: impl Fn(&[&str]) -> Vec<Vec<IpAddr>>,
    ) -> Self {
        let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
        let mut map = NodeMap::default();
        for name in &names {
            map.add(name, name);
        }
        for (name, mut ips) in names.iter().zip(resolve(&names)) {
            ips.sort();
            ips.dedup();
            for ip in ips {
                map.add(&ip.to_string(), name);
            }
        }
        map
    }

    fn add(&mut self, host: &str, node: &str) {
        let nodes = self.by_host.entry(canonical_host(host)).or_default();
        let node = NodeName(node.to_string());
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }

    /// The one node `host` belongs to.
    pub(crate) fn node_of(&self, host: &str) -> Result<&NodeName, MappingError> {
        let host = canonical_host(host);
        match self.by_host.get(&host).map(Vec::as_slice) {
            Some([node]) => Ok(node),
            Some(nodes) if nodes.len() > 1 => Err(MappingError::Ambiguous {
                host,
                nodes: nodes.to_vec(),
            }),
            _ => Err(MappingError::Unmapped(host)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<NodeName> {
        n.iter().map(|s| NodeName(s.to_string())).collect()
    }

    #[test]
    fn exact_matches_only() {
        let config = BTreeMap::from([
            ("node1".to_string(), vec!["10.0.0.1".to_string()]),
            (
                "node11".to_string(),
                vec!["10.0.0.11".to_string(), "fd00::11".to_string()],
            ),
        ]);
        let map = NodeMap::from_config(&config);
        assert_eq!(map.node_of("10.0.0.1").unwrap().0, "node1");
        assert_eq!(map.node_of("10.0.0.11").unwrap().0, "node11");
        assert_eq!(map.node_of("FD00:0::11").unwrap().0, "node11");
        assert_eq!(
            map.node_of("10.0.0.111"),
            Err(MappingError::Unmapped("10.0.0.111".into()))
        );
        assert_eq!(
            map.node_of("10.0.0"),
            Err(MappingError::Unmapped("10.0.0".into()))
        );
    }

    #[test]
    fn resolved_names_and_host_names_map_and_collisions_are_ambiguous() {
        let resolve = |names: &[&str]| -> Vec<Vec<IpAddr>> {
            names
                .iter()
                .map(|name| match *name {
                    "node1" => vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
                    "node2" => vec!["10.0.0.2".parse().unwrap()],
                    "node3" => vec!["10.0.0.2".parse().unwrap()], // a copy-paste error in /etc/hosts
                    _ => vec![],                                  // not resolved, or not in time
                })
                .collect()
        };
        let map = NodeMap::resolving(&names(&["node1", "node2", "node3", "node4"]), resolve);
        assert_eq!(map.node_of("fd00::1").unwrap().0, "node1");
        assert_eq!(
            map.node_of("NODE4").unwrap().0,
            "node4",
            "announced host name"
        );
        let err = map.node_of("10.0.0.2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Redis at 10.0.0.2 matches several nodes (node2, node3)"
        );
    }
}
