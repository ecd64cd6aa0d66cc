//! One address family's share of a firewall change as one `iptables-restore --noflush`
//! script, decided from one listing of the filter table (pure: every case is a row in a
//! table). The kernel applies such a script whole or not at all, but it cannot say "add if
//! missing": the script holds exactly the changes the listing calls for, and a listing
//! that is stale by the time the script runs makes the script fail, not half-apply.

use super::owned::{self, Standing, Why, is_block_rule, is_marker};
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
    /// Only a rule of our shape: one that merely carries our tag is someone else's.
    fn takes(&self, rule: &Listed) -> bool {
        rule.chain == self.chain
            && is_block_rule(&rule.spec)
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

    /// The whole input for `iptables-restore --noflush`, changing `table`.
    pub(crate) fn text_in(&self, table: &str) -> String {
        let mut text = format!("*{table}\n");
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }
}

/// A chain an ensure would jump to and fill, and that is not ours (see `owned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotOurs {
    pub(crate) chain: String,
    pub(crate) why: Why,
}

/// The script that makes `listing` hold every `ensure` rule (with its chain, marked, and
/// the jump to it) and none of the rules `lift` takes; refused whole when an ensure's
/// chain is not ours. A lift takes only rules of ours; once none is left in its chain, our
/// jumps to it go, and the chain too when it is ours and no one else jumps to it: a chain
/// holding someone else's rule is never deleted, nor is their rule. In order: deletions,
/// new chains (with their marker), markers of adopted chains, jumps, rules, then the
/// jumps and chains that go.
pub(crate) fn plan(listing: &Listing, ensure: &[Ensure], lift: &[Lift]) -> Result<Script, NotOurs> {
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
        let marker = owned::marker("filter", chain);
        match owned::standing(listing, chain, is_block_rule) {
            Standing::Missing => {
                script.push(format!("-N {}", quote(chain)));
                script.push(format!("-A {} {}", quote(chain), words(&marker.spec)));
            }
            Standing::Ours => {}
            Standing::Earlier => {
                script.push(format!("-I {} 1 {}", quote(chain), words(&marker.spec)))
            }
            Standing::Foreign(why) => {
                return Err(NotOurs {
                    chain: chain.to_string(),
                    why,
                });
            }
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
        let left: Vec<&Listed> = listing
            .rules_in(chain)
            .filter(|r| !lifted.iter().any(|d| std::ptr::eq(*d, *r)))
            .collect();
        // Rules of ours still in it (the other agent's, the guard's) need the jump.
        if left.iter().any(|r| is_block_rule(&r.spec)) {
            continue;
        }
        let ours: Vec<&Listed> = jumps_to(listing, chain).collect();
        for j in &ours {
            script.push(format!("-D {} {}", quote(&j.chain), j.text));
        }
        // A chain someone else still jumps to stays (deleting it would fail the whole
        // script), and so does one that is not ours: what matters for us is that nothing
        // of ours is in it, nor jumps to it.
        let foreign_jump = listing
            .rules()
            .iter()
            .any(|r| r.target() == Some(chain) && !ours.iter().any(|o| std::ptr::eq(*o, r)));
        let is_ours = matches!(
            owned::standing(listing, chain, is_block_rule),
            Standing::Ours | Standing::Earlier
        );
        if is_ours && !foreign_jump {
            // By name, not `-F`: a rule someone added since our listing fails the script.
            for m in left.iter().filter(|r| is_marker(&r.spec)) {
                script.push(format!("-D {} {}", quote(chain), m.text));
            }
            script.push(format!("-X {}", quote(chain)));
        }
    }
    Ok(script)
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

    /// The port a tag names (`redis-ha:OWNER:PORT`).
    fn port(tag: &str) -> &str {
        tag.rsplit(':').next().unwrap()
    }

    /// Our block rule for a tag, as we build it (`-S` would print `"tag"` quoted).
    fn rule(tag: &str) -> Rule {
        Rule::new(
            "filter",
            CHAIN,
            &[
                "-p",
                "tcp",
                "--dport",
                port(tag),
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
        format!(
            "-A {CHAIN} -p tcp -m tcp --dport {} -m comment --comment \"{tag}\" -j DROP",
            port(tag)
        )
    }

    fn listing(lines: &[String]) -> Listing {
        let mut text = String::from("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        Listing::parse(&text)
    }

    /// Our chain, marked, as `-S` lists it.
    fn chain() -> String {
        format!("-N {CHAIN}\n-A {CHAIN} -m comment --comment \"redis-ha:chain\"")
    }

    /// A chain of that name without our marker: an earlier release's, or someone's.
    fn unmarked() -> String {
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
    const ADD_MARKER: &str = "-A REDIS-HA -m comment --comment redis-ha:chain";
    const ADOPT: &str = "-I REDIS-HA 1 -m comment --comment redis-ha:chain";
    const DEL_MARKER: &str = "-D REDIS-HA -m comment --comment \"redis-ha:chain\"";
    const ADD_JUMP: &str = "-I INPUT 1 -m comment --comment redis-ha -j REDIS-HA";
    const DEL_JUMP: &str = "-D INPUT -m comment --comment redis-ha -j REDIS-HA";
    const DEL_CHAIN: &str = "-X REDIS-HA";

    fn add(tag: &str) -> String {
        format!(
            "-A {CHAIN} -p tcp --dport {} -m comment --comment {tag} -j DROP",
            port(tag)
        )
    }

    fn del(tag: &str) -> String {
        format!("-D {}", listed(tag).strip_prefix("-A ").unwrap())
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
        let table = [
            Case {
                name: "start on a bare table: chain with its marker, jump, rule",
                listing: vec![],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![ADD_CHAIN.into(), ADD_MARKER.into(), ADD_JUMP.into(), add(W)],
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
                want: vec![del(W), DEL_JUMP.into(), DEL_MARKER.into(), DEL_CHAIN.into()],
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
                    DEL_MARKER.into(),
                    DEL_CHAIN.into(),
                ],
                deleted: 2,
            },
            Case {
                name: "stop after the rule vanished: the leftover jump and empty chain",
                listing: vec![chain(), jumped()],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![DEL_JUMP.into(), DEL_MARKER.into(), DEL_CHAIN.into()],
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
                name: "stop next to someone's rule: ours and our jump go, theirs and the chain stay",
                listing: vec![
                    chain(),
                    jumped(),
                    listed(W),
                    format!("-A {CHAIN} -j RETURN"),
                ],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W), DEL_JUMP.into()],
                deleted: 1,
            },
            Case {
                name: "stop in someone's chain where an earlier start put our rule after their ACCEPT",
                listing: vec![
                    unmarked(),
                    format!("-A {CHAIN} -j ACCEPT"),
                    jumped(),
                    listed(W),
                ],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W), DEL_JUMP.into()],
                deleted: 1,
            },
            Case {
                name: "stop without a start leaves someone's empty chain alone",
                listing: vec![unmarked()],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![],
                deleted: 0,
            },
            Case {
                name: "stop never takes a rule that only carries our tag",
                listing: vec![
                    chain(),
                    jumped(),
                    format!("-A {CHAIN} -m comment --comment \"{W}\" -j ACCEPT"),
                ],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![DEL_JUMP.into()],
                deleted: 0,
            },
            Case {
                name: "start in an earlier release's chain: marked, then the rule",
                listing: vec![unmarked(), jumped(), listed(R)],
                ensure: vec![ensure(W, false)],
                lift: vec![],
                want: vec![ADOPT.into(), add(W)],
                deleted: 0,
            },
            Case {
                name: "stop of an earlier release's last rule: rule, jump, chain",
                listing: vec![unmarked(), jumped(), listed(W)],
                ensure: vec![],
                lift: vec![lift(W)],
                want: vec![del(W), DEL_JUMP.into(), DEL_CHAIN.into()],
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
                want: vec![
                    ADD_CHAIN.into(),
                    ADD_MARKER.into(),
                    ADD_JUMP.into(),
                    add(W),
                    add(R),
                ],
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
                want: vec![del("redis-ha:RedisLBWriteBlock:7000"), del(W)],
                deleted: 2,
            },
        ];
        for case in table {
            let got = plan(&listing(&case.listing), &case.ensure, &case.lift)
                .unwrap_or_else(|e| panic!("{}: refused: {e:?}", case.name));
            assert_eq!(got.lines, case.want, "{}", case.name);
            assert_eq!(got.deleted, case.deleted, "{}", case.name);
            assert_eq!(got.is_empty(), case.want.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn the_script_is_one_filter_transaction() {
        let got = plan(&listing(&[]), &[ensure(W, false)], &[]).unwrap();
        assert_eq!(
            got.text_in("filter"),
            format!(
                "*filter\n{ADD_CHAIN}\n{ADD_MARKER}\n{ADD_JUMP}\n{}\nCOMMIT\n",
                add(W)
            )
        );
    }

    /// Jumping to, or filling, a chain that is not ours is refused whole: no line at all.
    #[test]
    fn an_ensure_into_a_chain_that_is_not_ours_is_refused() {
        let accept = format!("-A {CHAIN} -j ACCEPT");
        let table: [(&str, Vec<String>, Vec<Lift>, Why); 4] = [
            (
                "someone's chain holding ACCEPT",
                vec![unmarked(), accept.clone()],
                vec![],
                Why::Rule {
                    chain: CHAIN.into(),
                    text: "-j ACCEPT".into(),
                },
            ),
            (
                "someone's empty chain",
                vec![unmarked()],
                vec![],
                Why::Unmarked,
            ),
            (
                "our marked chain with a rule someone added",
                vec![chain(), jumped(), listed(R), accept.clone()],
                vec![],
                Why::Rule {
                    chain: CHAIN.into(),
                    text: "-j ACCEPT".into(),
                },
            ),
            (
                "the guard's round that also lifts",
                vec![unmarked(), accept],
                vec![lift(R)],
                Why::Rule {
                    chain: CHAIN.into(),
                    text: "-j ACCEPT".into(),
                },
            ),
        ];
        for (name, lines, lift, why) in table {
            let got = plan(&listing(&lines), &[ensure(W, false)], &lift);
            assert_eq!(
                got,
                Err(NotOurs {
                    chain: CHAIN.into(),
                    why
                }),
                "{name}"
            );
        }
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
