//! One address family's share of a firewall change as one `iptables-restore --noflush`
//! script, decided from one listing of the filter table (pure: every case is a row in a
//! table). The kernel applies such a script whole or not at all, but it cannot say "add if
//! missing": the script holds exactly the changes the listing calls for, and a listing
//! that is stale by the time the script runs makes the script fail, not half-apply.

use super::rule::Rule;
use super::save::{Listed, Listing};

/// A block's rule to put in force in its chain, jumped to from the top of INPUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ensure {
    pub(crate) rule: Rule,
    /// Whether `iptables -C` found this exact rule. Only worth asking when the listing
    /// holds a rule with its tag: a rule without our tag is never ours.
    pub(crate) present: bool,
}

/// Rules to take out of `chain`: every one whose comment tag matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lift {
    pub(crate) chain: String,
    pub(crate) tag: Tag,
}

/// Which comment tags a lift takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tag {
    /// One block's tag (`redis-ha:OWNER:PORT`).
    Exact(String),
    /// Every tag that starts so (`redis-ha:OWNER:`).
    Prefix(String),
}

impl Lift {
    fn takes(&self, rule: &Listed) -> bool {
        rule.chain == self.chain
            && rule.comment().is_some_and(|c| match &self.tag {
                Tag::Exact(tag) => c == tag,
                Tag::Prefix(prefix) => c.starts_with(prefix.as_str()),
            })
    }
}

/// The lines between `*filter` and `COMMIT`, and how many rules of ours they delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Script {
    pub(crate) lines: Vec<String>,
    /// Tagged rules deleted (our jumps from INPUT not counted).
    pub(crate) deleted: usize,
}

impl Script {
    /// Nothing to change: no `iptables-restore` to run at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The whole input for `iptables-restore --noflush`.
    pub(crate) fn text(&self) -> String {
        let mut text = String::from("*filter\n");
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }
}

/// The script that makes `listing` hold every `ensure` rule (with its chain and the jump
/// to it) and none of the rules `lift` takes, and that drops a chain of a lift with its
/// jumps once no rule is left in it. In order: deletions, new chains, jumps, rules, then
/// the jumps and chains that go.
pub(crate) fn plan(listing: &Listing, ensure: &[Ensure], lift: &[Lift]) -> Script {
    let mut script = Script::default();
    let lifted: Vec<&Listed> = listing
        .rules()
        .iter()
        .filter(|r| lift.iter().any(|l| l.takes(r)))
        .collect();
    for rule in &lifted {
        script.push(format!("-D {} {}", quote(&rule.chain), rule.text));
        script.deleted += 1;
    }

    let mut kept_chains: Vec<&str> = Vec::new();
    for e in ensure {
        let chain = e.rule.chain.as_str();
        if kept_chains.contains(&chain) {
            continue;
        }
        kept_chains.push(chain);
        if !listing.has_chain(chain) {
            script.push(format!("-N {}", quote(chain)));
        }
        if jumps_to(listing, chain).next().is_none() {
            script.push(format!("-I INPUT 1 {}", words(&jump(chain).spec)));
        }
    }
    let mut appended: Vec<&Rule> = Vec::new();
    for e in ensure {
        // A lift of the same tag in the same chain deletes every copy of it: add it back.
        let tag = super::save::comment_of(&e.rule.spec);
        let deleted = lifted
            .iter()
            .any(|r| r.chain == e.rule.chain && r.comment() == tag);
        if (!e.present || deleted) && !appended.contains(&&e.rule) {
            script.push(format!(
                "-A {} {}",
                quote(&e.rule.chain),
                words(&e.rule.spec)
            ));
            appended.push(&e.rule);
        }
    }

    let mut dropped: Vec<&str> = Vec::new();
    for l in lift {
        let chain = l.chain.as_str();
        if kept_chains.contains(&chain) || dropped.contains(&chain) || !listing.has_chain(chain) {
            continue;
        }
        dropped.push(chain);
        let left = listing
            .rules_in(chain)
            .filter(|r| !lifted.iter().any(|d| std::ptr::eq(*d, *r)))
            .count();
        if left > 0 {
            continue;
        }
        let ours: Vec<&Listed> = jumps_to(listing, chain).collect();
        for j in &ours {
            script.push(format!("-D {} {}", quote(&j.chain), j.text));
        }
        // A chain someone else still jumps to stays (deleting it would fail the whole
        // script); what matters for us is that it is empty.
        let foreign = listing
            .rules()
            .iter()
            .any(|r| r.target() == Some(chain) && !ours.iter().any(|o| std::ptr::eq(*o, r)));
        if !foreign {
            script.push(format!("-X {}", quote(chain)));
        }
    }
    script
}

impl Script {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Our jump from INPUT to `chain`.
fn jump(chain: &str) -> Rule {
    Rule::jump_from("filter", "INPUT", chain)
}

/// Every copy of our jump from INPUT to `chain` in the listing.
fn jumps_to<'a>(listing: &'a Listing, chain: &str) -> impl Iterator<Item = &'a Listed> {
    let spec = jump(chain).spec;
    listing.rules_in("INPUT").filter(move |r| r.spec == spec)
}

/// Arguments as one restore line: `iptables-restore` splits on blanks and reads double
/// quotes with backslash escapes inside, as `iptables -S` writes them.
fn words(spec: &[String]) -> String {
    spec.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'' || c == '#');
    if plain {
        return word.to_string();
    }
    let mut quoted = String::from("\"");
    for c in word.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::rule::JUMP_TAG as J;

    const CHAIN: &str = "REDIS-HA";
    const W: &str = "redis-ha:RedisLBWriteBlock:6381";
    const R: &str = "redis-ha:RedisLBReadBlock:6380";

    /// Our block rule for a tag, as we build it (`-S` would print `"tag"` quoted).
    fn rule(tag: &str) -> Rule {
        Rule::new(
            "filter",
            CHAIN,
            &[
                "-p",
                "tcp",
                "--dport",
                "6381",
                "-m",
                "comment",
                "--comment",
                tag,
                "-j",
                "DROP",
            ],
        )
    }

    fn listed(tag: &str) -> String {
        format!("-A {CHAIN} -p tcp -m tcp --dport 6381 -m comment --comment \"{tag}\" -j DROP")
    }

    fn listing(lines: &[String]) -> Listing {
        let mut text = String::from("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        Listing::parse(&text)
    }

    fn chain() -> String {
        format!("-N {CHAIN}")
    }

    fn jumped() -> String {
        format!("-A INPUT -m comment --comment {J} -j {CHAIN}")
    }

    fn ensure(tag: &str, present: bool) -> Ensure {
        Ensure {
            rule: rule(tag),
            present,
        }
    }

    fn lift(tag: &str) -> Lift {
        Lift {
            chain: CHAIN.into(),
            tag: Tag::Exact(tag.into()),
        }
    }

    const ADD_CHAIN: &str = "-N REDIS-HA";
    const ADD_JUMP: &str = "-I INPUT 1 -m comment --comment redis-ha -j REDIS-HA";
    const DEL_JUMP: &str = "-D INPUT -m comment --comment redis-ha -j REDIS-HA";
    const DEL_CHAIN: &str = "-X REDIS-HA";

    fn add(tag: &str) -> String {
        format!("-A {CHAIN} -p tcp --dport 6381 -m comment --comment {tag} -j DROP")
    }

    fn del(tag: &str) -> String {
        format!("-D {CHAIN} -p tcp -m tcp --dport 6381 -m comment --comment \"{tag}\" -j DROP")
    }

    #[test]
    fn each_case_writes_exactly_what_the_listing_lacks() {
        struct Case {
            name: &'static str,
            listing: Vec<String>,
            ensure: Vec<Ensure>,
            lift: Vec<Lift>,
            want: Vec<String>,
            deleted: usize,
        }
        let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let table = [
            Case {
                name: "start on a bare table: chain, jump, rule",
                listing: vec![],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![ADD_CHAIN.into(), ADD_JUMP.into(), add(W)],
                deleted: 0,
            },
            Case {
                name: "start when the other agent's rule is there: the rule only",
                listing: vec![chain(), jumped(), listed(R)],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![add(W)],
                deleted: 0,
            },
            Case {
                name: "start when the chain is there but the jump is not",
                listing: vec![chain(), listed(R)],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![ADD_JUMP.into(), add(W)],
                deleted: 0,
            },
            Case {
                name: "start when everything is there: nothing",
                listing: vec![chain(), jumped(), listed(W)],
                ensure: vec![ensure(W, true)],
                lift: vec![],
                want: vec![],
                deleted: 0,
            },
            Case {
                name: "start when a rule with our tag but another spec is there: ours too",
                listing: vec![chain(), jumped(), listed(W)],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![add(W)],
                deleted: 0,
            },
            Case {
                name: "stop of the last rule: rule, jump, chain",
                listing: vec![chain(), jumped(), listed(W)],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W), DEL_JUMP.into(), DEL_CHAIN.into()],
                deleted: 1,
            },
            Case {
                name: "stop while the other agent's rule stays: the rule only",
                listing: vec![chain(), jumped(), listed(W), listed(R)],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W)],
                deleted: 1,
            },
            Case {
                name: "stop deletes every copy and every jump",
                listing: vec![chain(), jumped(), jumped(), listed(W), listed(W)],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![
                    del(W),
                    del(W),
                    DEL_JUMP.into(),
                    DEL_JUMP.into(),
                    DEL_CHAIN.into(),
                ],
                deleted: 2,
            },
            Case {
                name: "stop after the rule vanished: the leftover jump and empty chain",
                listing: vec![chain(), jumped()],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![DEL_JUMP.into(), DEL_CHAIN.into()],
                deleted: 0,
            },
            Case {
                name: "stop when nothing is there: nothing",
                listing: vec![],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![],
                deleted: 0,
            },
            Case {
                name: "stop leaves an untagged rule, and so the chain and jump",
                listing: vec![chain(), jumped(), listed(W), format!("-A {CHAIN} -j RETURN")],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W)],
                deleted: 1,
            },
            Case {
                name: "stop keeps a chain someone else jumps to, emptied, without our jump",
                listing: vec![
                    chain(),
                    jumped(),
                    format!("-A FORWARD -j {CHAIN}"),
                    listed(W),
                ],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W), DEL_JUMP.into()],
                deleted: 1,
            },
            Case {
                name: "changed parameters, same tag: old copies out, the new rule in",
                listing: vec![chain(), jumped(), listed(W)],
                ensure: vec![ensure(W, true)],
                lift: vec![lift(W)],
                want: vec![del(W), add(W)],
                deleted: 1,
            },
            Case {
                name: "both ports at once (the guard): one script",
                listing: vec![],
                ensure: vec![ensure(W, false), ensure(R, false)],
                lift: vec![],
                want: vec![ADD_CHAIN.into(), ADD_JUMP.into(), add(W), add(R)],
                deleted: 0,
            },
            Case {
                name: "one port on, the other off, chain kept",
                listing: vec![chain(), jumped(), listed(R)],
                ensure: vec![ensure(W, false)],
                lift: vec![lift(R)],
                want: vec![del(R), add(W)],
                deleted: 1,
            },
            Case {
                name: "by tag prefix: every rule of the owner, none of others",
                listing: vec![
                    chain(),
                    jumped(),
                    listed("redis-ha:RedisLBWriteBlock:7000"),
                    listed(W),
                    listed(R),
                ],
                ensure: vec![],
                lift: vec![Lift {
                    chain: CHAIN.into(),
                    tag: Tag::Prefix("redis-ha:RedisLBWriteBlock:".into()),
                }],
                want: s(&[
                    "-D REDIS-HA -p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:7000\" -j DROP",
                ])
                .into_iter()
                .chain([del(W)])
                .collect(),
                deleted: 2,
            },
        ];
        for case in table {
            let got = plan(&listing(&case.listing), &case.ensure, &case.lift);
            assert_eq!(got.lines, case.want, "{}", case.name);
            assert_eq!(got.deleted, case.deleted, "{}", case.name);
            assert_eq!(got.is_empty(), case.want.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn the_script_is_one_filter_transaction() {
        let got = plan(&listing(&[]), &[ensure(W, false)], &[]);
        assert_eq!(
            got.text(),
            format!("*filter\n{ADD_CHAIN}\n{ADD_JUMP}\n{}\nCOMMIT\n", add(W))
        );
    }

    #[test]
    fn words_are_quoted_the_way_iptables_restore_reads_them() {
        let table = [
            (
                "redis-ha:RedisLBWriteBlock:6381",
                "redis-ha:RedisLBWriteBlock:6381",
            ),
            ("two words", "\"two words\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("", "\"\""),
            ("#hash", "\"#hash\""),
        ];
        for (word, want) in table {
            assert_eq!(quote(word), want, "{word:?}");
        }
    }
}
