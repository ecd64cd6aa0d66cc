//! The real `Firewall`: our rules in our own chain, jumped to from the top of INPUT.

use super::block::{Backend, Block, ChainName, Families, Family};
use super::error::FirewallError;
use super::rule::Rule;
use super::save;
use super::xtables::{Xtables, op_args};
use super::{Firewall, Presence};

/// Blocks ports with iptables/ip6tables.
pub(crate) struct Iptables {
    x: Xtables,
}

impl Iptables {
    pub(crate) fn new(x: Xtables) -> Self {
        Self { x }
    }

    /// Once our chain holds no rule, removes the jump to it and the chain itself.
    fn drop_chain_if_empty(
        &self,
        backend: Backend,
        family: Family,
        chain: &ChainName,
    ) -> Result<(), FirewallError> {
        let Some(listing) = self.x.list(backend, family, "filter", chain.as_str())? else {
            return Ok(());
        };
        if !save::rules_of(&listing, chain.as_str()).is_empty() {
            return Ok(());
        }
        self.x.delete_all(backend, family, &Rule::jump(chain))?;
        let args = ["-t", "filter", "-X", chain.as_str()].map(String::from);
        // A chain someone else still jumps to stays; what matters for us is that it is empty.
        match self.x.change(backend, family, &args) {
            Err(FirewallError::Failed { .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Firewall for Iptables {
    fn installed(&self, block: &Block) -> Result<(), FirewallError> {
        for &family in block.families.list() {
            if !self.x.installed(block.backend, family) {
                return Err(FirewallError::NotInstalled {
                    program: block.backend.program(family).to_string(),
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

    fn ensure_block(&self, block: &Block) -> Result<(), FirewallError> {
        let jump = Rule::jump(&block.chain);
        for &family in block.families.list() {
            let rule = Rule::block(block, family);
            let found = self.x.check_all(&[
                (block.backend, family, &jump),
                (block.backend, family, &rule),
            ])?;
            if !found[0] {
                self.x
                    .create_chain(block.backend, family, "filter", block.chain.as_str())?;
                self.x
                    .change(block.backend, family, &op_args("-I", &jump))?;
            }
            if !found[1] {
                self.x
                    .change(block.backend, family, &op_args("-A", &rule))?;
            }
        }
        Ok(())
    }

    fn remove_block(&self, block: &Block) -> Result<(), FirewallError> {
        for &family in block.families.list() {
            self.x
                .delete_all(block.backend, family, &Rule::block(block, family))?;
            self.drop_chain_if_empty(block.backend, family, &block.chain)?;
        }
        Ok(())
    }

    fn remove_tagged(
        &self,
        chain: &ChainName,
        families: Families,
        backend: Backend,
        tag_prefix: &str,
    ) -> Result<usize, FirewallError> {
        let mut removed = 0;
        for &family in families.list() {
            for rule in self.x.rules(backend, family, "filter", chain.as_str())? {
                if save::comment_of(&rule.spec).is_some_and(|c| c.starts_with(tag_prefix)) {
                    self.x.change(backend, family, &op_args("-D", &rule))?;
                    removed += 1;
                }
            }
            self.drop_chain_if_empty(backend, family, chain)?;
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
