//! A firewall that keeps its blocks in memory and records what it was asked: the unit
//! tests' stand-in for iptables (the agents' and the guard's decisions).

use std::cell::{Cell, RefCell};

use super::{Backend, Block, ChainName, Families, Firewall, FirewallError, Presence};

/// A firewall that keeps its blocks in memory and records what it was asked.
#[derive(Default)]
pub(crate) struct FakeFirewall {
    pub(crate) blocks: RefCell<Vec<Block>>,
    pub(crate) calls: RefCell<Vec<String>>,
    pub(crate) missing: bool,
    pub(crate) broken: bool,
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
}

impl Firewall for FakeFirewall {
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
