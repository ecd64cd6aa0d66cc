//! One observation of the cluster, the only place that asks: what the Sentinels say
//! (every known Sentinel asked in bounded rounds, a majority's newest configuration
//! decided), what the CIB says, and the one mapped onto the other's nodes. The sync, the
//! isolation guard, `redis-ha status` and `redis-ha backup` all read the cluster through
//! here; what each then does with it is theirs.

mod ask;
mod assign;
pub(crate) mod caught_up;
#[cfg(test)]
pub(crate) mod fake;
mod nodes;
mod select;
mod truth;

pub(crate) use assign::{Assignment, assign};
pub(crate) use nodes::MappingError;
pub(crate) use truth::{NoMajority, Offsets, Truth, decide};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cluster::{Cib, Cluster, ClusterError, NodeName, Role};
use crate::config::Config;
use crate::exit::HelperExit;
use crate::resolve::{self, Resolved};
use crate::sentinel::{SentinelError, SentinelView, Sentinels};

/// Name resolution for cluster node names (used when the config maps no node): what
/// became of each name, in order, all looked up within one bound. A name still being
/// looked up at the bound is [`Resolved::Late`], not a name without addresses: its Redis
/// maps to no node yet, which a later try may change (a stalled name server), where a
/// name that does not resolve is the operator's to fix.
pub(crate) type Resolve<'a> = &'a (dyn Fn(&[&str]) -> Vec<Resolved> + Sync);

/// The real [`Resolve`]: the system's resolver, every name at once within `timeout`
/// (`crate::resolve`).
pub(crate) fn resolver(timeout: Duration) -> impl Fn(&[&str]) -> Vec<Resolved> + Sync {
    move |names| resolve::within(names, timeout)
}

/// Why the Sentinels' side of an observation is unknown.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ObserveError {
    /// A Sentinel does not monitor the master, or refuses our password: a config error.
    #[error(transparent)]
    Refused(SentinelError),
    /// Too few answered; `silent` says why the others did not (for the operator).
    #[error("{majority}{}", why(silent))]
    NoMajority {
        majority: NoMajority,
        silent: Vec<SentinelError>,
    },
    /// The CIB could not be read, so there are no nodes to map the Sentinels' truth to.
    #[error("not mapped: the cluster's nodes are unknown")]
    NodesUnknown,
}

/// `; A: why; B: why` for the Sentinels that did not answer.
fn why(silent: &[SentinelError]) -> String {
    silent.iter().map(|e| format!("; {e}")).collect()
}

impl From<&ObserveError> for HelperExit {
    fn from(e: &ObserveError) -> Self {
        match e {
            ObserveError::Refused(_) => HelperExit::GiveUp,
            ObserveError::NoMajority { .. } | ObserveError::NodesUnknown => HelperExit::Retry,
        }
    }
}

/// What a majority of the Sentinels say: every answer, and the decision.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) views: Vec<SentinelView>,
    pub(crate) truth: Truth,
}

impl Verdict {
    /// The answer the decision comes from: the newest configuration.
    pub(crate) fn newest(&self) -> &SentinelView {
        &self.views[self.truth.newest]
    }
}

/// Answers older than this are asked again before a promotion the Sentinels have not
/// made yet is decided from them. A failover moves on in that time: the leader picks
/// its replica ~0.1 s after its election and promotes it ~0.1 s later.
const FRESH_FOR: Duration = Duration::from_millis(250);

/// Asks every known Sentinel and decides; needs no cluster (backups run without one).
pub(crate) fn verdict<S: Sentinels + Sync>(
    config: &Config,
    sentinels: &S,
) -> Result<Verdict, ObserveError> {
    let asking = Instant::now();
    let ask::Answers {
        mut views,
        mut silent,
    } = ask::ask(config, sentinels)?;
    let mut truth = decided(config, sentinels, &views);
    // A silent Sentinel kept the others' answers waiting, up to a timeout: a promotion
    // foreseen from them may be one the leader has since decided against (drill 7 in CI,
    // 2026-12-04: the views waited 1 s on the cut-off node's Sentinel, the leader chose
    // the other replica meanwhile, and the foreseen one was written primary). Those
    // that answered are asked again, once, and the decision made from their new answers.
    if asking.elapsed() > FRESH_FOR && truth.as_ref().is_ok_and(|t| ahead(t, &views)) {
        let again = ask::again(config, sentinels, &views)?;
        views = again.views;
        silent.extend(again.silent);
        truth = decided(config, sentinels, &views);
    }
    let truth = truth.map_err(|majority| ObserveError::NoMajority { majority, silent })?;
    Ok(Verdict { views, truth })
}

/// The decision from `views`, with the replicas' own offsets asked when it needs them:
/// the master is down and its successor is to be foreseen (a dead master's replicas'
/// offsets no longer move, and tell before the Sentinels' INFO of them does).
fn decided<S: Sentinels + Sync>(
    config: &Config,
    sentinels: &S,
    views: &[SentinelView],
) -> Result<Truth, NoMajority> {
    let decide = |offsets: &Offsets| decide(views, &config.sentinels, &config.policy, offsets);
    let truth = decide(&Offsets::new());
    if let Ok(t) = &truth
        && !t.ask_offsets.is_empty()
    {
        let offsets = ask::offsets(sentinels, &t.ask_offsets);
        if !offsets.is_empty() {
            return decide(&offsets);
        }
    }
    truth
}

/// Whether `truth` makes primary a Redis that no Sentinel names master yet: a promotion
/// foreseen, or the leader's under way.
fn ahead(truth: &Truth, views: &[SentinelView]) -> bool {
    truth.roles.iter().any(|(addr, role)| {
        *role == Role::Primary && views.iter().all(|v| v.master.addr.canonical() != *addr)
    })
}

/// The Sentinels' verdict in the cluster's terms.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) verdict: Verdict,
    pub(crate) assignment: Assignment,
}

impl Mapped {
    /// `verdict` mapped onto `nodes`.
    pub(crate) fn new(
        config: &Config,
        resolve: Resolve<'_>,
        verdict: Verdict,
        nodes: &BTreeSet<NodeName>,
    ) -> Self {
        let assignment = assign(config, resolve, &verdict.truth, nodes);
        Mapped {
            verdict,
            assignment,
        }
    }
}

/// One look at the whole cluster: each side, or why it is unknown.
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) cib: Result<Cib, ClusterError>,
    pub(crate) sentinels: Result<Mapped, ObserveError>,
}

/// Reads the CIB and asks the Sentinels at the same time (each bounded by its client's
/// timeout), then maps the Sentinels' verdict onto the CIB's nodes: for programs that
/// only read (the guard, status).
pub(crate) fn observe<C: Cluster + Sync, S: Sentinels + Sync>(
    config: &Config,
    cluster: &C,
    sentinels: &S,
    resolve: Resolve<'_>,
) -> Observation {
    let (cib, verdict) = std::thread::scope(|scope| {
        let cib = scope.spawn(|| cluster.cib());
        let verdict = verdict(config, sentinels);
        (cib.join().expect("a CIB query does not panic"), verdict)
    });
    mapped(config, resolve, cib, verdict)
}

/// [`observe`] for a program that writes roles: the CIB first, then the Sentinels, so
/// the verdict is never older than the roles read. Read at once, a CIB that another
/// node's sync had just written from a newer verdict (the master lost) could meet an
/// older verdict (the master still primary), and a promotion would undo the demotion
/// (drill 1 caught a dead primary made primary again that way).
pub(crate) fn observe_in_order<C: Cluster, S: Sentinels + Sync>(
    config: &Config,
    cluster: &C,
    sentinels: &S,
    resolve: Resolve<'_>,
) -> Observation {
    let cib = cluster.cib();
    let verdict = verdict(config, sentinels);
    mapped(config, resolve, cib, verdict)
}

fn mapped(
    config: &Config,
    resolve: Resolve<'_>,
    cib: Result<Cib, ClusterError>,
    verdict: Result<Verdict, ObserveError>,
) -> Observation {
    let sentinels = match (&cib, verdict) {
        (Ok(cib), Ok(verdict)) => Ok(Mapped::new(config, resolve, verdict, &cib.state.nodes())),
        (Err(_), Ok(_)) => Err(ObserveError::NodesUnknown),
        (_, Err(e)) => Err(e),
    };
    Observation { cib, sentinels }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeCluster, FakeSentinels, config, no_dns};
    use super::*;

    #[test]
    fn a_promotion_foreseen_from_answers_kept_waiting_is_decided_from_new_ones() {
        use super::fake::{candidate, master1_view, redis};
        // Master 1 is down for Sentinels 2 and 3; replica 3 has the higher offset, so it
        // is foreseen. Meanwhile Sentinel 2, elected leader, chose replica 2 (its INFO of
        // 3 was older) and is promoting it.
        let odown = "master,s_down,o_down";
        let replicas = |promoted: &str| {
            let mut two = candidate(2, 100, 10, "run2");
            two.flags = promoted.split(',').map(String::from).collect();
            vec![two, candidate(3, 100, 20, "run3")]
        };
        let mut leader = master1_view(
            2,
            &format!("{odown},failover_in_progress"),
            replicas("slave,promoted"),
        );
        leader.master.failover_state = Some("send_slaveof_noone".into());
        let config = config("sentinel = 10.0.0.2:26379\nsentinel = 10.0.0.3:26379\n");
        let primary = |wait_ms: u64| {
            // Sentinel 1 is cut off: each question to it waits, then goes unanswered.
            // From the fourth question on (the second round's), Sentinel 2 is the leader.
            let sentinels = FakeSentinels::agreeing(1, 0, &[]);
            sentinels.set(1, Err("no connection".into()));
            for s in [2, 3] {
                sentinels.set(s, Ok(master1_view(s, odown, replicas("slave"))));
            }
            sentinels.slow(1, std::time::Duration::from_millis(wait_ms));
            sentinels.later(|v| {
                if v.sentinel == leader.sentinel {
                    *v = leader.clone();
                }
            });
            let v = verdict(&config, &sentinels).unwrap();
            let primaries: Vec<_> = v
                .truth
                .roles
                .iter()
                .filter(|(_, r)| **r == Role::Primary)
                .map(|(a, _)| a.clone())
                .collect();
            assert_eq!(v.truth.reached, 2, "{v:?}");
            primaries
        };
        // Answered at once: the foresight stands (nothing newer was there to see).
        assert_eq!(primary(0), [redis(3)]);
        // Kept waiting 400 ms on Sentinel 1: asked again, the leader's choice wins.
        assert_eq!(primary(400), [redis(2)]);
    }

    fn role_of(o: &Observation, node: &str) -> Option<Role> {
        let mapped = o.sentinels.as_ref().ok()?;
        mapped
            .assignment
            .desired
            .get(&NodeName(node.into()))
            .copied()
    }

    #[test]
    fn one_observation_holds_both_sides_mapped_to_nodes() {
        let s = FakeSentinels::agreeing(2, 3, &[1]);
        let c = FakeCluster::new(&[Some("fail"), Some("primary"), Some("replica")]);
        let o = observe(&config(""), &c, &s, &no_dns);
        assert!(o.cib.is_ok());
        let mapped = o.sentinels.as_ref().unwrap();
        assert_eq!(mapped.verdict.truth.epoch, 3);
        assert_eq!(mapped.verdict.views.len(), 3, "all three Sentinels asked");
        assert_eq!(mapped.verdict.newest().master.addr.host, "10.0.0.2");
        assert_eq!(role_of(&o, "node1"), Some(Role::Fail));
        assert_eq!(role_of(&o, "node2"), Some(Role::Primary));
        assert_eq!(role_of(&o, "node3"), Some(Role::Replica));
        assert_eq!(
            mapped.assignment.down,
            [NodeName("node1".into())].into(),
            "node1's Redis is s_down"
        );
    }

    #[test]
    fn a_crashed_masters_successor_is_foreseen_from_the_replicas_own_offsets() {
        // Master 1 down at every Sentinel for 300 ms; their INFO of the replicas is from
        // before (4 s old), and says nothing of who has more.
        let s = FakeSentinels::agreeing(1, 0, &[]);
        let ms = std::time::Duration::from_millis;
        for n in 1..=3 {
            let mut v = super::fake::view(n, 1, 0, &[]);
            v.master.flags = vec!["master".into(), "s_down".into(), "o_down".into()];
            v.master.s_down_for = Some(ms(300));
            for r in &mut v.replicas {
                r.link_ok = false;
                r.link_down = ms(2300);
                r.candidacy = crate::sentinel::Candidacy {
                    priority: Some(100),
                    run_id: Some(format!("run-{}", r.addr.host)),
                    info_age: Some(ms(4000)),
                    last_ok_ping: Some(ms(200)),
                };
            }
            s.set(n, Ok(v));
        }
        let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
        let o = observe(&config(""), &c, &s, &no_dns);
        assert_eq!(
            role_of(&o, "node3"),
            Some(Role::Replica),
            "nothing to tell yet"
        );
        s.replica_says(2, 70);
        s.replica_says(3, 90);
        let o = observe(&config(""), &c, &s, &no_dns);
        assert_eq!(role_of(&o, "node1"), Some(Role::Fail));
        assert_eq!(
            role_of(&o, "node2"),
            Some(Role::Fail),
            "lacks what node3 may take"
        );
        assert_eq!(
            role_of(&o, "node3"),
            Some(Role::Primary),
            "the higher offset"
        );
    }

    #[test]
    fn each_side_says_why_it_is_unknown() {
        // No CIB: nothing to map to, whatever the Sentinels say.
        let s = FakeSentinels::agreeing(1, 0, &[]);
        let mut c = FakeCluster::new(&[None, None, None]);
        c.unreadable = Some("not connected");
        let o = observe(&config(""), &c, &s, &no_dns);
        assert!(o.cib.is_err());
        assert!(matches!(o.sentinels, Err(ObserveError::NodesUnknown)));
        // One Sentinel of three: no majority, a retry.
        let s = FakeSentinels::agreeing(1, 0, &[]);
        s.set(2, Err("down".into()));
        s.set(3, Err("down".into()));
        let o = observe(
            &config(""),
            &FakeCluster::new(&[None, None, None]),
            &s,
            &no_dns,
        );
        let e = o.sentinels.unwrap_err();
        assert_eq!(HelperExit::from(&e), HelperExit::Retry, "{e}");
        assert!(e.to_string().contains("no majority"), "{e}");
        // A master the Sentinels do not monitor: give up.
        let mut config = config("");
        config.master_name = "other".into();
        let o = observe(&config, &FakeCluster::new(&[None, None, None]), &s, &no_dns);
        let e = o.sentinels.unwrap_err();
        assert_eq!(HelperExit::from(&e), HelperExit::GiveUp, "{e}");
    }

    /// Records the order of the questions, answering as the fakes do.
    struct Ordered<'a, T> {
        inner: &'a T,
        log: &'a std::sync::Mutex<Vec<&'static str>>,
    }

    impl Cluster for Ordered<'_, FakeCluster> {
        fn cib(&self) -> Result<Cib, ClusterError> {
            self.log.lock().unwrap().push("cib");
            self.inner.cib()
        }
        fn set_role(&self, node: &NodeName, role: Role) -> Result<(), ClusterError> {
            self.inner.set_role(node, role)
        }
        fn write(
            &self,
            state: &crate::cluster::ClusterState,
            writes: &[(NodeName, crate::cluster::Write)],
        ) -> Result<(), ClusterError> {
            self.inner.write(state, writes)
        }
        fn set_hold(&self, node: &NodeName, until: Option<u64>) -> Result<(), ClusterError> {
            self.inner.set_hold(node, until)
        }
        fn set_priority_record(
            &self,
            node: &NodeName,
            record: Option<&crate::cluster::PriorityRecord>,
        ) -> Result<(), ClusterError> {
            self.inner.set_priority_record(node, record)
        }
    }

    impl Sentinels for Ordered<'_, FakeSentinels> {
        fn view(
            &self,
            s: &crate::sentinel::Addr,
            name: &str,
        ) -> Result<crate::sentinel::SentinelView, crate::sentinel::SentinelError> {
            self.log.lock().unwrap().push("sentinel");
            self.inner.view(s, name)
        }

        fn failover(
            &self,
            s: &crate::sentinel::Addr,
            name: &str,
        ) -> Result<(), crate::sentinel::SentinelError> {
            self.inner.failover(s, name)
        }
    }

    #[test]
    fn a_writer_reads_the_cib_before_it_asks_the_sentinels() {
        let log = std::sync::Mutex::new(Vec::new());
        let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
        let s = FakeSentinels::agreeing(1, 0, &[]);
        let cluster = Ordered {
            inner: &c,
            log: &log,
        };
        let sentinels = Ordered {
            inner: &s,
            log: &log,
        };
        let o = observe_in_order(&config(""), &cluster, &sentinels, &no_dns);
        assert!(o.sentinels.is_ok());
        assert_eq!(
            *log.lock().unwrap(),
            ["cib", "sentinel", "sentinel", "sentinel"]
        );
    }
}
