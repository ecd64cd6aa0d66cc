//! Which chains are ours, decided from one `iptables -S` listing (pure: every case is a row
//! in a table). A chain's name proves nothing: `chain=` is free text and anyone may have
//! created a chain of that name (or put a rule in ours). So a chain is ours only when it
//! carries our marker rule (`-m comment --comment redis-ha:chain`, no target: it matches
//! and does nothing) and every other rule in it is one we write, recognised by its exact
//! shape as iptables lists it. We create every chain with the marker in the same
//! transaction, so a chain of ours is never seen without it. Chains of earlier releases
//! (before the marker) are adopted when they hold nothing but rules of our shape and show
//! a trace of us (such a rule, or our tagged jump to them); anything else is not ours:
//! never jumped to, filled or deleted.

use super::rule::NEW_ONLY;
use super::rule::{JUMP_TAG, Rule};
use super::save::{Listed, Listing};

/// The comment of the rule that marks a chain as created by us.
pub(crate) const MARKER: &str = "redis-ha:chain";

/// The marker rule of `chain`: a comment and no target, so a packet goes on to the next
/// rule as if it were not there.
pub(crate) fn marker(table: &'static str, chain: &str) -> Rule {
    Rule::new(table, chain, &["-m", "comment", "--comment", MARKER])
}

pub(crate) fn is_marker(spec: &[String]) -> bool {
    spec == ["-m", "comment", "--comment", MARKER]
}

/// What a listing says about one chain we are asked to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// No such chain: we may create it (with its marker).
    Missing,
    /// Marked, and nothing in it but rules of ours.
    Ours,
    /// Unmarked, but only rules of ours and a trace of us: a chain of an earlier release,
    /// to be marked when next used.
    Earlier,
    /// Someone else's.
    Foreign(Why),
}

/// Why a chain is not ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Why {
    #[error(
        "it exists without our marker rule ({MARKER}) and holds nothing of ours, so someone \
         else created it"
    )]
    Unmarked,
    #[error("it holds a rule redis-ha did not write: `-A {chain} {text}`")]
    Rule { chain: String, text: String },
}

/// Where `chain` stands in `listing`; `ours` tells a rule we write in such a chain from
/// any other (the marker aside).
pub(crate) fn standing(
    listing: &Listing,
    chain: &str,
    ours: impl Fn(&[String]) -> bool,
) -> Standing {
    if !listing.has_chain(chain) {
        return Standing::Missing;
    }
    let mut marked = false;
    let mut traces = jumped_by_us(listing, chain);
    for rule in listing.rules_in(chain) {
        if is_marker(&rule.spec) {
            marked = true;
        } else if ours(&rule.spec) {
            traces = true;
        } else {
            return Standing::Foreign(Why::Rule {
                chain: chain.to_string(),
                text: rule.text.clone(),
            });
        }
    }
    match (marked, traces) {
        (true, _) => Standing::Ours,
        (false, true) => Standing::Earlier,
        (false, false) => Standing::Foreign(Why::Unmarked),
    }
}

/// Whether a jump of ours (`-m comment --comment redis-ha -j CHAIN`, from any chain) leads
/// to `chain`.
pub(crate) fn jumped_by_us(listing: &Listing, chain: &str) -> bool {
    our_jumps_to(listing, chain).next().is_some()
}

/// Every jump of ours to `chain`, from any chain of the table.
pub(crate) fn our_jumps_to<'a>(
    listing: &'a Listing,
    chain: &'a str,
) -> impl Iterator<Item = &'a Listed> {
    listing.rules().iter().filter(move |r| {
        r.spec.len() == 6
            && r.spec[..4] == ["-m", "comment", "--comment", JUMP_TAG]
            && r.spec[4] == "-j"
            && r.spec[5] == chain
    })
}

/// A block's rule as iptables lists it (`Rule::block`, every variant): `-p tcp`, the
/// port matched by conntrack, mark (listed in hex) or `-m tcp --dport`, for new
/// connections only or not, our tag `redis-ha:OWNER:PORT` naming the same port, and a
/// verdict that only refuses.
pub(crate) fn is_block_rule(spec: &[String]) -> bool {
    let w: Vec<&str> = spec.iter().map(String::as_str).collect();
    let (port, rest) = match w.as_slice() {
        ["-p", "tcp", "-m", "conntrack", rest @ ..] => {
            let rest = rest.strip_prefix(&NEW_ONLY[..]).unwrap_or(rest);
            match rest {
                ["--ctorigdstport", p, "--ctdir", "ORIGINAL", rest @ ..] => (decimal(p), rest),
                _ => return false,
            }
        }
        ["-p", "tcp", "-m", "mark", "--mark", m, rest @ ..] => (hex(m), new_only(rest)),
        ["-p", "tcp", "-m", "tcp", "--dport", p, rest @ ..] => (decimal(p), new_only(rest)),
        _ => return false,
    };
    let ["-m", "comment", "--comment", tag, "-j", verdict @ ..] = rest else {
        return false;
    };
    let refuses = matches!(
        verdict,
        ["DROP"]
            | [
                "REJECT",
                "--reject-with",
                "tcp-reset" | "icmp-port-unreachable" | "icmp6-port-unreachable"
            ]
    );
    refuses && port.is_some() && block_tag_port(tag) == port
}

/// What follows a port matched by mark or `--dport`, past a conntrack match limiting the
/// rule to new connections.
fn new_only<'a, 'b>(rest: &'a [&'b str]) -> &'a [&'b str] {
    match rest {
        ["-m", "conntrack", "--ctstate", "NEW", rest @ ..] => rest,
        all => all,
    }
}

/// A `redis-ha ports` REDIRECT as listed: `[-o lo] -p tcp -m tcp --dport P`, tag
/// `redis-ha:ports:P:T`, `-j REDIRECT --to-ports T`.
pub(crate) fn is_redirect_rule(spec: &[String]) -> bool {
    let w: Vec<&str> = spec.iter().map(String::as_str).collect();
    let w = match w.as_slice() {
        ["-o", "lo", rest @ ..] => rest,
        all => all,
    };
    tagged_tcp(w, "REDIRECT", "--to-ports").is_some_and(|(p, tag, t)| {
        decimal(p).is_some() && decimal(t).is_some() && tag == format!("redis-ha:ports:{p}:{t}")
    })
}

/// A `redis-ha ports --mark` rule as listed: `-p tcp -m tcp --dport P`, tag
/// `redis-ha:mark:P`, `-j MARK --set-xmark 0xP/0xffffffff`.
pub(crate) fn is_mark_rule(spec: &[String]) -> bool {
    let w: Vec<&str> = spec.iter().map(String::as_str).collect();
    tagged_tcp(&w, "MARK", "--set-xmark").is_some_and(|(p, tag, mark)| {
        let port = decimal(p);
        port.is_some()
            && tag == format!("redis-ha:mark:{p}")
            && mark
                .strip_suffix("/0xffffffff")
                .is_some_and(|m| hex(m) == port)
    })
}

/// `-p tcp -m tcp --dport P -m comment --comment TAG -j TARGET OPTION VALUE`, the shape
/// of every `redis-ha ports` rule: (P, TAG, VALUE).
fn tagged_tcp<'a>(
    w: &[&'a str],
    target: &str,
    option: &str,
) -> Option<(&'a str, &'a str, &'a str)> {
    let [
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        p,
        "-m",
        "comment",
        "--comment",
        tag,
        "-j",
        t,
        o,
        value,
    ] = w
    else {
        return None;
    };
    (*t == target && *o == option).then_some((*p, *tag, *value))
}

/// The port of a block tag `redis-ha:OWNER:PORT` (OWNER letters and digits).
fn block_tag_port(tag: &str) -> Option<u16> {
    let (owner, port) = tag.strip_prefix("redis-ha:")?.split_once(':')?;
    let owner_ok = !owner.is_empty() && owner.chars().all(|c| c.is_ascii_alphanumeric());
    owner_ok.then(|| decimal(port)).flatten()
}

/// A port as iptables lists it in decimal: 1 to 65535, no sign, no leading zero.
fn decimal(text: &str) -> Option<u16> {
    let ok = !text.starts_with('0') && text.chars().all(|c| c.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten().filter(|&p| p > 0)
}

/// A mark as iptables lists it: `0x` and lower-case hex.
fn hex(text: &str) -> Option<u16> {
    let digits = text.strip_prefix("0x")?;
    let ok = !digits.is_empty()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    ok.then(|| u16::from_str_radix(digits, 16).ok())
        .flatten()
        .filter(|&p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(spec: &str) -> Vec<String> {
        Listing::parse(&format!("-N X\n-A X {spec}\n")).rules()[0]
            .spec
            .clone()
    }

    /// Which rules a chain of ours may hold.
    type Shape = fn(&[String]) -> bool;

    /// Every rule we write, as iptables 1.8.9 lists it (nft and legacy alike), and near
    /// misses that are someone else's.
    #[test]
    fn our_rules_are_recognised_by_their_exact_shape() {
        let table: [(&str, Shape, &str, bool); 25] = [
            (
                "conntrack reset, new connections",
                is_block_rule,
                "-p tcp -m conntrack --ctstate NEW --ctorigdstport 6380 --ctdir ORIGINAL -m comment --comment \"redis-ha:guardDrain:6380\" -j REJECT --reject-with tcp-reset",
                true,
            ),
            (
                "mark reset, new connections",
                is_block_rule,
                "-p tcp -m mark --mark 0x18ec -m conntrack --ctstate NEW -m comment --comment \"redis-ha:guardDrain:6380\" -j REJECT --reject-with tcp-reset",
                true,
            ),
            (
                "dport drop, new connections",
                is_block_rule,
                "-p tcp -m tcp --dport 6380 -m conntrack --ctstate NEW -m comment --comment \"redis-ha:guardDrain:6380\" -j DROP",
                true,
            ),
            (
                "established connections only",
                is_block_rule,
                "-p tcp -m conntrack --ctstate ESTABLISHED --ctorigdstport 6380 --ctdir ORIGINAL -m comment --comment \"redis-ha:guardDrain:6380\" -j DROP",
                false,
            ),
            (
                "a second conntrack match after the port's",
                is_block_rule,
                "-p tcp -m conntrack --ctorigdstport 6380 --ctdir ORIGINAL -m conntrack --ctstate NEW -m comment --comment \"redis-ha:guardDrain:6380\" -j DROP",
                false,
            ),
            (
                "conntrack reset",
                is_block_rule,
                "-p tcp -m conntrack --ctorigdstport 6381 --ctdir ORIGINAL -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j REJECT --reject-with tcp-reset",
                true,
            ),
            (
                "mark drop (guard)",
                is_block_rule,
                "-p tcp -m mark --mark 0x18ec -m comment --comment \"redis-ha:guard:6380\" -j DROP",
                true,
            ),
            (
                "dport icmp",
                is_block_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:RedisLBReadBlock:6380\" -j REJECT --reject-with icmp-port-unreachable",
                true,
            ),
            (
                "dport icmp6",
                is_block_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:RedisLBReadBlock:6380\" -j REJECT --reject-with icmp6-port-unreachable",
                true,
            ),
            (
                "our tag on an ACCEPT",
                is_block_rule,
                "-p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j ACCEPT",
                false,
            ),
            (
                "our tag, another port",
                is_block_rule,
                "-p tcp -m tcp --dport 22 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j DROP",
                false,
            ),
            (
                "mark of another port",
                is_block_rule,
                "-p tcp -m mark --mark 0x16 -m comment --comment \"redis-ha:guard:6380\" -j DROP",
                false,
            ),
            (
                "a jump elsewhere",
                is_block_rule,
                "-p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j OTHER",
                false,
            ),
            (
                "goto",
                is_block_rule,
                "-p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -g DROP",
                false,
            ),
            (
                "a source limit added",
                is_block_rule,
                "-s 10.0.0.1/32 -p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j DROP",
                false,
            ),
            (
                "no tag",
                is_block_rule,
                "-p tcp -m tcp --dport 6381 -j DROP",
                false,
            ),
            ("plain ACCEPT", is_block_rule, "-j ACCEPT", false),
            (
                "the marker is not a block rule",
                is_block_rule,
                "-m comment --comment redis-ha:chain",
                false,
            ),
            (
                "redirect",
                is_redirect_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:ports:6380:6379\" -j REDIRECT --to-ports 6379",
                true,
            ),
            (
                "local redirect",
                is_redirect_rule,
                "-o lo -p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:ports:6381:6379\" -j REDIRECT --to-ports 6379",
                true,
            ),
            (
                "redirect elsewhere than its tag says",
                is_redirect_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:ports:6380:6379\" -j REDIRECT --to-ports 22",
                false,
            ),
            (
                "someone's redirect",
                is_redirect_rule,
                "-p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080",
                false,
            ),
            (
                "mark",
                is_mark_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:mark:6380\" -j MARK --set-xmark 0x18ec/0xffffffff",
                true,
            ),
            (
                "mark of another value",
                is_mark_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:mark:6380\" -j MARK --set-xmark 0x1/0xffffffff",
                false,
            ),
            (
                "a block rule in mangle",
                is_mark_rule,
                "-p tcp -m tcp --dport 6380 -m comment --comment \"redis-ha:RedisLBReadBlock:6380\" -j DROP",
                false,
            ),
        ];
        for (name, shape, spec, want) in table {
            assert_eq!(shape(&split(spec)), want, "{name}: {spec}");
        }
        assert!(is_marker(&split("-m comment --comment \"redis-ha:chain\"")));
        assert!(!is_marker(&split(
            "-m comment --comment redis-ha:chain -j ACCEPT"
        )));
    }

    #[test]
    fn a_chain_is_ours_only_when_marked_or_left_by_an_earlier_release() {
        const MARK: &str = "-A C -m comment --comment \"redis-ha:chain\"";
        const RULE: &str = "-A C -p tcp -m tcp --dport 6381 -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j DROP";
        const JUMP: &str = "-A INPUT -m comment --comment redis-ha -j C";
        let foreign = |text: &str| {
            Standing::Foreign(Why::Rule {
                chain: "C".into(),
                text: text.into(),
            })
        };
        let table: [(&str, &[&str], Standing); 11] = [
            ("no chain", &[], Standing::Missing),
            ("no chain, a stray jump", &[JUMP], Standing::Missing),
            ("marked and empty", &["-N C", MARK], Standing::Ours),
            (
                "marked, our rule, our jump",
                &["-N C", MARK, RULE, JUMP],
                Standing::Ours,
            ),
            (
                "an earlier release's: our rule, our jump",
                &["-N C", RULE, JUMP],
                Standing::Earlier,
            ),
            (
                "an earlier release's: our rule only",
                &["-N C", RULE],
                Standing::Earlier,
            ),
            (
                "an earlier release's, its rule deleted: our jump",
                &["-N C", JUMP],
                Standing::Earlier,
            ),
            (
                "someone's empty chain",
                &["-N C"],
                Standing::Foreign(Why::Unmarked),
            ),
            (
                "someone's chain jumped to by someone",
                &["-N C", "-A INPUT -j C"],
                Standing::Foreign(Why::Unmarked),
            ),
            (
                "someone's ACCEPT, our rule after it",
                &["-N C", "-A C -j ACCEPT", RULE, JUMP],
                foreign("-j ACCEPT"),
            ),
            (
                "a rule added to our marked chain",
                &["-N C", MARK, RULE, "-A C -s 10.0.0.0/8 -j RETURN"],
                foreign("-s 10.0.0.0/8 -j RETURN"),
            ),
        ];
        for (name, lines, want) in table {
            let listing = Listing::parse(&format!("-P INPUT ACCEPT\n{}\n", lines.join("\n")));
            assert_eq!(standing(&listing, "C", is_block_rule), want, "{name}");
        }
    }

    #[test]
    fn reasons_name_what_makes_the_chain_foreign() {
        let why = Why::Rule {
            chain: "FOREIGN".into(),
            text: "-j ACCEPT".into(),
        };
        assert_eq!(
            why.to_string(),
            "it holds a rule redis-ha did not write: `-A FOREIGN -j ACCEPT`"
        );
        assert!(Why::Unmarked.to_string().contains("redis-ha:chain"));
    }
}
