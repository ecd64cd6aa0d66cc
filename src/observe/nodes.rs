//! Redis addresses (as Sentinel announces them) to Pacemaker nodes: exact matches only.

use std::collections::BTreeMap;

use crate::cluster::NodeName;
use crate::resolve::Resolved;
use crate::sentinel::canonical_host;

/// Which node each announced host (IP in canonical form, or lowercased name) belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NodeMap {
    by_host: BTreeMap<String, Vec<NodeName>>,
    /// Node names still being looked up when the map was made: any host may be theirs.
    late: Vec<NodeName>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MappingError {
    #[error("Redis at {0} belongs to no cluster node (add `node NAME = {0}` to the config)")]
    Unmapped(String),
    /// As `Unmapped`, but the addresses of `names` are not known yet (a slow or silent
    /// name server): the host may be one of theirs, and a later try may tell.
    #[error(
        "Redis at {host} belongs to no cluster node yet: the lookup of {} did not finish in \
         time (`node NAME = ADDR` lines in the config need no lookup)",
        list(names)
    )]
    Late { host: String, names: Vec<NodeName> },
    #[error("Redis at {host} matches several nodes ({})", list(nodes))]
    Ambiguous { host: String, nodes: Vec<NodeName> },
    /// A `node` line names a node the cluster does not have: its Redis would map to no
    /// node, and its real node be demoted as unknown to the Sentinels.
    #[error(
        "the config's `node {node} = ...` names no cluster node (the cluster has {})",
        list(known)
    )]
    UnknownNode { node: String, known: Vec<NodeName> },
}

/// "node1, node2".
fn list(nodes: &[NodeName]) -> String {
    let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    names.join(", ")
}

impl MappingError {
    /// A configuration that contradicts the cluster: nothing may be written from it.
    pub(crate) fn is_config_error(&self) -> bool {
        matches!(self, MappingError::UnknownNode { .. })
    }

    /// The node names whose lookup did not finish in time, when that is why the host maps
    /// to no node: a transient condition, unlike the others.
    pub(crate) fn late_names(&self) -> Option<&[NodeName]> {
        match self {
            MappingError::Late { names, .. } => Some(names),
            _ => None,
        }
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
    /// The names still being looked up at its bound are remembered (see [`NodeMap::node_of`]).
    pub(crate) fn resolving(
        nodes: &[NodeName],
        resolve: impl Fn(&[&str]) -> Vec<Resolved>,
    ) -> Self {
        let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
        let mut map = NodeMap::default();
        for name in &names {
            map.add(name, name);
        }
        for (name, resolved) in names.iter().zip(resolve(&names)) {
            let mut ips = match resolved {
                Resolved::Addrs(ips) => ips,
                Resolved::Late => {
                    map.late.push(NodeName(name.to_string()));
                    continue;
                }
            };
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

    /// The one node `host` belongs to. A host of no node is `Late` while any node name's
    /// lookup was: it may be that node's address.
    pub(crate) fn node_of(&self, host: &str) -> Result<&NodeName, MappingError> {
        let host = canonical_host(host);
        match self.by_host.get(&host).map(Vec::as_slice) {
            Some([node]) => Ok(node),
            Some(nodes) if nodes.len() > 1 => Err(MappingError::Ambiguous {
                host,
                nodes: nodes.to_vec(),
            }),
            _ if !self.late.is_empty() => Err(MappingError::Late {
                host,
                names: self.late.clone(),
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
        let resolve = |names: &[&str]| -> Vec<Resolved> {
            names
                .iter()
                .map(|name| {
                    Resolved::Addrs(match *name {
                        "node1" => vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
                        "node2" => vec!["10.0.0.2".parse().unwrap()],
                        "node3" => vec!["10.0.0.2".parse().unwrap()], // a copy-paste error in /etc/hosts
                        _ => vec![],                                  // not resolved
                    })
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

    /// A name whose lookup did not finish in time is not a name without addresses: a
    /// host of no node may be its, so mapping it is retried rather than given up on.
    #[test]
    fn a_host_of_no_node_is_late_while_a_node_names_lookup_is() {
        let addrs = |a: &[&str]| Resolved::Addrs(a.iter().map(|ip| ip.parse().unwrap()).collect());
        let late = |host: &str, late: &[&str]| {
            Err(MappingError::Late {
                host: host.into(),
                names: names(late),
            })
        };
        let unmapped = |host: &str| Err(MappingError::Unmapped(host.into()));
        // (case, what node1, node2 and node3 resolve to, the announced host, its node)
        type Row = (
            &'static str,
            [Resolved; 3],
            &'static str,
            Result<&'static str, MappingError>,
        );
        let table: [Row; 9] = [
            (
                "resolved",
                [
                    addrs(&["10.0.0.1"]),
                    addrs(&["10.0.0.2"]),
                    addrs(&["10.0.0.3"]),
                ],
                "10.0.0.2",
                Ok("node2"),
            ),
            (
                "no address",
                [addrs(&["10.0.0.1"]), addrs(&[]), addrs(&["10.0.0.3"])],
                "10.0.0.2",
                unmapped("10.0.0.2"),
            ),
            (
                "late",
                [addrs(&["10.0.0.1"]), Resolved::Late, addrs(&["10.0.0.3"])],
                "10.0.0.2",
                late("10.0.0.2", &["node2"]),
            ),
            (
                "resolved while another is late",
                [addrs(&["10.0.0.1"]), Resolved::Late, addrs(&["10.0.0.3"])],
                "10.0.0.1",
                Ok("node1"),
            ),
            (
                "a late node's own name announced",
                [addrs(&["10.0.0.1"]), Resolved::Late, addrs(&["10.0.0.3"])],
                "NODE2",
                Ok("node2"),
            ),
            (
                "no address while another is late: it may be the late one's",
                [Resolved::Late, addrs(&[]), addrs(&["10.0.0.3"])],
                "10.0.0.2",
                late("10.0.0.2", &["node1"]),
            ),
            (
                "several late",
                [Resolved::Late, Resolved::Late, addrs(&["10.0.0.3"])],
                "10.0.0.9",
                late("10.0.0.9", &["node1", "node2"]),
            ),
            (
                "ambiguous while another is late",
                [Resolved::Late, addrs(&["10.0.0.2"]), addrs(&["10.0.0.2"])],
                "10.0.0.2",
                Err(MappingError::Ambiguous {
                    host: "10.0.0.2".into(),
                    nodes: names(&["node2", "node3"]),
                }),
            ),
            (
                "an IPv6 host of no node while another is late",
                [addrs(&["10.0.0.1"]), addrs(&["10.0.0.2"]), Resolved::Late],
                "FD00:0::3",
                late("fd00::3", &["node3"]),
            ),
        ];
        for (case, resolved, host, want) in table {
            let map = NodeMap::resolving(&names(&["node1", "node2", "node3"]), |asked| {
                assert_eq!(asked, ["node1", "node2", "node3"], "{case}");
                resolved.to_vec()
            });
            let got = map.node_of(host).map(|n| n.0.as_str());
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_late_mapping_names_the_names_not_looked_up_in_time() {
        let e = MappingError::Late {
            host: "10.0.0.2".into(),
            names: names(&["node1", "node2"]),
        };
        assert_eq!(
            e.to_string(),
            "Redis at 10.0.0.2 belongs to no cluster node yet: the lookup of node1, node2 did \
             not finish in time (`node NAME = ADDR` lines in the config need no lookup)"
        );
        assert_eq!(e.late_names(), Some(&names(&["node1", "node2"])[..]));
        assert_eq!(MappingError::Unmapped("10.0.0.2".into()).late_names(), None);
    }
}
