//! Puts a guard decision into the firewall: the agents' own rule code, under the agents'
//! host lock, with the guard's tag (`redis-ha:guard:PORT`), so Pacemaker's view of the
//! block clones is never disturbed and either can be lifted without the other.

use std::time::Duration;

use super::rules::Decision;
use crate::blocks::CHAIN;
use crate::config::GuardSettings;
use crate::firewall::{Backend, Block, ChainName, Firewall, FirewallError, Port, RejectWith};
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

/// The guard's block of one port.
pub(crate) fn block(settings: &GuardSettings, port: Port) -> Block {
    Block {
        owner: OWNER,
        port,
        match_by: settings.match_by,
        reject_with: RejectWith::TcpReset,
        families: settings.families,
        // The agents' default chain: one jump from INPUT serves both.
        chain: ChainName::parse(CHAIN).expect("the default chain name is valid"),
        backend: Backend::Auto,
    }
}

/// Remembers what it last put in force, and at which ruleset version, so that a round
/// with nothing to change runs no iptables at all.
pub(crate) struct Enforcer {
    lock: LockFile,
    lock_wait: Duration,
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
    pub(crate) fn new(lock: LockFile, lock_wait: Duration) -> Self {
        Enforcer {
            lock,
            lock_wait,
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
        let wanted: Vec<Block> = decision.map_or_else(Vec::new, |d| {
            let mut v = Vec::new();
            if d.write.is_some() {
                v.push(block(settings, settings.write_port));
            }
            if d.read.is_some() {
                v.push(block(settings, settings.read_port));
            }
            v
        });
        let all = [
            block(settings, settings.write_port),
            block(settings, settings.read_port),
        ];
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
        let _lock = HostLock::acquire(&self.lock, self.lock_wait)?;
        Ok(self.change(firewall, &all, &wanted)?)
    }

    /// One `apply`: every wanted block in force, every other one it manages (and those of
    /// the settings before: the config named another port or family) lifted, in one
    /// ruleset transaction per family.
    fn change(
        &mut self,
        firewall: &impl Firewall,
        all: &[Block],
        wanted: &[Block],
    ) -> Result<bool, FirewallError> {
        let mut lift: Vec<Block> = all
            .iter()
            .filter(|b| !wanted.contains(b))
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
            Enforcer::new(LockFile::scratch(&dir, "lock"), Duration::from_secs(1)),
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
        let s = GuardSettings::default();
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
