//! Resource parameters (`OCF_RESKEY_*`) parsed into a typed block, without any I/O.

use std::time::Duration;

use crate::blocks::{AgentKind, CHAIN};
use crate::firewall::block::BadValue;
use crate::firewall::{Backend, Block, ChainName, Families, MatchBy, Port, RejectWith, Scope};
use crate::process::Process;

/// Every parameter the agents take, with its default: the meta-data must say the same
/// (a unit test compares them). `None` means "derived" (see `wait`).
#[cfg(test)]
pub(crate) fn parameter_defaults(kind: AgentKind) -> [(&'static str, Option<String>); 7] {
    [
        ("port", Some(kind.default_port().to_string())),
        ("match", Some(MatchBy::Conntrack.to_string())),
        ("reject_with", Some(RejectWith::TcpReset.to_string())),
        ("family", Some(Families::Ipv4.to_string())),
        ("chain", Some(CHAIN.to_string())),
        ("backend", Some(Backend::Auto.to_string())),
        ("wait", None),
    ]
}

/// A parsed configuration: what to block, and how long to wait for the xtables lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) block: Block,
    /// `None`: derived from the operation timeout.
    pub(crate) wait: Option<Duration>,
}

/// Upper bound for `wait`: longer than any sensible operation timeout.
const MAX_WAIT_SECS: u64 = 3600;

/// Parses parameters read through `get(name)` (e.g. `OCF_RESKEY_port` for `port`).
/// Absent means default; present but empty is an error, like any other bad value.
pub(crate) fn parse<'a>(
    kind: AgentKind,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<Params, BadValue> {
    let port = match get("port") {
        Some(v) => Port::parse("port", v)?,
        None => kind.default_port(),
    };
    let block = Block {
        owner: kind.name(),
        port,
        match_by: get("match").map_or(Ok(MatchBy::Conntrack), MatchBy::parse)?,
        reject_with: get("reject_with").map_or(Ok(RejectWith::TcpReset), RejectWith::parse)?,
        scope: Scope::Every,
        families: get("family").map_or(Ok(Families::Ipv4), Families::parse)?,
        chain: ChainName::parse(get("chain").unwrap_or(CHAIN))?,
        backend: get("backend").map_or(Ok(Backend::Auto), Backend::parse)?,
    };
    let wait = match get("wait") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_WAIT_SECS).contains(&n) && !v.starts_with('+') => {
                Some(Duration::from_secs(n))
            }
            _ => {
                return Err(BadValue::new(
                    "wait",
                    v,
                    format!("whole seconds from 1 to {MAX_WAIT_SECS}"),
                ));
            }
        },
    };
    Ok(Params { block, wait })
}

/// The resource's parameters as execd hands them over: `OCF_RESKEY_<name>`.
pub(crate) fn from_process(kind: AgentKind, p: &Process) -> Result<Params, BadValue> {
    parse(kind, |name| p.var(&format!("OCF_RESKEY_{name}")))
}

/// The parameters in `name=value` lines (the state file, as [`to_pairs`] wrote it);
/// lines without `=` are skipped, the first of a name counts.
pub(crate) fn from_lines(kind: AgentKind, text: &str) -> Result<Params, BadValue> {
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    parse(kind, |k| {
        pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    })
}

/// The parameters that reproduce `block` through `parse` (for the state file).
pub(crate) fn to_pairs(block: &Block) -> Vec<(&'static str, String)> {
    vec![
        ("port", block.port.to_string()),
        ("match", block.match_by.to_string()),
        ("reject_with", block.reject_with.to_string()),
        ("family", block.families.to_string()),
        ("chain", block.chain.to_string()),
        ("backend", block.backend.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_map(kind: AgentKind, pairs: &[(&str, &str)]) -> Result<Params, BadValue> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        parse(kind, |k| map.get(k).copied())
    }

    #[test]
    fn defaults_differ_only_by_port() {
        let read = parse_map(AgentKind::Read, &[]).unwrap();
        let write = parse_map(AgentKind::Write, &[]).unwrap();
        assert_eq!(read.block.port.get(), 6380);
        assert_eq!(write.block.port.get(), 6381);
        assert_eq!(read.block.tag(), "redis-ha:RedisLBReadBlock:6380");
        assert_eq!(write.block.chain.as_str(), "REDIS-HA");
        assert_eq!(write.block.match_by, MatchBy::Conntrack);
        assert_eq!(write.block.reject_with, RejectWith::TcpReset);
        assert_eq!(write.block.families, Families::Ipv4);
        assert_eq!(write.block.backend, Backend::Auto);
        assert_eq!(write.wait, None);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let table = [
            ("port", "0", "invalid port \"0\""),
            ("port", "", "invalid port \"\""),
            ("port", "65536", "invalid port"),
            (
                "match",
                "ctstate",
                "invalid match \"ctstate\": expected one of conntrack, mark, dport",
            ),
            ("reject_with", "tcp-rst", "invalid reject_with"),
            ("family", "ipv5", "invalid family"),
            ("chain", "THIS-NAME-IS-FAR-TOO-LONG-FOR-IT", "invalid chain"),
            ("chain", "INPUT", "invalid chain"),
            ("backend", "xt", "invalid backend"),
            ("wait", "0", "invalid wait"),
            ("wait", "ten", "invalid wait"),
        ];
        for (name, value, want) in table {
            let err = parse_map(AgentKind::Write, &[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(want), "{name}={value:?}: {err}");
        }
    }

    #[test]
    fn values_parse() {
        let p = parse_map(
            AgentKind::Read,
            &[
                ("port", "7000"),
                ("match", "mark"),
                ("reject_with", "drop"),
                ("family", "both"),
                ("chain", "MY-CHAIN"),
                ("backend", "legacy"),
                ("wait", "7"),
            ],
        )
        .unwrap();
        assert_eq!(p.block.port.get(), 7000);
        assert_eq!(p.block.match_by, MatchBy::Mark);
        assert_eq!(p.block.reject_with, RejectWith::Drop);
        assert_eq!(p.block.families, Families::Both);
        assert_eq!(p.block.chain.as_str(), "MY-CHAIN");
        assert_eq!(p.block.backend, Backend::Legacy);
        assert_eq!(p.wait, Some(Duration::from_secs(7)));
    }

    #[test]
    fn pairs_round_trip() {
        let p = parse_map(AgentKind::Write, &[("family", "both"), ("match", "dport")]).unwrap();
        let pairs = to_pairs(&p.block);
        let back = parse(AgentKind::Write, |k| {
            pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(back.block, p.block);
    }
}
