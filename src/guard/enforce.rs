//! Puts a guard decision into the firewall: the agents' own rule code, under the agents'
//! host lock, with the guard's tag (`redis-ha:guard:PORT`), so Pacemaker's view of the
//! block clones is never disturbed and either can be lifted without the other.

use std::time::Duration;

use super::rules::Decision;
use crate::blocks::CHAIN;
use crate::config::GuardSettings;
use crate::firewall::{
    Backend, Block, ChainName, Firewall, FirewallError, Port, RejectWith, Scope,
};
use crate::lock::{HostLock, LockError, LockFile};

/// Why the guard's rules could not be put in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnforceError {
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("{0}")]
    Firewall(#[from] FirewallError),
}

/// The owner in the guard's rule tags.
pub(crate) const OWNER: &str = "guard";

/// The owner in the tag of the guard's first step when it starts refusing reads: new
/// connections only (`Scope::New`), for `GuardSettings::read_drain`.
pub(crate) const DRAIN_OWNER: &str = "guardDrain";

/// The guard's block of one port.
pub(crate) fn block(settings: &GuardSettings, port: Port) -> Block {
    Block {
        owner: OWNER,
        port,
        match_by: settings.match_by,
        reject_with: RejectWith::TcpReset,
        scope: Scope::Every,
        families: settings.families,
        // The agents' default chain: one jump from INPUT serves both.
        chain: ChainName::parse(CHAIN).expect("the default chain name is valid"),
        backend: Backend::Auto,
    }
}

/// The first step of refusing reads: new connections only, under a tag of its own so that
/// the second step (every packet, the guard's own tag) lifts it without touching the
/// other, and any round lifts one left behind.
fn drain_block(settings: &GuardSettings) -> Block {
    Block {
        owner: DRAIN_OWNER,
        scope: Scope::New,
        ..block(settings, settings.read_port)
    }
}

/// Remembers what it last put in force, and at which ruleset version, so that a round
/// with nothing to change runs no iptables at all.
pub(crate) struct Enforcer {
    lock: LockFile,
    lock_wait: Duration,
    /// Whether to refuse new connections first when reads come to be refused: not at
    /// boot, when nothing is connected yet.
    drains: bool,
    /// What the last round managed and put in force, and the ruleset version then.
    last: Option<Last>,
}

struct Last {
    /// The blocks of both ports under the settings of then.
    managed: Vec<Block>,
    /// Those of them in force.
    wanted: Vec<Block>,
    version: Option<String>,
}

impl Enforcer {
    pub(crate) fn new(lock: LockFile, lock_wait: Duration, drains: bool) -> Self {
        Enforcer {
            lock,
            lock_wait,
            drains,
            last: None,
        }
    }

    /// Makes the guard's rules what `decision` says (`None`: the guard is off, none).
    /// Returns whether it had to change anything.
    pub(crate) fn apply(
        &mut self,
        firewall: &impl Firewall,
        settings: &GuardSettings,
        decision: Option<&Decision>,
    ) -> Result<bool, EnforceError> {
        let write = block(settings, settings.write_port);
        let read = block(settings, settings.read_port);
        let wanted: Vec<Block> = decision.map_or_else(Vec::new, |d| {
            [(d.write.is_some(), &write), (d.read.is_some(), &read)]
                .into_iter()
                .filter(|(refused, _)| *refused)
                .map(|(_, b)| b.clone())
                .collect()
        });
        let new_reads = drain_block(settings);
        let all = [write.clone(), read.clone(), new_reads.clone()];
        let version = all.iter().find_map(|b| firewall.ruleset_version(b));
        if let Some(Last {
            managed,
            wanted: w,
            version: Some(v),
        }) = &self.last
            && *managed == all
            && *w == wanted
            && version.as_ref() == Some(v)
        {
            return Ok(false);
        }
        // Reads newly refused: new connections first, for `read_drain`, while a read
        // under way is answered; then every packet, which resets the connections left
        // (long-lived clients). Meanwhile HAProxy's check is refused and it sends new
        // reads elsewhere; a write refusal goes in force in the first step.
        let drain = settings.read_drain;
        let draining = self.drains
            && !drain.is_zero()
            && wanted.contains(&read)
            && !self.last.as_ref().is_some_and(|l| l.wanted.contains(&read));
        if draining {
            let first: Vec<Block> = wanted
                .iter()
                .filter(|b| **b != read)
                .cloned()
                .chain([new_reads])
                .collect();
            let lock = HostLock::acquire(&self.lock, self.lock_wait)?;
            self.change(firewall, &all, &first, Some(&read))?;
            // Not held while it waits: the agents take the same lock.
            drop(lock);
            std::thread::sleep(drain);
        }
        let _lock = HostLock::acquire(&self.lock, self.lock_wait)?;
        Ok(self.change(firewall, &all, &wanted, None)? || draining)
    }

    /// One `apply`: every wanted block in force, every other one it manages (and those of
    /// the settings before: the config named another port or family) lifted, `keep`
    /// excepted (left as it is), in one ruleset transaction per family.
    fn change(
        &mut self,
        firewall: &impl Firewall,
        all: &[Block],
        wanted: &[Block],
        keep: Option<&Block>,
    ) -> Result<bool, FirewallError> {
        let mut lift: Vec<Block> = all
            .iter()
            .filter(|b| !wanted.contains(b) && Some(*b) != keep)
            .cloned()
            .collect();
        if let Some(last) = &self.last {
            lift.extend(last.managed.iter().filter(|b| !all.contains(b)).cloned());
        }
        let changed = firewall.apply(wanted, &lift)?;
        let version = all.iter().find_map(|b| firewall.ruleset_version(b));
        self.last = Some(Last {
            managed: all.to_vec(),
            wanted: wanted.to_vec(),
            version,
        });
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Port;
    use crate::firewall::fake::FakeFirewall;

    fn closed(write: bool, read: bool) -> Decision {
        Decision {
            write: write.then(|| "w".to_string()),
            read: read.then(|| "r".to_string()),
        }
    }

    /// The directory of one test's lock, removed when it ends.
    struct LockDir(std::path::PathBuf);

    impl Drop for LockDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An enforcer, a firewall at generation 1, and the test's lock directory.
    fn enforcer(name: &str) -> (Enforcer, FakeFirewall, LockDir) {
        let dir =
            std::env::temp_dir().join(format!("redis-ha-guard-lock-{}-{name}", std::process::id()));
        let fw = FakeFirewall::default();
        fw.generation.set(Some(1));
        (
            Enforcer::new(
                LockFile::scratch(&dir, "lock"),
                Duration::from_secs(1),
                true,
            ),
            fw,
            LockDir(dir),
        )
    }

    fn ports(fw: &FakeFirewall) -> Vec<String> {
        fw.blocks.borrow().iter().map(Block::tag).collect()
    }

    #[test]
    fn decisions_become_guard_rules_and_only_guard_rules() {
        let s = GuardSettings::default();
        let (mut e, fw, _lock) = enforcer("rules");
        // An agent's block is there already: the guard never touches it.
        let agent_block = Block {
            owner: "RedisLBWriteBlock",
            ..block(&s, Port::new(6381))
        };
        fw.blocks.borrow_mut().push(agent_block.clone());

        assert!(e.apply(&fw, &s, Some(&closed(true, true))).unwrap());
        assert_eq!(
            ports(&fw),
            [
                "redis-ha:RedisLBWriteBlock:6381",
                "redis-ha:guard:6381",
                "redis-ha:guard:6380"
            ]
        );
        assert!(e.apply(&fw, &s, Some(&closed(true, false))).unwrap());
        assert_eq!(
            ports(&fw),
            ["redis-ha:RedisLBWriteBlock:6381", "redis-ha:guard:6381"]
        );
        assert!(e.apply(&fw, &s, None).unwrap());
        assert_eq!(ports(&fw), ["redis-ha:RedisLBWriteBlock:6381"]);
    }

    /// Reads newly refused: new connections first (its own tag; a read rule already in
    /// force, unknown to a new guard, is left as it is), every packet `read_drain` later in
    /// a second apply that lifts the first step's rule; a write refusal goes in force in
    /// the first. Reads refused already: no first step again.
    #[test]
    fn refusing_reads_refuses_new_connections_first() {
        let s = GuardSettings::default();
        let (mut e, fw, _lock) = enforcer("drain");
        let started = std::time::Instant::now();
        assert!(e.apply(&fw, &s, Some(&closed(true, true))).unwrap());
        assert!(started.elapsed() >= s.read_drain);
        assert_eq!(fw.applies.get(), 2);
        assert_eq!(
            *fw.calls.borrow(),
            [
                "ensure redis-ha:guard:6381",
                "ensure redis-ha:guardDrain:6380",
                "ensure redis-ha:guard:6381",
                "ensure redis-ha:guard:6380",
                "remove redis-ha:guardDrain:6380",
            ]
            .map(String::from)
        );
        assert_eq!(ports(&fw), ["redis-ha:guard:6381", "redis-ha:guard:6380"]);
        let first = fw.blocks.borrow().clone();
        assert!(first.iter().all(|b| b.scope == Scope::Every));
        // Writes let through, reads still refused: one apply, no first step.
        fw.calls.borrow_mut().clear();
        assert!(e.apply(&fw, &s, Some(&closed(false, true))).unwrap());
        assert_eq!(fw.applies.get(), 3);
        assert!(
            !fw.calls
                .borrow()
                .iter()
                .any(|c| c.contains("ensure redis-ha:guardDrain"))
        );
        // At boot nothing is connected: no first step.
        let (mut boot, fw, _lock) = enforcer("drain-boot");
        boot.drains = false;
        boot.apply(&fw, &s, Some(&closed(true, true))).unwrap();
        assert_eq!(fw.applies.get(), 1);
    }

    #[test]
    fn an_unchanged_ruleset_runs_no_iptables() {
        let s = GuardSettings::default();
        let (mut e, fw, _lock) = enforcer("fast");
        e.apply(&fw, &s, Some(&closed(true, false))).unwrap();
        let calls = fw.calls.borrow().len();
        assert!(!e.apply(&fw, &s, Some(&closed(true, false))).unwrap());
        assert_eq!(fw.calls.borrow().len(), calls, "nothing asked");
        // Someone deleted our rule: the generation moves, the next round puts it back.
        fw.blocks.borrow_mut().clear();
        fw.generation.set(Some(2));
        assert!(e.apply(&fw, &s, Some(&closed(true, false))).unwrap());
        assert_eq!(ports(&fw), ["redis-ha:guard:6381"]);
    }

    #[test]
    fn each_round_changes_the_firewall_in_one_apply() {
        // Without the first step of refusing reads (below).
        let s = GuardSettings {
            read_drain: Duration::ZERO,
            ..GuardSettings::default()
        };
        let (mut e, fw, _lock) = enforcer("one");
        for (decision, want) in [
            (
                Some(closed(true, true)),
                &["redis-ha:guard:6381", "redis-ha:guard:6380"][..],
            ),
            (Some(closed(false, true)), &["redis-ha:guard:6380"]),
            (Some(closed(true, false)), &["redis-ha:guard:6381"]),
            (None, &[]),
        ] {
            let before = fw.applies.get();
            assert!(e.apply(&fw, &s, decision.as_ref()).unwrap());
            assert_eq!(fw.applies.get(), before + 1, "{decision:?}");
            let mut got = ports(&fw);
            got.sort();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{decision:?}");
        }
    }

    #[test]
    fn a_changed_port_moves_the_rule_without_opening_the_kept_one() {
        let mut s = GuardSettings::default();
        let (mut e, fw, _lock) = enforcer("moved");
        e.apply(&fw, &s, Some(&closed(true, true))).unwrap();
        s.read_port = Port::new(7380);
        e.apply(&fw, &s, Some(&closed(true, true))).unwrap();
        assert_eq!(ports(&fw), ["redis-ha:guard:6381", "redis-ha:guard:7380"]);
        let calls = fw.calls.borrow().join("\n");
        assert!(calls.contains("remove redis-ha:guard:6380"), "{calls}");
        assert!(!calls.contains("remove redis-ha:guard:6381"), "{calls}");
    }

    #[test]
    fn a_broken_iptables_is_an_error_not_an_open_port() {
        let s = GuardSettings::default();
        let (mut e, mut fw, _lock) = enforcer("broken");
        fw.broken = true;
        assert!(e.apply(&fw, &s, Some(&closed(true, true))).is_err());
    }
}
