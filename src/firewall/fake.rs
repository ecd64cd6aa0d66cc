//! A firewall that keeps its blocks in memory and records what it was asked: the unit
//! tests' stand-in for iptables (the agents' and the guard's decisions).

use std::cell::{Cell, RefCell};

use super::owned::Why;
use super::{Backend, Block, ChainName, Families, Firewall, FirewallError, Presence};

/// A firewall that keeps its blocks in memory and records what it was asked.
#[derive(Default)]
pub(crate) struct FakeFirewall {
    pub(crate) blocks: RefCell<Vec<Block>>,
    pub(crate) calls: RefCell<Vec<String>>,
    pub(crate) missing: bool,
    pub(crate) broken: bool,
    /// The blocks' chain exists and is someone else's.
    pub(crate) not_ours: bool,
    /// The generation `ruleset_version` reports (None: a backend without one).
    pub(crate) generation: Cell<Option<u32>>,
    /// How many `apply` calls came (the real one makes one transaction per family each).
    pub(crate) applies: Cell<usize>,
}

impl FakeFirewall {
    fn fail(&self) -> Result<(), FirewallError> {
        if self.missing {
            return Err(FirewallError::NotInstalled {
                program: "iptables".into(),
            });
        }
        if self.broken {
            return Err(FirewallError::Failed {
                command: "iptables -C".into(),
                code: 2,
                stderr: "unknown option".into(),
            });
        }
        Ok(())
    }

    fn refuse_foreign(&self, block: &Block) -> Result<(), FirewallError> {
        if self.not_ours {
            return Err(FirewallError::NotOurs {
                chain: block.chain.to_string(),
                program: "iptables".into(),
                why: Why::Rule {
                    chain: block.chain.to_string(),
                    text: "-j ACCEPT".into(),
                },
            });
        }
        Ok(())
    }
}

impl Firewall for FakeFirewall {
    fn chain_usable(&self, block: &Block) -> Result<(), FirewallError> {
        self.fail()?;
        self.calls
            .borrow_mut()
            .push(format!("chain_usable {}", block.chain));
        self.refuse_foreign(block)
    }

    fn installed(&self, _: &Block) -> Result<(), FirewallError> {
        self.fail()
    }

    fn ruleset_version(&self, _: &Block) -> Option<String> {
        self.generation.get().map(|g| format!("boot/netns/{g}"))
    }

    fn presence(&self, block: &Block) -> Result<Presence, FirewallError> {
        self.fail()?;
        self.calls
            .borrow_mut()
            .push(format!("presence {}", block.tag()));
        self.refuse_foreign(block)?;
        Ok(if self.blocks.borrow().contains(block) {
            Presence::Present
        } else {
            Presence::Absent
        })
    }

    /// Like the real one: a lift takes every block with its tag in its chain, then the
    /// ensured blocks go in; records one line per block asked for.
    fn apply(&self, ensure: &[Block], lift: &[Block]) -> Result<bool, FirewallError> {
        self.fail()?;
        ensure.iter().try_for_each(|b| self.refuse_foreign(b))?;
        self.applies.set(self.applies.get() + 1);
        let mut calls = self.calls.borrow_mut();
        calls.extend(ensure.iter().map(|b| format!("ensure {}", b.tag())));
        calls.extend(lift.iter().map(|b| format!("remove {}", b.tag())));
        let mut blocks = self.blocks.borrow_mut();
        let before = blocks.clone();
        blocks.retain(|b| {
            !lift
                .iter()
                .any(|l| l.tag() == b.tag() && l.chain == b.chain)
        });
        for block in ensure {
            if !blocks.contains(block) {
                blocks.push(block.clone());
            }
        }
        Ok(*blocks != before)
    }

    fn remove_tagged(
        &self,
        chain: &ChainName,
        families: Families,
        _: Backend,
        prefix: &str,
    ) -> Result<usize, FirewallError> {
        self.fail()?;
        self.calls
            .borrow_mut()
            .push(format!("remove_tagged {chain} {families} {prefix}"));
        let before = self.blocks.borrow().len();
        self.blocks
            .borrow_mut()
            .retain(|b| !b.tag().starts_with(prefix));
        Ok(before - self.blocks.borrow().len())
    }
}
