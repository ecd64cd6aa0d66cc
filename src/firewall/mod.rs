//! Refusing a port with iptables: what a block is, how it becomes rules, and the real
//! implementation behind the `Firewall` trait the agents talk to.

pub(crate) mod block;
mod error;
#[cfg(test)]
pub(crate) mod fake;
mod generation;
mod iptables;
pub(crate) mod owned;
mod rule;
pub(crate) mod save;
mod transaction;
mod xtables;

pub(crate) use block::{
    Backend, Block, ChainName, Families, Family, MatchBy, Port, RejectWith, Scope,
};
pub(crate) use error::FirewallError;
pub(crate) use iptables::Iptables;
pub(crate) use rule::Rule;
pub(crate) use xtables::{Xtables, op_args};

/// How much of a block is in the kernel, over all its address families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Every family has the rule and the jump to our chain: traffic is refused.
    Present,
    /// No family has the rule.
    Absent,
    /// Some rules or jumps are there and some are not: traffic may pass.
    Partial,
}

/// The firewall effects the agents need, in their own words.
pub(crate) trait Firewall {
    /// `Ok` when every program the block needs can be run.
    fn installed(&self, block: &Block) -> Result<(), FirewallError>;
    /// A token that changes whenever the ruleset the block lives in may have changed
    /// (this boot, this network namespace, nf_tables' generation), or `None` when the
    /// backend has no such thing (legacy).
    fn ruleset_version(&self, block: &Block) -> Option<String>;
    /// `Ok` when the block's chain may be used in every family: it does not exist yet, or
    /// it is ours (see `owned`); `NotOurs` otherwise. Changes nothing.
    fn chain_usable(&self, block: &Block) -> Result<(), FirewallError>;
    /// Whether the block is in force; never mistakes a failing iptables for "absent", nor
    /// a rule in a chain that is not ours for a block (`NotOurs`).
    fn presence(&self, block: &Block) -> Result<Presence, FirewallError>;
    /// Puts every block of `ensure` in force (its chain, the jump to it from the top of
    /// INPUT, its rule; `NotOurs`, and nothing changed in any family, when a chain exists
    /// that is not ours) and lifts every block of `lift` (each rule in its chain that carries
    /// its tag, every copy; the chain and its jump too once no rule is left in it), in ONE
    /// ruleset transaction per address family (and backend), none where nothing needs to
    /// change. A block in both is replaced: its old rules go and its rule is in force. Idempotent;
    /// true when it changed anything.
    fn apply(&self, ensure: &[Block], lift: &[Block]) -> Result<bool, FirewallError>;
    /// Installs the block if missing (chain and jump included); idempotent.
    fn ensure_block(&self, block: &Block) -> Result<(), FirewallError> {
        self.apply(std::slice::from_ref(block), &[]).map(|_| ())
    }
    /// Removes the block (every rule in its chain with its tag), and our chain with its
    /// jump once nothing is left in it.
    fn remove_block(&self, block: &Block) -> Result<(), FirewallError> {
        self.apply(&[], std::slice::from_ref(block)).map(|_| ())
    }
    /// Removes every rule in `chain` whose tag starts with `tag_prefix`: the way out when
    /// neither the parameters nor the state file say exactly what was installed.
    fn remove_tagged(
        &self,
        chain: &ChainName,
        families: Families,
        backend: Backend,
        tag_prefix: &str,
    ) -> Result<usize, FirewallError>;
}
