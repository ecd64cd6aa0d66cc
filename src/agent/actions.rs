//! What start, stop, monitor and validate-all decide, against the `Firewall` trait.

use super::error::AgentError;
use super::params::Params;
use super::state::StateFile;
use crate::blocks::AgentKind;
use crate::blocks::CHAIN;
use crate::firewall::block::BadValue;
use crate::firewall::{Backend, Block, ChainName, Families, Firewall, FirewallError, Presence};
use crate::lock::{HostLock, LockFile};
use crate::ocf::{Logger, OcfCode, OcfEnv};

/// One agent invocation: its inputs, already read, and the effects it may use.
pub(crate) struct Agent<'a, F: Firewall> {
    pub(crate) kind: AgentKind,
    pub(crate) env: &'a OcfEnv,
    pub(crate) log: &'a Logger,
    pub(crate) firewall: &'a F,
    pub(crate) params: Result<Params, BadValue>,
    pub(crate) state: StateFile,
    pub(crate) is_root: bool,
    pub(crate) lock: LockFile,
}

type Outcome = Result<OcfCode, AgentError>;

impl<F: Firewall> Agent<'_, F> {
    fn params(&self) -> Result<&Params, AgentError> {
        self.params
            .as_ref()
            .map_err(|e| AgentError::Config(e.clone()))
    }

    fn require_root(&self) -> Result<(), AgentError> {
        if self.is_root {
            Ok(())
        } else {
            Err(AgentError::NotRoot)
        }
    }

    fn lock(&self) -> Result<HostLock, AgentError> {
        Ok(HostLock::acquire(&self.lock, self.env.budget())?)
    }

    pub(crate) fn validate(&self) -> Outcome {
        let params = self.params()?;
        if self.env.check_level >= 10 {
            self.firewall.installed(&params.block)?;
            // Reading the tables needs root, like start.
            self.require_root()?;
            self.firewall.chain_usable(&params.block)?;
        }
        Ok(OcfCode::Success)
    }

    pub(crate) fn start(&self) -> Outcome {
        let block = &self.params()?.block;
        self.require_root()?;
        // Before the state file: a start that cannot run iptables leaves no trace.
        self.firewall.installed(block)?;
        let _lock = self.lock()?;
        // Before anything changes: a chain that is not ours is refused with nothing
        // changed, not even the block of earlier parameters lifted.
        self.firewall.chain_usable(block)?;
        // Before the state file: a refused start leaves nothing for its stop to remove.
        if let Some(other) = self.sharer(block) {
            return Err(AgentError::Shared {
                port: block.port.to_string(),
                agent: self.kind.name(),
                other: other.resource(self.kind),
                state: other.path().to_path_buf(),
            });
        }
        if let Some(old) = self.state.read(self.kind)
            && old.block != *block
        {
            self.log.info(&format!(
                "parameters changed since start: removing the old block of port {}",
                old.block.port
            ));
            self.firewall.remove_block(&old.block)?;
        }
        // Recorded first, so a stop after a half-done start knows what to clean up.
        self.state
            .write(block)
            .map_err(|source| AgentError::State {
                path: self.state.path().to_path_buf(),
                source,
            })?;
        self.firewall.ensure_block(block)?;
        self.log.info(&format!(
            "port {} blocked ({}, match {}, {}, chain {})",
            block.port, block.families, block.match_by, block.reject_with, block.chain
        ));
        Ok(OcfCode::Success)
    }

    pub(crate) fn stop(&self) -> Outcome {
        self.require_root()?;
        let _lock = self.lock()?;
        let mut blocks: Vec<Block> = Vec::new();
        let recorded = self.state.read(self.kind).map(|r| r.block);
        if let Some(recorded) = &recorded {
            blocks.push(recorded.clone());
        }
        if let Ok(params) = &self.params
            && !blocks.contains(&params.block)
        {
            blocks.push(params.block.clone());
        }
        if blocks.is_empty() {
            self.remove_by_tag()?;
        }
        for block in &blocks {
            // Another resource's rule (this one's start was refused, or both started
            // before starts refused a shared port): it stays for that one's stop.
            if let Some(other) = self.sharer(block) {
                self.log.info(&format!(
                    "port {} stays blocked: its rule is {} resource {}'s",
                    block.port,
                    self.kind.name(),
                    other.resource(self.kind)
                ));
                continue;
            }
            match self.firewall.remove_block(block) {
                Ok(()) => {}
                // Start records a block only once it found iptables: without one, and
                // nothing recorded, nothing of ours was installed. A recorded block may
                // still be in force, and this stop cannot tell: it fails.
                Err(FirewallError::NotInstalled { program })
                    if recorded.as_ref() != Some(block) =>
                {
                    self.log.warn(&format!(
                        "{program} is not installed: nothing to remove there"
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.state.remove().map_err(|source| AgentError::State {
            path: self.state.path().to_path_buf(),
            source,
        })?;
        self.log
            .info(&format!("{} stopped: port unblocked", self.kind.name()));
        Ok(OcfCode::Success)
    }

    /// Another resource of this agent on this host whose recorded block is `block`'s
    /// rule (the same tag: agent and port).
    fn sharer(&self, block: &Block) -> Option<StateFile> {
        self.state
            .others(self.kind)
            .into_iter()
            .find(|(_, params)| {
                params
                    .as_ref()
                    .is_some_and(|p| p.block.tag() == block.tag())
            })
            .map(|(other, _)| other)
    }

    /// Neither the state file nor the parameters say what was installed: remove every
    /// rule tagged with this agent's name from the default chain, in both families,
    /// unless another resource of this agent runs here (those rules may be its).
    fn remove_by_tag(&self) -> Result<(), AgentError> {
        if let Some((other, _)) = self.state.others(self.kind).first() {
            self.log.warn(&format!(
                "nothing says what this resource installed, and {} resource {} runs here: \
                 no rule removed",
                self.kind.name(),
                other.resource(self.kind)
            ));
            return Ok(());
        }
        let chain = ChainName::parse(CHAIN).expect("the default chain name is valid");
        let prefix = Block::tag_prefix(self.kind.name());
        for families in [Families::Ipv4, Families::Ipv6] {
            match self
                .firewall
                .remove_tagged(&chain, families, Backend::Auto, &prefix)
            {
                Ok(0) => {}
                Ok(n) => self
                    .log
                    .info(&format!("removed {n} {families} rule(s) tagged {prefix}*")),
                Err(FirewallError::NotInstalled { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Rules seen in force at nf_tables generation G are still in force while the
    /// generation is G (same boot, same network namespace): then no iptables runs at all.
    /// Any change to the ruleset, by anyone, bumps the generation and sends the next
    /// monitor to `iptables -C` again.
    pub(crate) fn monitor(&self) -> Outcome {
        let block = &self.params()?.block;
        self.require_root()?;
        // Read before the check, so a change made during it is seen next time.
        let version = self.firewall.ruleset_version(block);
        if let Some(v) = &version
            && self.state.verified_at(block, v)
        {
            self.log.debug(&format!(
                "port {} is blocked (ruleset unchanged: {v})",
                block.port
            ));
            return Ok(OcfCode::Success);
        }
        match self.firewall.presence(block) {
            // The rule is another resource's, which this one never started.
            Ok(Presence::Present) if !self.state.exists() && self.sharer(block).is_some() => {
                Ok(OcfCode::NotRunning)
            }
            Ok(Presence::Present) => {
                self.log.debug(&format!("port {} is blocked", block.port));
                if let Some(v) = &version
                    && let Err(e) = self.state.record_verified(block, v)
                {
                    self.log
                        .warn(&format!("cannot record the verified ruleset: {e}"));
                }
                Ok(OcfCode::Success)
            }
            Ok(Presence::Absent) if !self.state.exists() => Ok(OcfCode::NotRunning),
            Ok(Presence::Absent) => Err(AgentError::Vanished {
                port: block.port.to_string(),
                chain: block.chain.to_string(),
                state: self.state.path().to_path_buf(),
            }),
            Ok(Presence::Partial) => Err(AgentError::Partial {
                port: block.port.to_string(),
                chain: block.chain.to_string(),
            }),
            Err(FirewallError::NotInstalled { .. }) if self.env.is_probe() => {
                Ok(OcfCode::NotRunning)
            }
            Err(e) => Err(e.into()),
        }
    }
}
