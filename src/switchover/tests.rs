//! A whole switchover against the fakes: Sentinels whose views follow the priorities set
//! and the failover asked for, Redis servers with offsets, a cluster recording its writes,
//! and the real sync promoting the target.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::observe::fake::{FakeCluster, FakeSentinels, config, no_dns, redis};
use crate::sentinel::{Replication, SentinelError, SentinelView};

/// Sentinels and Redis servers of one fake cluster: node1 the master, replicas at
/// priority 100 and offset 50 (node1 at 50).
struct Fakes {
    sentinels: Mutex<FakeSentinels>,
    priority: Mutex<BTreeMap<Addr, u32>>,
    offset: Mutex<BTreeMap<Addr, u64>>,
    failovers: Mutex<u32>,
    /// The host whose Redis is master.
    master: Mutex<String>,
    /// Refuse `SENTINEL FAILOVER` with this.
    refuse_failover: Option<&'static str>,
}

impl Fakes {
    fn new() -> Self {
        Fakes {
            sentinels: Mutex::new(FakeSentinels::agreeing(1, 0, &[])),
            priority: Mutex::new([(redis(2), 100), (redis(3), 100)].into()),
            offset: Mutex::new([(redis(1), 50), (redis(2), 50), (redis(3), 50)].into()),
            failovers: Mutex::new(0),
            master: Mutex::new(redis(1).host),
            refuse_failover: None,
        }
    }
}

impl Sentinels for Fakes {
    fn view(&self, s: &Addr, master_name: &str) -> Result<SentinelView, SentinelError> {
        let mut v = self.sentinels.lock().unwrap().view(s, master_name)?;
        for r in &mut v.replicas {
            r.candidacy.priority = self.priority.lock().unwrap().get(&r.addr).copied();
        }
        Ok(v)
    }

    fn failover(&self, s: &Addr, _: &str) -> Result<(), SentinelError> {
        if let Some(why) = self.refuse_failover {
            return Err(SentinelError::Protocol {
                addr: s.clone(),
                reason: why.into(),
            });
        }
        *self.failovers.lock().unwrap() += 1;
        // The one replica with a priority above 0 wins.
        let chosen = self
            .priority
            .lock()
            .unwrap()
            .iter()
            .find(|(_, p)| **p > 0)
            .map(|(a, _)| a.host.clone())
            .unwrap();
        let n: u8 = chosen.rsplit('.').next().unwrap().parse().unwrap();
        *self.sentinels.lock().unwrap() = FakeSentinels::agreeing(n, 1, &[]);
        *self.master.lock().unwrap() = redis(n).host;
        let mut p = self.priority.lock().unwrap();
        p.remove(&redis(n));
        p.insert(redis(1), 100);
        Ok(())
    }
}

impl RedisServers for Fakes {
    /// By host: the write port (6381) reaches the same Redis as 6379.
    fn replication(&self, r: &Addr) -> Result<Replication, SentinelError> {
        let master = *self.master.lock().unwrap() == r.host;
        let redis = Addr {
            host: r.host.clone(),
            port: 6379,
        };
        Ok(Replication {
            role: if master { "master" } else { "slave" }.into(),
            offset: self.offset.lock().unwrap().get(&redis).copied(),
            master: None,
            link_up: None,
            backlog: None,
        })
    }

    fn priority(&self, r: &Addr) -> Result<u32, SentinelError> {
        Ok(self.priority.lock().unwrap().get(r).copied().unwrap_or(100))
    }

    fn set_priority(&self, r: &Addr, p: u32) -> Result<(), SentinelError> {
        self.priority.lock().unwrap().insert(r.clone(), p);
        Ok(())
    }
}

/// Runs a switchover to `to` within `timeout`; its exit and what it said.
fn switch(
    f: &Fakes,
    cl: &FakeCluster,
    to: Option<&str>,
    timeout: Duration,
) -> (SwitchoverExit, Vec<String>) {
    let c = config("block_wait_ms = 1000\n");
    let said = Mutex::new(Vec::new());
    let say = |l: &str| said.lock().unwrap().push(l.to_string());
    let sync = || {
        let _ = crate::sync::Sync {
            config: &c,
            sentinels: f,
            cluster: cl,
            redis: Some(f),
            resolve: &no_dns,
            dry_run: false,
            courtesy: None,
            deadline: crate::deadline::Deadline::NONE,
        }
        .run();
    };
    let s = Switchover {
        config: &c,
        sentinels: f,
        cluster: cl,
        redis: f,
        resolve: &no_dns,
        say: &say,
        sync: &sync,
    };
    let exit = s.run(&Request {
        to: to.map(|t| NodeName(t.into())),
        timeout,
    });
    (exit, said.into_inner().unwrap())
}

fn settled() -> FakeCluster {
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.set_epoch(Some(0));
    cl
}

#[test]
fn the_primary_refuses_writes_before_sentinel_promotes_exactly_the_target() {
    let (f, cl) = (Fakes::new(), settled());
    let (exit, said) = switch(&f, &cl, Some("node3"), Duration::from_secs(5));
    assert_eq!(exit, SwitchoverExit::Done, "{said:#?}");
    let writes = cl.writes();
    let at = |w: &str| {
        writes
            .iter()
            .position(|x| x.starts_with(w))
            .unwrap_or_else(|| panic!("{w} not in {writes:?}"))
    };
    // The priorities recorded before any is changed, held before demoted, demoted
    // before the target's promotion; the record deleted, the hold lifted at the end.
    assert!(at("node1 priorities=") < at("node1 hold="), "{writes:?}");
    assert!(at("node1 priorities deleted") > at("node3=primary"));
    assert!(at("node1 hold=") < at("node1=replica"));
    assert!(at("node1=replica") < at("node3=primary"));
    assert_eq!(writes.last().unwrap(), "node1 hold lifted");
    assert_eq!(*f.failovers.lock().unwrap(), 1);
    assert_eq!(
        f.priority.lock().unwrap().get(&redis(2)),
        Some(&100),
        "restored"
    );
    assert_eq!(cl.roles()[2].as_deref(), Some("primary"));
    assert_eq!(cl.max_primaries(), 1);
    assert!(
        said.iter().any(|l| l.contains("writes were refused for")),
        "{said:#?}"
    );
}

#[test]
fn a_refused_switchover_changes_nothing() {
    let (f, cl) = (Fakes::new(), settled());
    cl.clear_writes();
    let (exit, said) = switch(&f, &cl, Some("node1"), Duration::from_secs(5));
    assert_eq!(exit, SwitchoverExit::Refused);
    assert!(
        said[0].contains("node1 is the primary already; nothing was changed"),
        "{said:?}"
    );
    assert!(cl.writes().iter().all(|w| w == "read"), "{:?}", cl.writes());
    assert_eq!(*f.failovers.lock().unwrap(), 0);
}

#[test]
fn a_target_that_never_catches_up_gives_the_primary_back() {
    let (f, cl) = (Fakes::new(), settled());
    f.offset.lock().unwrap().insert(redis(3), 10);
    let (exit, said) = switch(&f, &cl, Some("node3"), Duration::from_millis(1500));
    assert_eq!(exit, SwitchoverExit::RolledBack, "{said:#?}");
    assert!(
        said.iter()
            .any(|l| l.contains("timed out waiting for the target to catch up"))
    );
    assert_eq!(*f.failovers.lock().unwrap(), 0, "no failover asked");
    assert_eq!(f.priority.lock().unwrap().get(&redis(2)), Some(&100));
    assert_eq!(
        cl.roles()[0].as_deref(),
        Some("primary"),
        "{:?}",
        cl.writes()
    );
    assert!(cl.writes().contains(&"node1 hold lifted".to_string()));
}

#[test]
fn a_refused_failover_gives_the_primary_back() {
    let (mut f, cl) = (Fakes::new(), settled());
    f.refuse_failover = Some("NOGOODSLAVE No suitable replica to promote");
    let (exit, said) = switch(&f, &cl, None, Duration::from_secs(5));
    assert_eq!(exit, SwitchoverExit::RolledBack, "{said:#?}");
    assert!(said.iter().any(|l| l.contains("NOGOODSLAVE")));
    assert_eq!(cl.roles()[0].as_deref(), Some("primary"));
    assert_eq!(
        f.priority
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [100, 100]
    );
}
