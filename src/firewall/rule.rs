//! Blocks turned into iptables rule specifications: pure, so every variant is tested by table.

use super::block::{Block, ChainName, Family, MatchBy, RejectWith, Scope};

/// The comment on our jump from INPUT, so we only ever delete jumps we made.
pub(crate) const JUMP_TAG: &str = "redis-ha";

/// The conntrack match's option that limits a block to new connections (`Scope::New`).
pub(crate) const NEW_ONLY: [&str; 2] = ["--ctstate", "NEW"];

/// One rule: where it lives and its specification (what follows `-A CHAIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) table: &'static str,
    pub(crate) chain: String,
    pub(crate) spec: Vec<String>,
}

impl Rule {
    pub(crate) fn new(table: &'static str, chain: &str, spec: &[&str]) -> Self {
        Self {
            table,
            chain: chain.to_string(),
            spec: spec.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The rule in our chain that refuses the block's port.
    pub(crate) fn block(block: &Block, family: Family) -> Self {
        let port = block.port.to_string();
        let tag = block.tag();
        let mut spec: Vec<&str> = vec!["-p", "tcp"];
        // As iptables-save lists them: within the conntrack match `--ctstate` comes
        // first, otherwise a conntrack match of its own follows the port's.
        let new = block.scope == Scope::New;
        match block.match_by {
            // ORIGINAL only: a local client's RST from REJECT travels back through INPUT
            // in the reply direction and must not be rejected in turn.
            MatchBy::Conntrack => {
                spec.extend(["-m", "conntrack"]);
                if new {
                    spec.extend(NEW_ONLY);
                }
                spec.extend(["--ctorigdstport", &port, "--ctdir", "ORIGINAL"])
            }
            MatchBy::Mark => spec.extend(["-m", "mark", "--mark", &port]),
            MatchBy::Dport => spec.extend(["--dport", &port]),
        }
        if new && block.match_by != MatchBy::Conntrack {
            spec.extend(["-m", "conntrack"]);
            spec.extend(NEW_ONLY);
        }
        spec.extend(["-m", "comment", "--comment", &tag, "-j"]);
        match (block.reject_with, family) {
            (RejectWith::TcpReset, _) => spec.extend(["REJECT", "--reject-with", "tcp-reset"]),
            (RejectWith::IcmpPortUnreachable, Family::V4) => {
                spec.extend(["REJECT", "--reject-with", "icmp-port-unreachable"])
            }
            (RejectWith::IcmpPortUnreachable, Family::V6) => {
                spec.extend(["REJECT", "--reject-with", "icmp6-port-unreachable"])
            }
            (RejectWith::Drop, _) => spec.push("DROP"),
        }
        Rule::new("filter", block.chain.as_str(), &spec)
    }

    /// The jump from INPUT into our filter chain.
    pub(crate) fn jump(chain: &ChainName) -> Self {
        Rule::jump_from("filter", "INPUT", chain.as_str())
    }

    /// A tagged jump from a built-in chain into one of ours.
    pub(crate) fn jump_from(table: &'static str, from: &str, chain: &str) -> Self {
        Rule::new(
            table,
            from,
            &["-m", "comment", "--comment", JUMP_TAG, "-j", chain],
        )
    }

    /// `-p tcp --dport PORT` with our comment tag: how `redis-ha ports` rules start.
    pub(crate) fn tcp_port_tagged(
        table: &'static str,
        chain: &str,
        prefix: &[&str],
        port: &str,
        tag: &str,
        target: &[&str],
    ) -> Self {
        let mut spec: Vec<&str> = prefix.to_vec();
        spec.extend([
            "-p",
            "tcp",
            "--dport",
            port,
            "-m",
            "comment",
            "--comment",
            tag,
            "-j",
        ]);
        spec.extend(target);
        Rule::new(table, chain, &spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::block::{Backend, Families, Port};

    fn block(match_by: MatchBy, reject_with: RejectWith) -> Block {
        Block {
            owner: "RedisLBWriteBlock",
            port: Port::new(6381),
            match_by,
            reject_with,
            scope: Scope::Every,
            families: Families::Both,
            chain: ChainName::parse("REDIS-HA").unwrap(),
            backend: Backend::Auto,
        }
    }

    #[test]
    fn block_rules_cover_every_variant() {
        let c = "-m comment --comment redis-ha:RedisLBWriteBlock:6381";
        let table = [
            (
                MatchBy::Conntrack,
                RejectWith::TcpReset,
                Family::V4,
                format!(
                    "-p tcp -m conntrack --ctorigdstport 6381 --ctdir ORIGINAL {c} -j REJECT --reject-with tcp-reset"
                ),
            ),
            (
                MatchBy::Mark,
                RejectWith::IcmpPortUnreachable,
                Family::V4,
                format!(
                    "-p tcp -m mark --mark 6381 {c} -j REJECT --reject-with icmp-port-unreachable"
                ),
            ),
            (
                MatchBy::Mark,
                RejectWith::IcmpPortUnreachable,
                Family::V6,
                format!(
                    "-p tcp -m mark --mark 6381 {c} -j REJECT --reject-with icmp6-port-unreachable"
                ),
            ),
            (
                MatchBy::Dport,
                RejectWith::Drop,
                Family::V6,
                format!("-p tcp --dport 6381 {c} -j DROP"),
            ),
            (
                MatchBy::Dport,
                RejectWith::TcpReset,
                Family::V6,
                format!("-p tcp --dport 6381 {c} -j REJECT --reject-with tcp-reset"),
            ),
        ];
        for (m, r, family, want) in table {
            let rule = Rule::block(&block(m, r), family);
            assert_eq!(rule.table, "filter");
            assert_eq!(rule.chain, "REDIS-HA");
            assert_eq!(rule.spec.join(" "), want, "{m:?} {r:?} {family:?}");
        }
    }

    /// New connections only: in the conntrack match itself, else a conntrack match of
    /// its own after the port's, as iptables-save lists them (`owned::is_block_rule`).
    #[test]
    fn a_block_of_new_connections_matches_their_state() {
        let c = "-m comment --comment redis-ha:RedisLBWriteBlock:6381 -j REJECT --reject-with tcp-reset";
        let table = [
            (
                MatchBy::Conntrack,
                format!(
                    "-p tcp -m conntrack --ctstate NEW --ctorigdstport 6381 --ctdir ORIGINAL {c}"
                ),
            ),
            (
                MatchBy::Mark,
                format!("-p tcp -m mark --mark 6381 -m conntrack --ctstate NEW {c}"),
            ),
            (
                MatchBy::Dport,
                format!("-p tcp --dport 6381 -m conntrack --ctstate NEW {c}"),
            ),
        ];
        for (m, want) in table {
            let new = Block {
                scope: Scope::New,
                ..block(m, RejectWith::TcpReset)
            };
            assert_eq!(Rule::block(&new, Family::V4).spec.join(" "), want, "{m:?}");
        }
    }

    #[test]
    fn jump_is_tagged_and_targets_our_chain() {
        let rule = Rule::jump(&ChainName::parse("MY-CHAIN").unwrap());
        assert_eq!(rule.chain, "INPUT");
        assert_eq!(
            rule.spec.join(" "),
            "-m comment --comment redis-ha -j MY-CHAIN"
        );
    }
}
