//! `redis-ha ports`: the nat REDIRECT rules (and optional marks) that make the public read
//! and write ports reach Redis, kept in chains of our own.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::GuardSettings;
use crate::firewall::owned::{self, Standing};
use crate::firewall::{Backend, Families, Family, FirewallError, MatchBy, Port, Rule, Xtables};
use crate::lock::{HostLock, LockError, LockFile};

/// What `redis-ha ports` manages.
#[derive(Debug, Clone)]
pub(crate) struct PortsConfig {
    pub(crate) read: Port,
    pub(crate) write: Port,
    pub(crate) to: Port,
    pub(crate) mark: bool,
    pub(crate) families: Families,
    pub(crate) backend: Backend,
}

/// What the command line says; what it leaves open comes from `redis-ha.conf`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PortsFlags {
    pub(crate) read: Option<Port>,
    pub(crate) write: Option<Port>,
    pub(crate) mark: bool,
    pub(crate) families: Option<Families>,
}

impl PortsFlags {
    /// The flags, else the config's public ports, families and match (the ports the
    /// guard and the agents refuse must be the ones redirected; `mark` matching needs
    /// the marks), else the defaults. Pure.
    pub(crate) fn resolve(
        self,
        conf: Option<&GuardSettings>,
        to: Port,
        backend: Backend,
    ) -> PortsConfig {
        let defaults = GuardSettings::default();
        let conf = conf.unwrap_or(&defaults);
        PortsConfig {
            read: self.read.unwrap_or(conf.read_port),
            write: self.write.unwrap_or(conf.write_port),
            to,
            mark: self.mark || conf.match_by == MatchBy::Mark,
            families: self.families.unwrap_or(conf.families),
            backend,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PortsError {
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("missing:\n{0}")]
    Missing(String),
    #[error("--read and --write must differ from each other and from --to")]
    SamePorts,
    /// `install --closed` could not put the guard's refusals in force.
    #[error("cannot close the ports: {0}")]
    Closing(String),
}

/// One of our chains: where it lives and which built-in chains jump to it.
struct OwnChain {
    table: &'static str,
    name: &'static str,
    from: &'static [&'static str],
    rules: Vec<Rule>,
}

/// Tells a rule we write in a chain from anyone else's, as `iptables -S` lists it.
type Shape = fn(&[String]) -> bool;

/// Which rules of ours each of our chains holds.
fn shape_of(name: &str) -> Shape {
    if name == MARK_CHAIN {
        owned::is_mark_rule
    } else {
        owned::is_redirect_rule
    }
}

const MARK_CHAIN: &str = "REDIS-HA-MARK";

impl OwnChain {
    fn jumps(&self) -> Vec<Rule> {
        self.from
            .iter()
            .map(|from| Rule::jump_from(self.table, from, self.name))
            .collect()
    }

    fn tags(&self) -> Vec<String> {
        self.rules.iter().filter_map(|r| tag_of(&r.spec)).collect()
    }
}

fn tag_of(spec: &[String]) -> Option<String> {
    crate::firewall::save::comment_of(spec).map(str::to_string)
}

/// Every chain we own, with the rules the configuration wants in it. Pure.
fn desired(cfg: &PortsConfig) -> Vec<OwnChain> {
    let to = cfg.to.to_string();
    let redirect = |chain: &str, port: Port, lo: bool| {
        let p = port.to_string();
        let tag = format!("redis-ha:ports:{p}:{to}");
        let prefix: &[&str] = if lo { &["-o", "lo"] } else { &[] };
        Rule::tcp_port_tagged(
            "nat",
            chain,
            prefix,
            &p,
            &tag,
            &["REDIRECT", "--to-ports", &to],
        )
    };
    let mark = |chain: &str, port: Port| {
        let p = port.to_string();
        let tag = format!("redis-ha:mark:{p}");
        Rule::tcp_port_tagged("mangle", chain, &[], &p, &tag, &["MARK", "--set-mark", &p])
    };
    let ports = [cfg.read, cfg.write];
    let mut chains = vec![
        OwnChain {
            table: "nat",
            name: "REDIS-HA-PRE",
            from: &["PREROUTING"],
            rules: ports
                .iter()
                .map(|&p| redirect("REDIS-HA-PRE", p, false))
                .collect(),
        },
        // Local clients: their packets never pass PREROUTING.
        OwnChain {
            table: "nat",
            name: "REDIS-HA-OUT",
            from: &["OUTPUT"],
            rules: ports
                .iter()
                .map(|&p| redirect("REDIS-HA-OUT", p, true))
                .collect(),
        },
    ];
    if cfg.mark {
        // mangle runs before nat, so the port is still the public one here.
        chains.push(OwnChain {
            table: "mangle",
            name: MARK_CHAIN,
            from: &["PREROUTING", "OUTPUT"],
            rules: ports.iter().map(|&p| mark(MARK_CHAIN, p)).collect(),
        });
    }
    chains
}

/// The chains a remove must clear, whatever the options are now.
fn all_chains() -> [(&'static str, &'static str, &'static [&'static str]); 3] {
    [
        ("nat", "REDIS-HA-PRE", &["PREROUTING"]),
        ("nat", "REDIS-HA-OUT", &["OUTPUT"]),
        ("mangle", MARK_CHAIN, &["PREROUTING", "OUTPUT"]),
    ]
}

fn checked(cfg: &PortsConfig) -> Result<(), PortsError> {
    if cfg.read == cfg.write || cfg.read == cfg.to || cfg.write == cfg.to {
        return Err(PortsError::SamePorts);
    }
    Ok(())
}

fn xtables(wait: Duration) -> Xtables {
    Xtables::new(wait * 4, wait, false)
}

/// Where one of our chains stands in one family; `NotOurs` when someone else's.
fn standing(
    x: &Xtables,
    backend: Backend,
    family: Family,
    table: &'static str,
    name: &str,
) -> Result<Standing, FirewallError> {
    let listing = x.listing(backend, family, table)?;
    let standing = owned::standing(&listing, name, shape_of(name));
    if let Standing::Foreign(why) = standing {
        return Err(FirewallError::NotOurs {
            chain: format!("{table}/{name}"),
            program: backend.program(family).to_string(),
            why,
        });
    }
    Ok(standing)
}

pub(crate) fn install(cfg: &PortsConfig, wait: Duration) -> Result<String, PortsError> {
    checked(cfg)?;
    let _lock = HostLock::acquire(&LockFile::host(), wait)?;
    let x = xtables(wait);
    let mut report = String::new();
    let wanted = desired(cfg);
    // Every chain of every family checked before anything changes: a chain of our name
    // that is someone else's is neither filled nor cleaned.
    let mut standings = Vec::new();
    for &family in cfg.families.list() {
        for chain in &wanted {
            standings.push(standing(&x, cfg.backend, family, chain.table, chain.name)?);
        }
    }
    let mut standings = standings.into_iter();
    for &family in cfg.families.list() {
        for chain in &wanted {
            match standings.next().expect("one standing per chain and family") {
                Standing::Missing => {
                    x.create_marked_chain(cfg.backend, family, chain.table, chain.name)?
                }
                // An earlier release's chain: marked now.
                Standing::Earlier => {
                    let marker = owned::marker(chain.table, chain.name);
                    x.change(
                        cfg.backend,
                        family,
                        &crate::firewall::op_args("-I", &marker),
                    )?;
                }
                Standing::Ours | Standing::Foreign(_) => {}
            }
            for rule in &chain.rules {
                if x.ensure(cfg.backend, family, rule, false)? {
                    let _ = writeln!(report, "added {}", describe(family, rule));
                }
            }
            for jump in chain.jumps() {
                if x.ensure(cfg.backend, family, &jump, true)? {
                    let _ = writeln!(report, "added {}", describe(family, &jump));
                }
            }
            // Stale: rules of ours the configuration no longer wants. Never a rule we did
            // not write.
            let tags = chain.tags();
            let shape = shape_of(chain.name);
            for rule in x.rules(cfg.backend, family, chain.table, chain.name)? {
                let wanted = tag_of(&rule.spec).is_some_and(|t| tags.contains(&t));
                if shape(&rule.spec) && !wanted {
                    x.change(cfg.backend, family, &crate::firewall::op_args("-D", &rule))?;
                    let _ = writeln!(report, "removed stale {}", describe(family, &rule));
                }
            }
        }
        if !cfg.mark {
            remove_chain(
                &x,
                cfg.backend,
                family,
                "mangle",
                MARK_CHAIN,
                &["PREROUTING", "OUTPUT"],
                &mut report,
            )?;
        }
    }
    report.push_str(&summary("installed", cfg));
    Ok(report)
}

pub(crate) fn check(cfg: &PortsConfig, wait: Duration) -> Result<String, PortsError> {
    checked(cfg)?;
    let x = xtables(wait);
    let mut missing = String::new();
    for &family in cfg.families.list() {
        let rules: Vec<Rule> = desired(cfg)
            .iter()
            .flat_map(|c| c.rules.iter().cloned().chain(c.jumps()))
            .collect();
        let checks: Vec<_> = rules.iter().map(|r| (cfg.backend, family, r)).collect();
        for (rule, found) in rules.iter().zip(x.check_all(&checks)?) {
            if !found {
                let _ = writeln!(missing, "  {}", describe(family, rule));
            }
        }
    }
    if missing.is_empty() {
        Ok(summary("in place", cfg))
    } else {
        Err(PortsError::Missing(format!(
            "{missing}run `redis-ha ports install` with the same options to add them"
        )))
    }
}

pub(crate) fn remove(cfg: &PortsConfig, wait: Duration) -> Result<String, PortsError> {
    let _lock = HostLock::acquire(&LockFile::host(), wait)?;
    let x = xtables(wait);
    let mut report = String::new();
    for &family in cfg.families.list() {
        for (table, name, from) in all_chains() {
            remove_chain(&x, cfg.backend, family, table, name, from, &mut report)?;
        }
    }
    report.push_str("redirect rules removed");
    Ok(report)
}

/// Deletes our jumps to one of our chains and our rules in it, then the chain (marker
/// included) when it is ours. A chain of our name that is someone else's, or holds a rule
/// we did not write, stays with their rules, and the report says so.
fn remove_chain(
    x: &Xtables,
    backend: Backend,
    family: Family,
    table: &'static str,
    name: &str,
    from: &[&str],
    report: &mut String,
) -> Result<(), FirewallError> {
    let listing = x.listing(backend, family, table)?;
    if !listing.has_chain(name) {
        return Ok(());
    }
    let standing = owned::standing(&listing, name, shape_of(name));
    for from in from {
        x.delete_all(backend, family, &Rule::jump_from(table, from, name))?;
    }
    let shape = shape_of(name);
    for rule in listing.rules_in(name) {
        if shape(&rule.spec) || owned::is_marker(&rule.spec) {
            let ours = Rule {
                table,
                chain: name.to_string(),
                spec: rule.spec.clone(),
            };
            x.change(backend, family, &crate::firewall::op_args("-D", &ours))?;
        }
    }
    match standing {
        Standing::Foreign(why) => {
            let _ = writeln!(
                report,
                "left {} chain {table}/{name} in place: it is not one redis-ha created ({why})",
                family_word(family)
            );
        }
        Standing::Missing | Standing::Ours | Standing::Earlier => {
            let arg = ["-t", table, "-X", name].map(String::from).to_vec();
            x.change(backend, family, &arg)?;
            let _ = writeln!(
                report,
                "removed {} chain {table}/{name}",
                family_word(family)
            );
        }
    }
    Ok(())
}

fn family_word(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn describe(family: Family, rule: &Rule) -> String {
    format!(
        "{} -t {} -A {} {}",
        family_word(family),
        rule.table,
        rule.chain,
        rule.spec.join(" ")
    )
}

fn summary(what: &str, cfg: &PortsConfig) -> String {
    format!(
        "redirects {what}: {} (read) and {} (write) -> {}{} [{}]",
        cfg.read,
        cfg.write,
        cfg.to,
        if cfg.mark {
            ", packets marked with their port"
        } else {
            ""
        },
        cfg.families
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mark: bool) -> PortsConfig {
        PortsConfig {
            read: Port::new(6380),
            write: Port::new(6381),
            to: Port::new(6379),
            mark,
            families: Families::Ipv4,
            backend: Backend::Auto,
        }
    }

    #[test]
    fn redirects_cover_remote_and_local_clients() {
        let chains = desired(&cfg(false));
        let text: Vec<String> = chains
            .iter()
            .flat_map(|c| {
                c.rules
                    .iter()
                    .chain(c.jumps().iter())
                    .map(|r| describe(Family::V4, r))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            text,
            [
                "ipv4 -t nat -A REDIS-HA-PRE -p tcp --dport 6380 -m comment --comment redis-ha:ports:6380:6379 -j REDIRECT --to-ports 6379",
                "ipv4 -t nat -A REDIS-HA-PRE -p tcp --dport 6381 -m comment --comment redis-ha:ports:6381:6379 -j REDIRECT --to-ports 6379",
                "ipv4 -t nat -A PREROUTING -m comment --comment redis-ha -j REDIS-HA-PRE",
                "ipv4 -t nat -A REDIS-HA-OUT -o lo -p tcp --dport 6380 -m comment --comment redis-ha:ports:6380:6379 -j REDIRECT --to-ports 6379",
                "ipv4 -t nat -A REDIS-HA-OUT -o lo -p tcp --dport 6381 -m comment --comment redis-ha:ports:6381:6379 -j REDIRECT --to-ports 6379",
                "ipv4 -t nat -A OUTPUT -m comment --comment redis-ha -j REDIS-HA-OUT",
            ]
        );
    }

    #[test]
    fn mark_variant_marks_in_mangle_from_both_hooks() {
        let chains = desired(&cfg(true));
        let mark = chains.iter().find(|c| c.name == "REDIS-HA-MARK").unwrap();
        assert_eq!(mark.table, "mangle");
        assert_eq!(mark.from, ["PREROUTING", "OUTPUT"]);
        assert_eq!(
            mark.rules[1].spec.join(" "),
            "-p tcp --dport 6381 -m comment --comment redis-ha:mark:6381 -j MARK --set-mark 6381"
        );
    }

    #[test]
    fn the_command_line_wins_then_the_config_then_the_defaults() {
        let (to, backend) = (Port::new(6379), Backend::Auto);
        let conf = GuardSettings {
            read_port: Port::new(7380),
            write_port: Port::new(7381),
            families: Families::Both,
            match_by: MatchBy::Mark,
            ..GuardSettings::default()
        };
        let none = PortsFlags::default();
        let got = none.resolve(None, to, backend);
        assert_eq!(
            (got.read, got.write, got.mark, got.families),
            (Port::new(6380), Port::new(6381), false, Families::Ipv4),
            "defaults"
        );
        let got = none.resolve(Some(&conf), to, backend);
        assert_eq!(
            (got.read, got.write, got.mark, got.families),
            (Port::new(7380), Port::new(7381), true, Families::Both),
            "the config's"
        );
        let flags = PortsFlags {
            read: Some(Port::new(8380)),
            write: None,
            mark: false,
            families: Some(Families::Ipv6),
        };
        let got = flags.resolve(Some(&conf), to, backend);
        assert_eq!(
            (got.read, got.write, got.mark, got.families),
            (Port::new(8380), Port::new(7381), true, Families::Ipv6),
            "flags first"
        );
    }

    #[test]
    fn ports_must_differ() {
        let mut c = cfg(false);
        c.write = Port::new(6380);
        assert!(matches!(checked(&c), Err(PortsError::SamePorts)));
        c.write = Port::new(6379);
        assert!(matches!(checked(&c), Err(PortsError::SamePorts)));
        assert!(checked(&cfg(false)).is_ok());
    }
}
