//! The real `Firewall`: our rules in our own chain, jumped to from the top of INPUT; each
//! change one `iptables-restore` transaction per family, decided from one listing.

use super::block::{Backend, Block, ChainName, Families, Family};
use super::error::FirewallError;
use super::owned::{self, Standing};
use super::rule::Rule;
use super::save::{self, Listing};
use super::transaction::{self, Ensure, Lift, Script, Tag};
use super::xtables::Xtables;
use super::{Firewall, Presence};
use std::sync::Mutex;

/// Listings by table (backend, family).
type Seen = Vec<((Backend, Family), Listing)>;

/// Blocks ports with iptables/ip6tables.
pub(crate) struct Iptables {
    x: Xtables,
    /// The listings read since the last write, kept only by [`Iptables::under_lock`].
    seen: Option<Mutex<Seen>>,
}

impl Iptables {
    /// Every decision from a listing of its own.
    pub(crate) fn new(x: Xtables) -> Self {
        Self { x, seen: None }
    }

    /// For an action that holds the host lock from its first read to its last write (an
    /// agent's start or stop): a table read once serves every decision until this writes
    /// it (a start's check of the chain, then its transaction, list it once). Our own
    /// writers wait for the lock meanwhile; another program's change makes the
    /// transaction fail and be decided again from a fresh read, as with [`Iptables::new`].
    pub(crate) fn under_lock(x: Xtables) -> Self {
        Self {
            x,
            seen: Some(Mutex::new(Vec::new())),
        }
    }

    /// The filter table of (backend, family): the one read since the last write, if kept.
    fn listing(&self, backend: Backend, family: Family) -> Result<Listing, FirewallError> {
        let table = (backend, family);
        if let Some(seen) = &self.seen
            && let Some((_, l)) = seen
                .lock()
                .expect("no panics under this lock")
                .iter()
                .find(|(t, _)| *t == table)
        {
            return Ok(l.clone());
        }
        let listing = self.x.listing(backend, family, "filter")?;
        self.remember(table, &listing);
        Ok(listing)
    }

    fn remember(&self, table: (Backend, Family), listing: &Listing) {
        if let Some(seen) = &self.seen {
            let mut seen = seen.lock().expect("no panics under this lock");
            seen.retain(|(t, _)| *t != table);
            seen.push((table, listing.clone()));
        }
    }

    /// After a write: every table is read again.
    fn forget(&self) {
        if let Some(seen) = &self.seen {
            seen.lock().expect("no panics under this lock").clear();
        }
    }

    /// One family's change decided from `listing`; `NotOurs` when an ensure's chain is
    /// someone else's.
    fn decide(
        &self,
        backend: Backend,
        family: Family,
        ensure: &[&Block],
        lift: &[Lift],
        listing: &Listing,
    ) -> Result<Script, FirewallError> {
        let ensure = self.ensures(backend, family, ensure, listing)?;
        transaction::plan(listing, &ensure, lift).map_err(|refused| FirewallError::NotOurs {
            chain: refused.chain,
            program: backend.program(family).to_string(),
            why: refused.why,
        })
    }

    /// Writes one family's decided change in one transaction. Other programs may change the
    /// table between our read and our write (the host lock only keeps our own out): a rule
    /// we delete already gone, a chain we create already there. The kernel then refuses the
    /// whole script, nothing is applied, and we decide again from a fresh read, once.
    fn write(
        &self,
        backend: Backend,
        family: Family,
        ensure: &[&Block],
        lift: &[Lift],
        mut script: Script,
    ) -> Result<Script, FirewallError> {
        let mut retried = false;
        loop {
            if script.is_empty() {
                return Ok(script);
            }
            let restored = self.x.restore(backend, family, &script);
            self.forget();
            match restored {
                Ok(()) => return Ok(script),
                Err(FirewallError::Failed { .. }) if !retried => {
                    retried = true;
                    let listing = self.listing(backend, family)?;
                    script = self.decide(backend, family, ensure, lift, &listing)?;
                }
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

    /// The block's chain in each of its families, as one parallel listing each, with the
    /// `-C` of `checks` alongside; `NotOurs` when the chain is someone else's in any.
    fn standing(
        &self,
        block: &Block,
        checks: &[(Backend, Family, &Rule)],
    ) -> Result<(Vec<Listing>, Vec<bool>), FirewallError> {
        let tables: Vec<(Backend, Family)> = block
            .families
            .list()
            .iter()
            .map(|&f| (block.backend, f))
            .collect();
        let (listings, found) = self.x.listings_and_checks(&tables, "filter", checks)?;
        for (&table, listing) in tables.iter().zip(&listings) {
            self.remember(table, listing);
        }
        for (&(backend, family), listing) in tables.iter().zip(&listings) {
            if let Standing::Foreign(why) =
                owned::standing(listing, block.chain.as_str(), owned::is_block_rule)
            {
                return Err(FirewallError::NotOurs {
                    chain: block.chain.to_string(),
                    program: backend.program(family).to_string(),
                    why,
                });
            }
        }
        Ok((listings, found))
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

    fn chain_usable(&self, block: &Block) -> Result<(), FirewallError> {
        self.standing(block, &[]).map(|_| ())
    }

    /// The listing answers for the chain and the jump; `-C` for the rule, whose exact
    /// form only iptables can compare (all at once, in parallel).
    fn presence(&self, block: &Block) -> Result<Presence, FirewallError> {
        let jump = Rule::jump(&block.chain);
        let rules: Vec<(Family, Rule)> = block
            .families
            .list()
            .iter()
            .map(|&f| (f, Rule::block(block, f)))
            .collect();
        let checks: Vec<(Backend, Family, &Rule)> = rules
            .iter()
            .map(|(family, rule)| (block.backend, *family, rule))
            .collect();
        let (listings, found) = self.standing(block, &checks)?;
        let per_family: Vec<Presence> = listings
            .iter()
            .zip(found)
            .map(|(listing, rule)| {
                let jumped = listing.rules_in("INPUT").any(|r| r.spec == jump.spec);
                match (rule, jumped) {
                    (true, true) => Presence::Present,
                    (false, _) => Presence::Absent,
                    (true, false) => Presence::Partial,
                }
            })
            .collect();
        Ok(combine(&per_family))
    }

    fn apply(&self, ensure: &[Block], lift: &[Block]) -> Result<bool, FirewallError> {
        // Every family decided before any is written: a chain that is not ours in one
        // family changes none.
        let mut decided = Vec::new();
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
            let listing = self.listing(backend, family)?;
            let script = self.decide(backend, family, &ensure, &lift, &listing)?;
            decided.push((backend, family, ensure, lift, script));
        }
        let mut changed = false;
        for (backend, family, ensure, lift, script) in decided {
            changed |= !self
                .write(backend, family, &ensure, &lift, script)?
                .is_empty();
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
            let listing = self.listing(backend, family)?;
            let script = self.decide(backend, family, &[], &lift, &listing)?;
            removed += self.write(backend, family, &[], &lift, script)?.deleted;
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
