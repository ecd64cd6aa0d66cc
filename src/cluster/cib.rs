//! Reads a whole CIB (`cibadmin --query`): quorum, every node's permanent `redis_role`,
//! and any transient `redis_role` that would override it.

use std::collections::{BTreeMap, BTreeSet};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::history;
use super::{
    ClusterError, ClusterState, EPOCH_ATTRIBUTE, HOLD_ATTRIBUTE, NodeHome, NodeName,
    PRIORITIES_ATTRIBUTE, ROLE_ATTRIBUTE, Role, RoleValue,
};
use crate::blocks::AgentKind;

/// What one CIB says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cib {
    pub(crate) state: ClusterState,
    /// `redis_role` set with a lifetime (`crm_attribute -l reboot`, `attrd_updater`) in the
    /// status section. Pacemaker's rules prefer it to the permanent value, so a permanent
    /// write cannot move the blocks while one exists.
    pub(crate) transient_roles: BTreeMap<NodeName, RoleValue>,
}

impl Cib {
    /// `node`'s `redis_role` as the location rules see it: a transient value wins over
    /// the permanent one.
    pub(crate) fn role(&self, node: &NodeName) -> Option<&RoleValue> {
        self.transient_roles
            .get(node)
            .or_else(|| self.state.roles.get(node).and_then(Option::as_ref))
    }

    /// The same as a [`Role`], when the value is one.
    pub(crate) fn effective_role(&self, node: &NodeName) -> Option<Role> {
        self.role(node).and_then(RoleValue::role)
    }

    /// The state a program that writes permanent roles may act on: none while a
    /// transient `redis_role` anywhere overrides what it would write.
    pub(crate) fn writable(self) -> Result<ClusterState, ClusterError> {
        if let Some((node, value)) = self.transient_roles.iter().next() {
            return Err(ClusterError::Permanent {
                command: "cibadmin --query".into(),
                reason: format!(
                    "node {node} has a transient {ROLE_ATTRIBUTE}={value} in the status section, \
                     which overrides the permanent one; remove it with \
                     `crm_attribute --node {node} --name {ROLE_ATTRIBUTE} --lifetime reboot --delete`"
                ),
            });
        }
        Ok(self.state)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CibError {
    #[error("not well-formed XML at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
    #[error("the document is a <{0}>, not a <cib>")]
    NotACib(String),
    #[error("the document is empty")]
    Empty,
}

/// Where an element sits, as far as we care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Cib,
    Configuration,
    Nodes,
    /// configuration/nodes/node
    Node,
    /// ... node/instance_attributes: the permanent attributes
    NodeAttributes,
    Status,
    NodeState,
    Transient,
    /// ... node_state/transient_attributes/instance_attributes
    TransientAttributes,
    /// node_state/lrm/lrm_resources/lrm_resource: one resource's operation history
    Lrm,
    LrmResources,
    LrmResource,
    /// configuration/resources/clone, and its meta_attributes
    Resources,
    Clone,
    CloneMeta,
    /// configuration/constraints (its rsc_order children matter), and an rsc_order
    Constraints,
    Order,
    /// configuration/rsc_defaults, and its meta_attributes (a default `interleave`)
    RscDefaults,
    RscDefaultsMeta,
    /// Anything else: its content does not matter.
    Elsewhere,
}

/// Where a child named `name` of an element at `parent` sits.
fn child_at(parent: Option<At>, name: &str) -> At {
    match (parent, name) {
        (None, "cib") => At::Cib,
        (Some(At::Cib), "configuration") => At::Configuration,
        (Some(At::Configuration), "nodes") => At::Nodes,
        (Some(At::Nodes), "node") => At::Node,
        (Some(At::Node), "instance_attributes") => At::NodeAttributes,
        (Some(At::Cib), "status") => At::Status,
        (Some(At::Status), "node_state") => At::NodeState,
        (Some(At::NodeState), "transient_attributes") => At::Transient,
        (Some(At::NodeState), "lrm") => At::Lrm,
        (Some(At::Lrm), "lrm_resources") => At::LrmResources,
        (Some(At::LrmResources), "lrm_resource") => At::LrmResource,
        (Some(At::Transient), "instance_attributes") => At::TransientAttributes,
        (Some(At::Configuration), "resources") => At::Resources,
        (Some(At::Resources), "clone") => At::Clone,
        (Some(At::Clone), "meta_attributes") => At::CloneMeta,
        (Some(At::Configuration), "constraints") => At::Constraints,
        (Some(At::Constraints), "rsc_order") => At::Order,
        (Some(At::Configuration), "rsc_defaults") => At::RscDefaults,
        (Some(At::RscDefaults), "meta_attributes") => At::RscDefaultsMeta,
        _ => At::Elsewhere,
    }
}

/// Pacemaker's `crm_is_true`: what counts as a true boolean in the CIB.
pub(crate) fn is_true(value: &str) -> bool {
    ["true", "on", "yes", "y", "1"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(value))
}

/// Parses the CIB. `have-quorum` absent counts as not quorate, as Pacemaker's scheduler
/// counts it (a CIB made by `cibadmin --empty` has none until a controller or
/// `crm_simulate` writes one). Of several `redis_role` values in one node's attribute
/// sets, the first in document order wins.
pub(crate) fn parse(xml: &str) -> Result<Cib, CibError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<At> = Vec::new();
    let mut quorate = None;
    let mut roles: BTreeMap<NodeName, Option<RoleValue>> = BTreeMap::new();
    let mut transient_roles = BTreeMap::new();
    let mut applied_epoch: Option<u64> = None;
    let mut holds: BTreeMap<NodeName, u64> = BTreeMap::new();
    let mut priorities_left: BTreeMap<NodeName, String> = BTreeMap::new();
    // Each block primitive's history on each node, and whether that node's controller is up.
    let mut block_ops: BTreeMap<(&str, NodeName), Vec<history::Op>> = BTreeMap::new();
    let mut online: BTreeMap<NodeName, bool> = BTreeMap::new();
    let mut in_block: Option<&str> = None;
    // The node (configuration) or node_state (status) whose attributes we are inside.
    let mut node: Option<NodeName> = None;
    // node_state may name its node by id only.
    let mut names_by_id: BTreeMap<String, NodeName> = BTreeMap::new();
    let mut homes: BTreeMap<NodeName, NodeHome> = BTreeMap::new();
    // The id of the node attribute set we are inside.
    let mut set: Option<String> = None;
    // Each clone (by id): the primitive it clones and whether it interleaves.
    let mut clones: BTreeMap<String, CloneConfig> = BTreeMap::new();
    let mut clone: Option<String> = None;
    let mut orders: Vec<Order> = Vec::new();
    // `interleave=true` among the resource defaults (under any rule: counted as set).
    let mut interleave_default = false;
    loop {
        let event = reader.read_event().map_err(|e| CibError::Malformed {
            position: reader.buffer_position(),
            reason: e.to_string(),
        })?;
        let (element, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                match stack.pop() {
                    Some(At::Node | At::NodeState) => node = None,
                    Some(At::NodeAttributes) => set = None,
                    Some(At::LrmResource) => in_block = None,
                    Some(At::Clone) => clone = None,
                    _ => {}
                }
                continue;
            }
            Event::Eof if stack.is_empty() => break,
            Event::Eof => {
                return Err(CibError::Malformed {
                    position: reader.buffer_position(),
                    reason: "the document ends inside an element (cut short?)".into(),
                });
            }
            _ => continue,
        };
        let at = child_at(stack.last().copied(), element.name().as_ref());
        match at {
            At::Cib => quorate = Some(attr(&element, "have-quorum").is_some_and(|v| is_true(&v))),
            At::Elsewhere if stack.is_empty() => {
                return Err(CibError::NotACib(element.name().as_ref().to_string()));
            }
            At::Node => {
                node = attr(&element, "uname").map(NodeName);
                if let Some(name) = &node {
                    roles.insert(name.clone(), None);
                    if let Some(id) = attr(&element, "id") {
                        names_by_id.insert(id.clone(), name.clone());
                        homes.entry(name.clone()).or_insert(NodeHome {
                            id,
                            nvpairs: BTreeMap::new(),
                        });
                    }
                }
            }
            At::NodeState => {
                node = attr(&element, "uname")
                    .map(NodeName)
                    .or_else(|| attr(&element, "id").and_then(|id| names_by_id.get(&id).cloned()));
                if let Some(name) = &node {
                    online.insert(
                        name.clone(),
                        attr(&element, "crmd").as_deref() == Some("online"),
                    );
                }
            }
            At::NodeAttributes => set = attr(&element, "id"),
            At::Clone => {
                clone = attr(&element, "id");
                if let Some(id) = &clone {
                    clones.entry(id.clone()).or_default();
                }
            }
            At::LrmResource => {
                // An anonymous clone's instances are recorded under the primitive's id,
                // older Pacemakers add `:N`.
                let id = attr(&element, "id");
                let primitive = id.as_deref().and_then(|id| id.split(':').next());
                // The primitives carry the agents' names.
                in_block = AgentKind::ALL
                    .map(AgentKind::name)
                    .into_iter()
                    .find(|p| !empty && primitive == Some(*p));
            }
            _ => {}
        }
        let parent = stack.last().copied();
        if let Some(c) = clone.as_ref().and_then(|id| clones.get_mut(id)) {
            match (parent, element.name().as_ref()) {
                (Some(At::Clone), "primitive") => c.primitive = attr(&element, "id"),
                (Some(At::CloneMeta), "nvpair") => match attr(&element, "name").as_deref() {
                    Some("interleave") => {
                        c.interleave = attr(&element, "value").is_some_and(|v| is_true(&v));
                    }
                    Some("target-role") => {
                        c.stopped = attr(&element, "value")
                            .is_some_and(|v| v.eq_ignore_ascii_case("stopped"));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if parent == Some(At::RscDefaultsMeta)
            && element.name().as_ref() == "nvpair"
            && attr(&element, "name").as_deref() == Some("interleave")
        {
            interleave_default |= attr(&element, "value").is_some_and(|v| is_true(&v));
        }
        if parent == Some(At::Constraints) && element.name().as_ref() == "rsc_order" {
            orders.push(Order {
                first: attr(&element, "first"),
                first_action: attr(&element, "first-action"),
                then: attr(&element, "then"),
                then_action: attr(&element, "then-action"),
                kind: attr(&element, "kind"),
                resource_sets: false,
            });
        }
        // crmsh keeps the comment lines above a constraint inside it: only a resource
        // set makes it another form.
        if parent == Some(At::Order)
            && element.name().as_ref() == "resource_set"
            && let Some(order) = orders.last_mut()
        {
            order.resource_sets = true;
        }
        // A node attribute: the name and value read once, then what it is.
        if element.name().as_ref() == "nvpair"
            && matches!(parent, Some(At::NodeAttributes | At::TransientAttributes))
            && let Some(attribute) = attr(&element, "name")
        {
            let value = attr(&element, "value");
            let permanent = parent == Some(At::NodeAttributes);
            if permanent
                && let (Some(name), Some(set), Some(id)) = (&node, &set, attr(&element, "id"))
                && let Some(home) = homes.get_mut(name)
            {
                home.nvpairs
                    .entry(attribute.clone())
                    .or_insert_with(|| (set.clone(), id));
            }
            match (attribute.as_str(), &node) {
                (ROLE_ATTRIBUTE, Some(name)) => {
                    if let Some(value) = value {
                        if permanent {
                            let role = roles.entry(name.clone()).or_default();
                            role.get_or_insert_with(|| RoleValue::parse(&value));
                        } else {
                            transient_roles
                                .entry(name.clone())
                                .or_insert_with(|| RoleValue::parse(&value));
                        }
                    }
                }
                (EPOCH_ATTRIBUTE, _) if permanent => {
                    // Unreadable counts as the highest: the guard then holds until a
                    // person looks.
                    let value = value.map_or(u64::MAX, |v| v.trim().parse().unwrap_or(u64::MAX));
                    applied_epoch = Some(applied_epoch.map_or(value, |e| e.max(value)));
                }
                (HOLD_ATTRIBUTE, Some(name)) if permanent => {
                    let until = value.and_then(|v| v.trim().parse().ok());
                    holds.entry(name.clone()).or_insert(until.unwrap_or(0));
                }
                (PRIORITIES_ATTRIBUTE, Some(name)) if permanent => {
                    priorities_left
                        .entry(name.clone())
                        .or_insert(value.unwrap_or_default());
                }
                _ => {}
            }
        }
        if let Some(primitive) = in_block
            && parent == Some(At::LrmResource)
            && element.name().as_ref() == "lrm_rsc_op"
            && let Some(name) = &node
        {
            let number = |key: &str| attr(&element, key).and_then(|v| v.trim().parse::<i64>().ok());
            block_ops
                .entry((primitive, name.clone()))
                .or_default()
                .push(history::Op {
                    last: attr(&element, "id").is_some_and(|id| id.ends_with("_last_0")),
                    operation: attr(&element, "operation").unwrap_or_default(),
                    rc: number("rc-code"),
                    status: number("op-status"),
                    call_id: number("call-id"),
                });
        }
        if !empty {
            stack.push(at);
        } else if matches!(at, At::Node | At::NodeState) {
            node = None;
        }
    }
    let quorate = quorate.ok_or(CibError::Empty)?;
    let running = |primitive: &str| -> BTreeSet<NodeName> {
        block_ops
            .iter()
            .filter(|((p, n), ops)| {
                *p == primitive && history::running(online.get(n) == Some(&true), ops)
            })
            .map(|((_, n), _)| n.clone())
            .collect()
    };
    Ok(Cib {
        state: ClusterState {
            quorate,
            roles,
            applied_epoch,
            write_blocks: running(AgentKind::Write.name()),
            read_blocks: running(AgentKind::Read.name()),
            online: online
                .iter()
                .filter(|(_, up)| **up)
                .map(|(n, _)| n.clone())
                .collect(),
            holds,
            priorities_left,
            homes,
            reads_ordered: reads_ordered(&clones, &orders, interleave_default),
        },
        transient_roles,
    })
}

/// A clone in the configuration, as far as the ordering needs it.
#[derive(Debug, Default)]
struct CloneConfig {
    primitive: Option<String>,
    interleave: bool,
    /// `target-role=Stopped`: Pacemaker starts none of it, so orders nothing after it.
    stopped: bool,
}

/// An `rsc_order` constraint's attributes, as written.
#[derive(Debug)]
struct Order {
    first: Option<String>,
    first_action: Option<String>,
    then: Option<String>,
    then_action: Option<String>,
    kind: Option<String>,
    /// It has resource sets: not the plain form we ship.
    resource_sets: bool,
}

/// Whether the configuration orders every `RedisLBReadBlock` start before any
/// `RedisLBWriteBlock` stop of the same transition (`crm-snippets`'
/// `RedisLBReadBlock-before-promotion`, or a constraint that means the same): a clone of
/// each, not interleaved, themselves or by the resource defaults (`interleave_default`: an
/// interleaved order only binds instances on the same node), the read clone not disabled,
/// and an `rsc_order` from the one's `start` to the other's `stop`, `Optional` or
/// `Mandatory`.
fn reads_ordered(
    clones: &BTreeMap<String, CloneConfig>,
    orders: &[Order],
    interleave_default: bool,
) -> bool {
    let clone_of = |kind: AgentKind| {
        clones
            .iter()
            .find(|(_, c)| c.primitive.as_deref() == Some(kind.name()))
    };
    let (Some((read, r)), Some((write, w))) =
        (clone_of(AgentKind::Read), clone_of(AgentKind::Write))
    else {
        return false;
    };
    if interleave_default || r.interleave || w.interleave || r.stopped {
        return false;
    }
    orders.iter().any(|o| {
        // Without `kind`, the deprecated `score` makes it Optional (0) or Mandatory:
        // either orders the actions of one transition.
        let kind = o.kind.as_deref().unwrap_or("Mandatory");
        !o.resource_sets
            && o.first.as_deref() == Some(read.as_str())
            && o.first_action.as_deref().unwrap_or("start") == "start"
            && o.then.as_deref() == Some(write.as_str())
            && o.then_action.as_deref() == Some("stop")
            && matches!(kind, "Optional" | "Mandatory")
    })
}

/// An attribute's value as an XML parser hands it to Pacemaker (entities resolved,
/// whitespace normalised); `None` when absent or unreadable.
fn attr(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured with Pacemaker 2.1.5's own tools: see tests/data/cib/README.md.
    const EMPTY: &str = include_str!("../../tests/data/cib/empty.xml");
    const NO_ROLES: &str = include_str!("../../tests/data/cib/nodes-no-roles.xml");
    const SETTLED: &str = include_str!("../../tests/data/cib/settled-quorate.xml");
    const TRANSIENT: &str = include_str!("../../tests/data/cib/transient-role-no-quorum.xml");

    fn node(name: &str) -> NodeName {
        NodeName(name.to_string())
    }

    /// Nodes and their roles, in order.
    type Roles<'a> = [(&'a str, Option<&'a str>)];

    fn roles(cib: &Cib) -> Vec<(&str, Option<String>)> {
        cib.state
            .roles
            .iter()
            .map(|(n, r)| (n.0.as_str(), r.as_ref().map(ToString::to_string)))
            .collect()
    }

    fn owned<'a>(want: &Roles<'a>) -> Vec<(&'a str, Option<String>)> {
        want.iter()
            .map(|(n, r)| (*n, r.map(String::from)))
            .collect()
    }

    #[test]
    fn the_write_block_runs_where_the_history_says_it_started() {
        let blocks = |xml: &str| -> Vec<String> {
            parse(xml)
                .unwrap()
                .state
                .write_blocks
                .into_iter()
                .map(|n| n.0)
                .collect()
        };
        // node1 primary, node2 replica, node3 unset: as crm_resource --locate said.
        assert_eq!(blocks(SETTLED), ["node2", "node3"]);
        let reads: Vec<String> = parse(SETTLED)
            .unwrap()
            .state
            .read_blocks
            .into_iter()
            .map(|n| n.0)
            .collect();
        assert_eq!(reads, ["node3"], "ReadBlock: where the role is unset");
        assert!(blocks(NO_ROLES).is_empty(), "no status section yet");
        // The same history on a node whose controller is not online does not count.
        let offline = SETTLED.replacen(
            r#"uname="node2" in_ccm="true" crmd="online""#,
            r#"uname="node2" in_ccm="false" crmd="offline""#,
            1,
        );
        assert_ne!(offline, SETTLED);
        assert_eq!(blocks(&offline), ["node3"]);
    }

    #[test]
    fn the_applied_epoch_is_the_highest_on_any_node() {
        assert_eq!(parse(SETTLED).unwrap().state.applied_epoch, None);
        let with = |node1: &str, node2: &str| {
            let nvpair = |id: &str, v: &str| {
                format!(r#"<nvpair id="{id}-e" name="redis-ha-config-epoch" value="{v}"/>"#)
            };
            let xml = SETTLED
                .replacen(
                    r#"<nvpair id="nodes-1-redis_role""#,
                    &format!(r#"{}<nvpair id="nodes-1-redis_role""#, nvpair("n1", node1)),
                    1,
                )
                .replacen(
                    r#"<nvpair id="nodes-2-redis_role""#,
                    &format!(r#"{}<nvpair id="nodes-2-redis_role""#, nvpair("n2", node2)),
                    1,
                );
            assert_eq!(xml.matches("redis-ha-config-epoch").count(), 2);
            parse(&xml).unwrap().state.applied_epoch
        };
        assert_eq!(with("7", "3"), Some(7));
        assert_eq!(with("3", "9"), Some(9));
        // Unreadable: the highest, so the guard holds until someone looks.
        assert_eq!(with("seven", "3"), Some(u64::MAX));
    }

    #[test]
    fn a_hold_is_read_per_node_and_an_unreadable_one_holds_nothing() {
        assert!(parse(SETTLED).unwrap().state.holds.is_empty());
        let with = |value: &str| {
            let xml = SETTLED.replacen(
                r#"<nvpair id="nodes-1-redis_role""#,
                &format!(
                    r#"<nvpair id="n1-h" name="redis-ha-hold" value="{value}"/><nvpair id="nodes-1-redis_role""#
                ),
                1,
            );
            let state = parse(&xml).unwrap().state;
            (state.holds.clone(), state.held(1_000))
        };
        let node1 = NodeName("node1".into());
        assert_eq!(
            with("2000"),
            ([(node1.clone(), 2000)].into(), [node1.clone()].into())
        );
        assert_eq!(with("999").1, BTreeSet::new(), "run out");
        assert_eq!(with("soon"), ([(node1, 0)].into(), BTreeSet::new()));
    }

    #[test]
    fn captured_cibs() {
        let table: [(&str, &str, bool, &Roles); 4] = [
            ("empty", EMPTY, false, &[]),
            (
                "nodes-no-roles",
                NO_ROLES,
                false,
                &[("node1", None), ("node2", None), ("node3", None)],
            ),
            (
                "settled-quorate",
                SETTLED,
                true,
                &[
                    ("node1", Some("primary")),
                    ("node2", Some("replica")),
                    ("node3", None),
                ],
            ),
            (
                "transient-role-no-quorum",
                TRANSIENT,
                false,
                &[
                    ("node1", Some("primary")),
                    ("node2", Some("replica")),
                    ("node3", None),
                ],
            ),
        ];
        for (name, xml, quorate, want) in table {
            let cib = parse(xml).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cib.state.quorate, quorate, "{name}");
            assert_eq!(roles(&cib), owned(want), "{name}");
        }
    }

    #[test]
    fn a_transient_role_is_reported_apart() {
        let cib = parse(TRANSIENT).unwrap();
        assert_eq!(
            cib.transient_roles,
            BTreeMap::from([(node("node3"), RoleValue::Is(Role::Fail))])
        );
        assert!(parse(SETTLED).unwrap().transient_roles.is_empty());
    }

    /// A CIB with the given root attributes and nodes section.
    fn cib(root: &str, nodes: &str) -> String {
        format!(
            r#"<cib epoch="1" num_updates="0" admin_epoch="0"{root}><configuration><crm_config/><nodes>{nodes}</nodes><resources/><constraints/></configuration><status/></cib>"#
        )
    }

    #[test]
    fn have_quorum_is_read_like_pacemaker_reads_it() {
        let table = [
            ("", false),
            (r#" have-quorum="1""#, true),
            (r#" have-quorum="0""#, false),
            (r#" have-quorum="true""#, true),
            (r#" have-quorum="TRUE""#, true),
            (r#" have-quorum="yes""#, true),
            (r#" have-quorum="on""#, true),
            (r#" have-quorum="false""#, false),
            (r#" have-quorum="""#, false),
            (r#" have-quorum="2""#, false),
        ];
        for (root, want) in table {
            let cib = parse(&cib(root, "")).unwrap();
            assert_eq!(cib.state.quorate, want, "{root:?}");
        }
    }

    #[test]
    fn only_a_nodes_own_instance_attributes_count() {
        let nodes = r#"
          <node id="1" uname="bare"/>
          <node id="2" uname="empty-set"><instance_attributes id="nodes-2"/></node>
          <node id="3" uname="other-attr"><instance_attributes id="nodes-3">
            <nvpair id="nodes-3-site" name="site" value="a"/></instance_attributes></node>
          <node id="4" uname="utilization"><utilization id="nodes-4-u">
            <nvpair id="nodes-4-u-r" name="redis_role" value="primary"/></utilization></node>
          <node id="5" uname="two-sets">
            <instance_attributes id="nodes-5-a"><nvpair id="a" name="other" value="x"/></instance_attributes>
            <instance_attributes id="nodes-5-b"><nvpair id="b" name="redis_role" value="replica"/></instance_attributes>
            <instance_attributes id="nodes-5-c"><nvpair id="c" name="redis_role" value="fail"/></instance_attributes>
          </node>
          <node id="6" uname="escaped"><instance_attributes id="nodes-6">
            <nvpair id="nodes-6-r" name="redis_role" value="a&amp;b"/></instance_attributes></node>
          <node id="7" uname="no-value"><instance_attributes id="nodes-7">
            <nvpair id="nodes-7-r" name="redis_role"/></instance_attributes></node>
          <node id="8"/>
        "#;
        let mut xml = cib(r#" have-quorum="1""#, nodes);
        // The same name elsewhere must not count: a cluster property and a status entry
        // for a node that is not configured.
        xml = xml.replace(
            "<crm_config/>",
            r#"<crm_config><cluster_property_set id="p"><nvpair id="p-r" name="redis_role" value="primary"/></cluster_property_set></crm_config>"#,
        );
        let cib = parse(&xml).unwrap();
        assert_eq!(
            roles(&cib),
            owned(&[
                ("bare", None),
                ("empty-set", None),
                ("escaped", Some("a&b")),
                ("no-value", None),
                ("other-attr", None),
                ("two-sets", Some("replica")),
                ("utilization", None),
            ])
        );
    }

    #[test]
    fn transient_roles_are_found_by_uname_or_node_id() {
        let mut xml = cib(
            "",
            r#"<node id="7" uname="seven"/><node id="8" uname="eight"/>"#,
        );
        xml = xml.replace(
            "<status/>",
            r#"<status>
              <node_state id="7" uname="seven"><transient_attributes id="7"><instance_attributes id="status-7">
                <nvpair id="status-7-r" name="redis_role" value="primary"/></instance_attributes></transient_attributes></node_state>
              <node_state id="8"><transient_attributes id="8"><instance_attributes id="status-8">
                <nvpair id="status-8-r" name="redis_role" value="fail"/></instance_attributes></transient_attributes>
                <lrm id="8"><instance_attributes id="x"><nvpair id="x-r" name="redis_role" value="no"/></instance_attributes></lrm></node_state>
            </status>"#,
        );
        let cib = parse(&xml).unwrap();
        assert_eq!(
            cib.transient_roles,
            BTreeMap::from([
                (node("eight"), RoleValue::Is(Role::Fail)),
                (node("seven"), RoleValue::Is(Role::Primary)),
            ])
        );
        assert_eq!(roles(&cib), owned(&[("eight", None), ("seven", None)]));
    }

    #[test]
    fn what_is_not_a_cib_is_an_error() {
        type Expect = fn(&CibError) -> bool;
        let table: [(&str, Expect); 4] = [
            ("", |e| *e == CibError::Empty),
            (
                "<pacemaker-result/>",
                |e| matches!(e, CibError::NotACib(n) if n == "pacemaker-result"),
            ),
            ("<cib><configuration>", |e| {
                matches!(e, CibError::Malformed { .. })
            }),
            ("<cib></nodes></cib>", |e| {
                matches!(e, CibError::Malformed { .. })
            }),
        ];
        for (xml, want) in table {
            let err = parse(xml).unwrap_err();
            assert!(want(&err), "{xml:?}: {err:?}");
        }
    }

    #[test]
    fn the_read_blocks_count_as_ordered_only_with_a_constraint_that_orders_them() {
        const SNIPPET: &str = include_str!("../../crm-snippets/redis-ha.cib.xml");
        let shipped = SNIPPET
            .lines()
            .find(|l| l.contains("<rsc_order"))
            .expect("the snippet has its order constraint")
            .trim();
        let with = |order: &str, read_meta: &str| {
            let xml = SETTLED
                .replacen("</constraints>", &format!("{order}</constraints>"), 1)
                .replacen(
                    r#"<clone id="RedisLBReadBlock-clone">"#,
                    &format!(r#"<clone id="RedisLBReadBlock-clone">{read_meta}"#),
                    1,
                );
            parse(&xml).unwrap().state.reads_ordered
        };
        let interleaved = r#"<meta_attributes id="m"><nvpair id="m-i" name="interleave" value="true"/></meta_attributes>"#;
        let not_interleaved = r#"<meta_attributes id="m"><nvpair id="m-i" name="interleave" value="false"/></meta_attributes>"#;
        let order = |attrs: &str| format!(r#"<rsc_order id="o" {attrs}/>"#);
        let table = [
            ("as shipped", shipped.to_string(), "", true),
            (
                "as crmsh loads it, its comment inside",
                shipped.replace("/>", "><!--# Optional: it binds only--></rsc_order>"),
                "",
                true,
            ),
            ("no constraint", String::new(), "", false),
            ("interleaved: same node only", shipped.to_string(), interleaved, false),
            ("interleave=false", shipped.to_string(), not_interleaved, true),
            (
                "the read blocks disabled: no start to order after",
                shipped.to_string(),
                r#"<meta_attributes id="m"><nvpair id="m-t" name="target-role" value="Stopped"/></meta_attributes>"#,
                false,
            ),
            (
                "mandatory, first-action defaulted",
                order(r#"first="RedisLBReadBlock-clone" then="RedisLBWriteBlock-clone" then-action="stop""#),
                "",
                true,
            ),
            (
                "then-action defaults to first-action (start)",
                order(r#"first="RedisLBReadBlock-clone" then="RedisLBWriteBlock-clone""#),
                "",
                false,
            ),
            (
                "the other way round",
                order(r#"first="RedisLBWriteBlock-clone" first-action="stop" then="RedisLBReadBlock-clone" then-action="start""#),
                "",
                false,
            ),
            (
                "serialize orders nothing",
                order(r#"first="RedisLBReadBlock-clone" then="RedisLBWriteBlock-clone" then-action="stop" kind="Serialize""#),
                "",
                false,
            ),
            (
                "the primitives, not the clones",
                order(r#"first="RedisLBReadBlock" then="RedisLBWriteBlock" then-action="stop""#),
                "",
                false,
            ),
            (
                "resource sets are not read",
                r#"<rsc_order id="o" kind="Optional"><resource_set id="s"><resource_ref id="RedisLBReadBlock-clone"/></resource_set></rsc_order>"#.to_string(),
                "",
                false,
            ),
        ];
        for (case, order, meta, want) in table {
            assert_eq!(with(&order, meta), want, "{case}");
        }
        // Interleaved by the resource defaults.
        let defaults = SETTLED
            .replacen("</constraints>", &format!("{shipped}</constraints>"), 1)
            .replacen(
                "</constraints>",
                r#"</constraints><rsc_defaults><meta_attributes id="d"><nvpair id="d-i" name="interleave" value="true"/></meta_attributes></rsc_defaults>"#,
                1,
            );
        assert!(!parse(&defaults).unwrap().state.reads_ordered);
        assert!(!parse(SETTLED).unwrap().state.reads_ordered);
    }
}
