//! The real `Firewall`: our rules in our own chain, jumped to from the top of INPUT; each
//! change one `iptables-restore` transaction per family, decided from one listing.

use super::block::{Backend, Block, ChainName, Families, Family};
use super::error::FirewallError;
use super::rule::Rule;
use super::save::{self, Listing};
use super::transaction::{self, Ensure, Lift, Script, Tag};
use super::xtables::Xtables;
use super::{Firewall, Presence};

/// Blocks ports with iptables/ip6tables.
pub(crate) struct Iptables {
    x: Xtables,
}

impl Iptables {
    pub(crate) fn new(x: Xtables) -> Self {
        Self { x }
    }

    /// One family's change: read the table, decide, write it in one transaction. Other
    /// programs may change the table between our read and our write (the host lock only
    /// keeps our own out): a rule we delete already gone, a chain we create already there.
    /// The kernel then refuses the whole script, nothing is applied, and we decide again
    /// from a fresh read, once.
    fn transact(
        &self,
        backend: Backend,
        family: Family,
        ensure: &[&Block],
        lift: &[Lift],
    ) -> Result<Script, FirewallError> {
        let mut retried = false;
        loop {
            let listing = self.x.listing(backend, family, "filter")?;
            let ensure = self.ensures(backend, family, ensure, &listing)?;
            let script = transaction::plan(&listing, &ensure, lift);
            if script.is_empty() {
                return Ok(script);
            }
            match self.x.restore(backend, family, &script) {
                Ok(()) => return Ok(script),
                Err(FirewallError::Failed { .. }) if !retried => retried = true,
                Err(FirewallError::NotInstalled { program }) => {
                    return Err(FirewallError::ChangerMissing {
                        program,
                        lister: backend.program(family).to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The blocks' rules, each with whether it is there. The listing cannot tell our rule
    /// from another with the same tag (iptables prints rules its own way), so `-C` decides,
    /// asked only for rules whose tag is in the listing (all at once, in parallel).
    fn ensures(
        &self,
        backend: Backend,
        family: Family,
        blocks: &[&Block],
        listing: &Listing,
    ) -> Result<Vec<Ensure>, FirewallError> {
        let rules: Vec<Rule> = blocks.iter().map(|b| Rule::block(b, family)).collect();
        let candidate = |rule: &Rule| {
            let tag = save::comment_of(&rule.spec);
            listing.rules_in(&rule.chain).any(|l| l.comment() == tag)
        };
        let checks: Vec<(Backend, Family, &Rule)> = rules
            .iter()
            .filter(|r| candidate(r))
            .map(|r| (backend, family, r))
            .collect();
        let mut found = self.x.check_all(&checks)?.into_iter();
        Ok(rules
            .iter()
            .map(|rule| Ensure {
                rule: rule.clone(),
                present: candidate(rule) && found.next().unwrap_or(false),
            })
            .collect())
    }
}

/// The (backend, family) pairs the blocks live in, in a stable order: one transaction each.
fn tables_of<'a>(blocks: impl Iterator<Item = &'a Block>) -> Vec<(Backend, Family)> {
    let mut pairs = Vec::new();
    for block in blocks {
        for &family in block.families.list() {
            if !pairs.contains(&(block.backend, family)) {
                pairs.push((block.backend, family));
            }
        }
    }
    pairs
}

fn in_table(block: &Block, backend: Backend, family: Family) -> bool {
    block.backend == backend && block.families.list().contains(&family)
}

impl Firewall for Iptables {
    fn installed(&self, block: &Block) -> Result<(), FirewallError> {
        for &family in block.families.list() {
            if let Some(program) = self.x.missing(block.backend, family) {
                return Err(FirewallError::NotInstalled {
                    program: program.to_string(),
                });
            }
        }
        Ok(())
    }

    fn ruleset_version(&self, block: &Block) -> Option<String> {
        let all_nft = block
            .families
            .list()
            .iter()
            .all(|&f| self.x.is_nft(block.backend, f));
        if all_nft {
            super::generation::version().ok()
        } else {
            None
        }
    }

    fn presence(&self, block: &Block) -> Result<Presence, FirewallError> {
        let jump = Rule::jump(&block.chain);
        let rules: Vec<(Family, Rule)> = block
            .families
            .list()
            .iter()
            .map(|&f| (f, Rule::block(block, f)))
            .collect();
        let mut checks = Vec::with_capacity(rules.len() * 2);
        for (family, rule) in &rules {
            checks.push((block.backend, *family, rule));
            checks.push((block.backend, *family, &jump));
        }
        let found = self.x.check_all(&checks)?;
        let per_family: Vec<Presence> = found
            .chunks(2)
            .map(|pair| match (pair[0], pair[1]) {
                (true, true) => Presence::Present,
                (false, _) => Presence::Absent,
                (true, false) => Presence::Partial,
            })
            .collect();
        Ok(combine(&per_family))
    }

    fn apply(&self, ensure: &[Block], lift: &[Block]) -> Result<bool, FirewallError> {
        let mut changed = false;
        for (backend, family) in tables_of(ensure.iter().chain(lift)) {
            let ensure: Vec<&Block> = ensure
                .iter()
                .filter(|b| in_table(b, backend, family))
                .collect();
            let lift: Vec<Lift> = lift
                .iter()
                .filter(|b| in_table(b, backend, family))
                .map(|b| Lift {
                    chain: b.chain.to_string(),
                    tag: Tag::Exact(b.tag()),
                })
                .collect();
            changed |= !self.transact(backend, family, &ensure, &lift)?.is_empty();
        }
        Ok(changed)
    }

    fn remove_tagged(
        &self,
        chain: &ChainName,
        families: Families,
        backend: Backend,
        tag_prefix: &str,
    ) -> Result<usize, FirewallError> {
        let lift = [Lift {
            chain: chain.to_string(),
            tag: Tag::Prefix(tag_prefix.to_string()),
        }];
        let mut removed = 0;
        for &family in families.list() {
            removed += self.transact(backend, family, &[], &lift)?.deleted;
        }
        Ok(removed)
    }
}

/// All families present → present; none → absent; a mix → partial.
fn combine(per_family: &[Presence]) -> Presence {
    if per_family.iter().all(|p| *p == Presence::Present) {
        Presence::Present
    } else if per_family.iter().all(|p| *p == Presence::Absent) {
        Presence::Absent
    } else {
        Presence::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Presence::*;

    #[test]
    fn families_combine_into_one_presence() {
        let table: [(&[Presence], Presence); 6] = [
            (&[Present], Present),
            (&[Absent], Absent),
            (&[Partial], Partial),
            (&[Present, Present], Present),
            (&[Present, Absent], Partial),
            (&[Absent, Absent], Absent),
        ];
        for (input, want) in table {
            assert_eq!(combine(input), want, "{input:?}");
        }
    }
}
