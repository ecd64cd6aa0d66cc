//! The status screen as text, and whether everything on it agrees. Pure.

use std::fmt::Write as _;

use super::{RedisState, SentinelSummary, Snapshot};
use crate::blocks::AgentKind;
use crate::cluster::{Cib, ROLE_ATTRIBUTE, Role, RoleValue};

/// Flags that make Sentinel treat a Redis as unusable.
const DOWN_FLAGS: [&str; 3] = ["s_down", "o_down", "disconnected"];

/// The screen, and `true` when nothing on it disagrees or is unknown.
pub(crate) fn render(s: &Snapshot) -> (String, bool) {
    let mut out = format!("master {}\n", s.master_name);
    let mut problems: Vec<String> = Vec::new();
    match &s.cluster {
        Ok(c) => {
            let quorum = if c.state.quorate {
                "quorum"
            } else {
                "NO quorum"
            };
            let epoch = c
                .state
                .applied_epoch
                .map_or(String::new(), |e| format!(", roles from config-epoch {e}"));
            let _ = writeln!(
                out,
                "pacemaker: {} nodes, {quorum}{epoch}",
                c.state.roles.len()
            );
            if !c.state.quorate {
                problems.push(
                    "this node's partition has no quorum: the Sentinel helper writes nothing"
                        .into(),
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "pacemaker: unknown");
            problems.push(format!("cannot read the cluster: {e}"));
        }
    }
    match &s.sentinels {
        Ok(t) => {
            let down = if t.master_down {
                " (objectively down)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "sentinel:  {} of {} Sentinels reached, config-epoch {}, master {}{down}",
                t.reached, t.known, t.epoch, t.master
            );
            problems.extend(t.assignment.mapping_errors.iter().map(|e| e.to_string()));
            if let Some(applied) = s
                .cluster
                .as_ref()
                .ok()
                .and_then(|c| c.state.applied_epoch)
                .filter(|&e| e > t.epoch)
            {
                problems.push(format!(
                    "the roles were written from config-epoch {applied}, newer than the \
                     Sentinels' {}: syncs write nothing until they catch up",
                    t.epoch
                ));
            }
        }
        Err(e) => {
            let _ = writeln!(out, "sentinel:  unknown");
            problems.push(format!("Sentinel: {e}"));
        }
    }
    if let Ok(c) = &s.cluster {
        let primaries = c
            .state
            .roles
            .keys()
            .filter(|n| c.effective_role(n) == Some(Role::Primary))
            .count();
        if primaries > 1 {
            problems.push(format!(
                "{primaries} nodes carry {ROLE_ATTRIBUTE}=primary at once"
            ));
        }
        out.push('\n');
        out.push_str(&table(c, s.sentinels.as_ref().ok(), &mut problems));
    }
    if let Ok(t) = &s.sentinels {
        out.push_str(&lag_errors(t));
    }
    out.push('\n');
    out.push_str(&super::guard_lines::lines(
        &s.guard,
        s.sentinels.as_ref().ok(),
        &mut problems,
    ));
    out.push('\n');
    if problems.is_empty() {
        out.push_str("all agree\n");
    } else {
        for p in &problems {
            let _ = writeln!(out, "DISAGREE: {p}");
        }
    }
    (out, problems.is_empty())
}

/// One row per cluster node; each row's disagreements go to `problems`.
fn table(c: &Cib, t: Option<&SentinelSummary>, problems: &mut Vec<String>) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "NODE".into(),
        "REDIS".into(),
        "SENTINEL SAYS".into(),
        ROLE_ATTRIBUTE.into(),
        "BLOCKS".into(),
        "AGREE".into(),
    ]];
    for node in c.state.roles.keys() {
        let mut mine: Vec<String> = Vec::new();
        let addrs = t.and_then(|t| t.assignment.redis.get(node));
        let redis = addrs.map_or("-".to_string(), |a| {
            a.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        let said = match (t, addrs) {
            (Some(t), Some(addrs)) => addrs
                .iter()
                .find_map(|a| t.redis.get(a).map(|r| (a, r)))
                .map_or(
                    "known, not in the newest configuration".to_string(),
                    |(_, r)| describe(r, t),
                ),
            (Some(_), None) => "no Redis known".to_string(),
            (None, _) => "?".to_string(),
        };
        let value = c.role(node);
        let role_text = match (value, c.transient_roles.get(node)) {
            (Some(v), Some(_)) => format!("{v} (transient)"),
            (Some(v), None) => v.to_string(),
            (None, _) => "-".to_string(),
        };
        if let Some(v) = c.transient_roles.get(node) {
            mine.push(format!(
                "a transient {ROLE_ATTRIBUTE}={v} overrides the permanent value"
            ));
        }
        if let Some(want) = t.and_then(|t| t.assignment.desired.get(node))
            && c.effective_role(node) != Some(*want)
        {
            mine.push(format!(
                "{ROLE_ATTRIBUTE} is {}, the Sentinels say {want}",
                unset_or(value)
            ));
        }
        let (read, write) = (
            c.state.read_blocks.contains(node),
            c.state.write_blocks.contains(node),
        );
        let (want_read, want_write) = blocks_for(value);
        for (name, runs, wanted) in [
            (AgentKind::Read.name(), read, want_read),
            (AgentKind::Write.name(), write, want_write),
        ] {
            if runs != wanted {
                let verb = if wanted { "is not running" } else { "runs" };
                mine.push(format!(
                    "{name} {verb} though {ROLE_ATTRIBUTE} is {}",
                    unset_or(value)
                ));
            }
        }
        let blocks = match (read, write) {
            (true, true) => "read+write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "-",
        };
        let agree = if mine.is_empty() { "yes" } else { "NO" };
        problems.extend(mine.into_iter().map(|p| format!("{node}: {p}")));
        rows.push([
            node.to_string(),
            redis,
            said,
            role_text,
            blocks.into(),
            agree.into(),
        ]);
    }
    columns(&rows)
}

fn unset_or(value: Option<&RoleValue>) -> String {
    value.map_or("unset".to_string(), ToString::to_string)
}

/// (ReadBlock, WriteBlock) as the shipped location rules place them for a value:
/// WriteBlock unless `primary`, ReadBlock when `fail` or unset.
fn blocks_for(value: Option<&RoleValue>) -> (bool, bool) {
    match value.map(RoleValue::role) {
        None => (true, true),
        Some(Some(Role::Primary)) => (false, false),
        Some(Some(Role::Fail)) => (true, true),
        Some(_) => (false, true),
    }
}

/// One Redis in the words of the newest configuration.
fn describe(r: &RedisState, t: &SentinelSummary) -> String {
    let down = |flags: &[String]| -> Vec<String> {
        flags
            .iter()
            .filter(|f| DOWN_FLAGS.contains(&f.as_str()))
            .cloned()
            .collect()
    };
    match r {
        RedisState::Master { flags } => match down(flags).as_slice() {
            [] => "master".to_string(),
            d => format!("master, down ({})", d.join(",")),
        },
        RedisState::Replica { view, lag } => {
            let d = down(&view.flags);
            if !d.is_empty() {
                return format!("down ({})", d.join(","));
            }
            let mut text = "replica".to_string();
            match &view.master {
                Some(m) if *m != t.master => {
                    let _ = write!(text, " of {m}");
                }
                _ => {}
            }
            if view.link_ok {
                match lag {
                    Ok(bytes) => {
                        let _ = write!(text, ", link ok, lag {bytes} B");
                    }
                    Err(_) => text.push_str(", link ok, lag ?"),
                }
            } else {
                let _ = write!(text, ", link down {} s", view.link_down.as_secs());
            }
            text
        }
    }
}

/// Why a `lag ?` in the table: each distinct error once (a wrong `redis_user` or
/// password, a user without `+info`, a Redis that does not answer). Not a disagreement:
/// the lag is for the operator's eyes, the roles do not depend on it.
fn lag_errors(t: &SentinelSummary) -> String {
    let mut errors: Vec<&str> = t
        .redis
        .values()
        .filter_map(|r| match r {
            RedisState::Replica { view, lag: Err(e) } if view.link_ok => Some(e.as_str()),
            _ => None,
        })
        .collect();
    errors.sort_unstable();
    errors.dedup();
    errors.iter().map(|e| format!("lag ?: {e}\n")).collect()
}

/// Left-aligned columns two spaces apart, no trailing spaces.
fn columns(rows: &[[String; 6]]) -> String {
    let mut widths = [0; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::cluster::{ClusterState, NodeName};
    use crate::guard::record::{PortRecord, Record};
    use crate::observe::Assignment;
    use crate::sentinel::{Addr, ReplicaView};
    use crate::status::GuardView;

    fn n(name: &str) -> NodeName {
        NodeName(name.into())
    }

    fn redis(i: u8) -> Addr {
        Addr {
            host: format!("10.0.0.{i}"),
            port: 6379,
        }
    }

    fn replica(i: u8, flags: &str, link_ok: bool) -> RedisState {
        RedisState::Replica {
            view: ReplicaView {
                addr: redis(i),
                flags: flags.split(',').map(String::from).collect(),
                link_ok,
                master: Some(redis(1)),
                repl_offset: Some(100),
                link_down: if link_ok {
                    Duration::ZERO
                } else {
                    Duration::from_secs(7)
                },
                candidacy: Default::default(),
            },
            lag: Ok(0),
        }
    }

    /// node1 primary, node2 and node3 replicas, as Sentinel and Pacemaker both see it.
    fn healthy() -> Snapshot {
        let nodes = ["node1", "node2", "node3"];
        let role = |i: usize| ["primary", "replica", "replica"][i].to_string();
        let cluster = Cib {
            state: ClusterState {
                quorate: true,
                roles: nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| (n(node), Some(RoleValue::parse(&role(i)))))
                    .collect(),
                applied_epoch: Some(4),
                write_blocks: [n("node2"), n("node3")].into(),
                read_blocks: Default::default(),
                online: nodes.iter().map(|node| n(node)).collect(),
                holds: Default::default(),
                priorities_left: Default::default(),
                homes: Default::default(),
                reads_ordered: false,
            },
            transient_roles: BTreeMap::new(),
        };
        let mut assignment = Assignment::default();
        for (i, node) in nodes.iter().enumerate() {
            let r = Role::parse(&role(i)).unwrap();
            assignment.desired.insert(n(node), r);
            assignment.redis.insert(n(node), vec![redis(i as u8 + 1)]);
        }
        let sentinels = SentinelSummary {
            reached: 3,
            known: 3,
            epoch: 4,
            master: redis(1),
            master_down: false,
            assignment,
            redis: [
                (
                    redis(1),
                    RedisState::Master {
                        flags: vec!["master".into()],
                    },
                ),
                (redis(2), replica(2, "slave", true)),
                (redis(3), replica(3, "slave", true)),
            ]
            .into(),
        };
        Snapshot {
            master_name: "redis-ha".into(),
            cluster: Ok(cluster),
            sentinels: Ok(sentinels),
            guard: GuardView::Record {
                record: guard_record(
                    "node2",
                    Some("not the primary: the Sentinels name node1 primary"),
                    None,
                ),
                now_ms: 1_764_662_400_250,
                stale_after_ms: 3000,
            },
        }
    }

    /// node's guard, last checked at 1764662400.000 (08:00:00 UTC), refusing writes.
    fn guard_record(node: &str, write: Option<&str>, read: Option<&str>) -> Record {
        let port = |kind: &str, port, why: Option<&str>| PortRecord {
            kind: kind.into(),
            port,
            refused: why.map(String::from),
            since_ms: 1_764_662_300_500,
        };
        Record {
            node: node.into(),
            checked_ms: 1_764_662_400_000,
            ports: vec![port("write", 6381, write), port("read", 6380, read)],
        }
    }

    #[test]
    fn the_guard_shows_what_it_refuses_and_why() {
        // The primary's guard refusing its writes, its reads left open.
        let mut s = healthy();
        s.guard = GuardView::Record {
            record: guard_record("node1", Some("this node's partition has no quorum"), None),
            now_ms: 1_764_662_400_250,
            stale_after_ms: 3000,
        };
        let (text, agree) = render(&s);
        assert!(!agree);
        for line in [
            "guard on node1 (this node), last check 250 ms ago:\n",
            "  write 6381  REFUSED since 07:58:20.500 UTC: this node's partition has no quorum\n",
            "  read  6380  left to the block clones since 07:58:20.500 UTC\n",
            "DISAGREE: node1: the guard refuses its write port 6381 though the Sentinels say primary: this node's partition has no quorum\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        // A guard that stopped checking.
        let mut s = healthy();
        if let GuardView::Record { now_ms, .. } = &mut s.guard {
            *now_ms += 10_000;
        }
        let (text, agree) = render(&s);
        assert!(!agree);
        assert!(
            text.contains("DISAGREE: the guard on node2 last checked 10.2 s ago"),
            "{text}"
        );
        // Not running, or off: said, not a disagreement.
        let mut s = healthy();
        s.guard = GuardView::NoRecord("/run/redis-ha/guard: No such file or directory".into());
        let (text, agree) = render(&s);
        assert!(agree, "{text}");
        assert!(
            text.contains("guard: not running on this node (/run/redis-ha/guard: No such file")
        );
        s.guard = GuardView::Off;
        assert!(
            render(&s)
                .0
                .contains("guard: off (guard = off in the config)")
        );
    }

    #[test]
    fn an_agreeing_cluster() {
        let (text, agree) = render(&healthy());
        assert!(agree);
        assert_eq!(
            text,
            "master redis-ha\n\
             pacemaker: 3 nodes, quorum, roles from config-epoch 4\n\
             sentinel:  3 of 3 Sentinels reached, config-epoch 4, master 10.0.0.1:6379\n\
             \n\
             NODE   REDIS          SENTINEL SAYS              redis_role  BLOCKS  AGREE\n\
             node1  10.0.0.1:6379  master                     primary     -       yes\n\
             node2  10.0.0.2:6379  replica, link ok, lag 0 B  replica     write   yes\n\
             node3  10.0.0.3:6379  replica, link ok, lag 0 B  replica     write   yes\n\
             \n\
             guard on node2 (this node), last check 250 ms ago:\n\
             \x20 write 6381  REFUSED since 07:58:20.500 UTC: not the primary: the Sentinels name node1 primary\n\
             \x20 read  6380  left to the block clones since 07:58:20.500 UTC\n\
             \n\
             all agree\n"
        );
    }

    #[test]
    fn an_unreadable_lag_says_why_once_and_is_no_disagreement() {
        let mut s = healthy();
        let refused = "Sentinel 10.0.0.1:6379 refused our credentials: as user nobody: \
                       WRONGPASS invalid username-password pair or user is disabled.";
        if let Ok(t) = &mut s.sentinels {
            for i in [2, 3] {
                if let Some(RedisState::Replica { lag, .. }) = t.redis.get_mut(&redis(i)) {
                    *lag = Err(refused.to_string());
                }
            }
        }
        let (text, agree) = render(&s);
        assert!(agree, "{text}");
        assert!(
            text.contains("node2  10.0.0.2:6379  replica, link ok, lag ?  replica"),
            "{text}"
        );
        assert_eq!(
            text.matches(&format!("lag ?: {refused}\n")).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn every_kind_of_disagreement_is_named() {
        let mut s = healthy();
        let c = s.cluster.as_mut().unwrap();
        // node3's Redis died: Sentinel says fail, the attribute still says replica, and
        // its ReadBlock did not start.
        if let Ok(t) = &mut s.sentinels {
            t.redis
                .insert(redis(3), replica(3, "slave,s_down,disconnected", false));
            t.assignment.desired.insert(n("node3"), Role::Fail);
        }
        // node2 got a transient primary: two primaries, and its WriteBlock still runs.
        c.transient_roles
            .insert(n("node2"), RoleValue::parse("primary"));
        let (text, agree) = render(&s);
        assert!(!agree);
        let want = [
            "node2  10.0.0.2:6379  replica, link ok, lag 0 B   primary (transient)  write   NO",
            "node3  10.0.0.3:6379  down (s_down,disconnected)  replica              write   NO",
            "DISAGREE: 2 nodes carry redis_role=primary at once",
            "DISAGREE: node2: a transient redis_role=primary overrides the permanent value",
            "DISAGREE: node2: redis_role is primary, the Sentinels say replica",
            "DISAGREE: node2: RedisLBWriteBlock runs though redis_role is primary",
            "DISAGREE: node3: redis_role is replica, the Sentinels say fail",
        ];
        for line in want {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }

    #[test]
    fn unknown_sides_are_disagreements() {
        let mut s = healthy();
        s.sentinels = Err("reached 1 of 3 known Sentinels: no majority, so no decision".into());
        let (text, agree) = render(&s);
        assert!(!agree);
        assert!(text.contains("node1  -      ?"), "{text}");
        assert!(text.contains(
            "DISAGREE: Sentinel: reached 1 of 3 known Sentinels: no majority, so no decision"
        ));
        s.cluster = Err("cibadmin --query failed (try again): not connected".into());
        let (text, agree) = render(&s);
        assert!(!agree);
        assert!(!text.contains("NODE"), "{text}");
        let mut s = healthy();
        s.cluster.as_mut().unwrap().state.quorate = false;
        let (text, agree) = render(&s);
        assert!(!agree);
        assert!(text.contains("pacemaker: 3 nodes, NO quorum"), "{text}");
        let mut s = healthy();
        s.cluster.as_mut().unwrap().state.applied_epoch = Some(5);
        let (text, agree) = render(&s);
        assert!(!agree);
        assert!(
            text.contains(
                "DISAGREE: the roles were written from config-epoch 5, newer than the Sentinels' 4"
            ),
            "{text}"
        );
    }

    #[test]
    fn blocks_follow_the_shipped_rules() {
        let blocks = |v: Option<&str>| blocks_for(v.map(RoleValue::parse).as_ref());
        assert_eq!(blocks(None), (true, true));
        assert_eq!(blocks(Some("fail")), (true, true));
        assert_eq!(blocks(Some("Primary")), (false, false));
        assert_eq!(blocks(Some("replica")), (false, true));
        // Not a role: the write rule (ne primary) matches, the read rule (eq fail) not.
        assert_eq!(blocks(Some("bogus")), (false, true));
    }
}
