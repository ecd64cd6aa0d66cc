//! Real Sentinels: the `RedisSet` fixture builds a replicated set that agrees, fails over
//! and notices deaths, and `redis-ha sentinel-view` (the library's `RedisSentinels`)
//! reads each state the way the Sentinel helper will.

use std::time::{Duration, Instant};

use crate::fixture::redis_set::{MASTER_NAME, RedisSet};
use crate::util::{Run, bin, run};

/// `redis-ha sentinel-view` inside the set's namespace, and how long it took.
fn sentinel_view(set: &RedisSet, sentinel: &str, master: &str, extra: &[&str]) -> (Run, Duration) {
    let mut cmd = set.ns().cmd(bin());
    cmd.args(["sentinel-view", "--sentinel", sentinel, "--master", master])
        .args(extra);
    let start = Instant::now();
    let out = run(&mut cmd);
    (out, start.elapsed())
}

/// The `key: value` lines of a successful `sentinel-view`.
struct View {
    run: Run,
    lines: Vec<(String, String)>,
}

impl View {
    fn of(set: &RedisSet, s: usize) -> View {
        Self::at(set, &set.sentinel_addr(s))
    }

    fn at(set: &RedisSet, sentinel: &str) -> View {
        let (run, _) = sentinel_view(set, sentinel, MASTER_NAME, &[]);
        let run = run.expect(0);
        let lines = run
            .stdout
            .lines()
            .map(|l| {
                let (k, v) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("not key: value: {l:?}"));
                (k.to_string(), v.to_string())
            })
            .collect();
        View { run, lines }
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn get(&self, key: &str) -> &str {
        match self.all(key)[..] {
            [v] => v,
            _ => panic!("no single {key:?} line\n{}", self.run),
        }
    }

    fn try_get(&self, key: &str) -> Option<&str> {
        self.all(key).first().copied()
    }

    fn master_flags(&self) -> Vec<&str> {
        self.get("master flags").split(',').collect()
    }

    /// `replica ADDR FIELD`.
    fn replica(&self, addr: &str, field: &str) -> &str {
        self.get(&format!("replica {addr} {field}"))
    }

    fn replica_flags(&self, addr: &str) -> Vec<&str> {
        self.replica(addr, "flags").split(',').collect()
    }

    fn replicas(&self) -> Vec<&str> {
        let mut addrs: Vec<&str> = self
            .lines
            .iter()
            .filter_map(|(k, _)| k.strip_prefix("replica ")?.strip_suffix(" flags"))
            .collect();
        addrs.sort();
        addrs
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.run.fmt(f)
    }
}

/// How long a Sentinel's view may take to settle. The slowest case seen (CI, 2 cores):
/// under load the Sentinels fail over a second time; the replica the first failover
/// promoted still says master, and a Sentinel converts it only once it has reported that
/// role for 8 s (`SENTINEL_PUBLISH_PERIOD * 4`); a Sentinel then sees it follow the new
/// master at its next INFO of that replica, every 10 s (`SENTINEL_INFO_PERIOD`) while
/// the master is not down. 8 + 10 s, plus the second failover itself.
const VIEW_SETTLES: Duration = Duration::from_secs(30);

/// Polls `sentinel-view` on Sentinel `s` until `ok` holds (at most [`VIEW_SETTLES`]).
fn wait_view(set: &RedisSet, s: usize, what: &str, ok: impl Fn(&View) -> bool) -> (View, Duration) {
    let start = Instant::now();
    loop {
        let view = View::of(set, s);
        if ok(&view) {
            return (view, start.elapsed());
        }
        assert!(
            start.elapsed() < VIEW_SETTLES,
            "timed out waiting until {what}\nlast view:\n{view}\n{}",
            set.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sentinel_view_reads_a_healthy_set() {
    let start = Instant::now();
    let set = RedisSet::start(3);
    let startup = start.elapsed();

    // The fixture: node 0 is master, the others replicate it, everyone agrees.
    assert_eq!(set.role(0).as_deref(), Some("master"));
    for i in 1..3 {
        assert_eq!(set.role(i).as_deref(), Some("slave"), "{}", set.report());
        assert!(set.info(i).contains("master_host:10.213.1.11"));
    }

    for s in 0..3 {
        let v = View::of(&set, s);
        assert_eq!(v.get("sentinel"), set.sentinel_addr(s), "{v}");
        assert_eq!(v.get("master"), "10.213.1.11:6379", "{v}");
        assert_eq!(v.master_flags(), ["master"], "{v}");
        assert_eq!(v.get("master config-epoch"), "0", "{v}");
        assert_eq!(v.get("master num-other-sentinels"), "2", "{v}");
        assert_eq!(v.get("master quorum"), "2", "{v}");
        assert_eq!(
            v.replicas(),
            ["10.213.1.12:6379", "10.213.1.13:6379"],
            "{v}"
        );
        for r in v.replicas() {
            assert_eq!(v.replica_flags(r), ["slave"], "{v}");
            assert_eq!(v.replica(r, "link"), "ok", "{v}");
            assert_eq!(v.replica(r, "master"), "10.213.1.11:6379", "{v}");
            assert_eq!(v.replica(r, "link-down-ms"), "0", "{v}");
            assert!(v.replica(r, "offset").parse::<u64>().is_ok(), "{v}");
        }
        let mut others = set.sentinel_addrs();
        others.remove(s);
        assert_eq!(v.all("peer"), others, "{v}");
    }

    // IPv6 works, host without brackets inside, with brackets on the command line.
    let v4 = View::of(&set, 0);
    let v6 = View::at(&set, &format!("[{}]:26379", set.ip6(0)));
    assert_eq!(v6.get("sentinel"), "[fd00:213:1::11]:26379", "{v6}");
    // (Replication offsets move: Sentinels publish hellos through the master.)
    let stable = |v: &View| -> Vec<(String, String)> {
        v.lines[1..]
            .iter()
            .filter(|(k, _)| !k.ends_with(" offset"))
            .cloned()
            .collect()
    };
    assert_eq!(stable(&v6), stable(&v4), "{v6}\n{v4}");

    eprintln!("set of 3 agreed {startup:?} after start");
}

#[test]
fn a_forced_failover_moves_the_master_and_bumps_the_epoch() {
    let set = RedisSet::start(3);
    let start = Instant::now();
    set.failover();
    let m = set.wait_new_master(0);
    let switched = start.elapsed();
    let other = 3 - m; // the replica that stayed one
    assert_eq!(set.role(m).as_deref(), Some("master"), "{}", set.report());
    assert_eq!(set.master(0).unwrap()["config-epoch"], "1");
    assert!(
        set.sentinel_log(0)
            .contains("+switch-master redis-ha 10.213.1.11 6379")
    );

    let new_addr = set.redis_addr(m);
    let old_addr = set.redis_addr(0);
    for s in 0..3 {
        let (v, _) = wait_view(&set, s, "the other replica follows the new master", |v| {
            v.replica(&set.redis_addr(other), "master") == new_addr
                && v.replica(&set.redis_addr(other), "link") == "ok"
        });
        assert_eq!(v.get("master"), new_addr, "{v}");
        assert_eq!(v.master_flags(), ["master"], "{v}");
        assert_eq!(v.get("master config-epoch"), "1", "{v}");
        let mut replicas = set.redis_addrs();
        replicas.remove(m);
        assert_eq!(v.replicas(), replicas, "{v}");
        // The old master, alive, still says it is master: listed as a replica that
        // follows nobody until a Sentinel converts it (about 10 s later; on a loaded
        // machine the wait above may already have outlasted that).
        match v.replica(&old_addr, "master") {
            "none" => assert_eq!(v.replica(&old_addr, "link"), "err", "{v}"),
            master => assert_eq!(master, new_addr, "old master follows a stranger\n{v}"),
        }
    }
    let old_role = set.role(0);
    assert!(
        matches!(old_role.as_deref(), Some("master") | Some("slave")),
        "{old_role:?}\n{}",
        set.report()
    );
    eprintln!("SENTINEL FAILOVER: all Sentinels name node {m} after {switched:?}");
}

#[test]
fn a_killed_master_is_flagged_down_replaced_and_reconverted_when_back() {
    let mut set = RedisSet::start(3);
    let t0 = Instant::now();
    set.kill_redis(0);

    // Sentinel 1 flags it subjectively down after down-after-milliseconds (1 s).
    let (v, _) = wait_view(&set, 1, "the master is s_down", |v| {
        v.master_flags().contains(&"s_down")
    });
    let sdown = t0.elapsed();
    // Not `disconnected` as well: while a reconnection attempt is pending Sentinel does
    // not flag the link (seen under load), as for the old master below.
    assert_eq!(v.get("master"), "10.213.1.11:6379", "{v}");

    // The Sentinels agree it is down and promote a replica.
    set.wait_new_master(0);
    let switched = t0.elapsed();
    assert!((0..3).all(|s| {
        set.sentinel_log(s)
            .contains("+sdown master redis-ha 10.213.1.11")
    }));
    assert!((0..3).any(|s| {
        set.sentinel_log(s)
            .contains("+odown master redis-ha 10.213.1.11")
    }));

    // Every Sentinel lists the dead old master as a replica that is down. Under load
    // the Sentinels may fail over once more (a replica slow to answer for 1 s): check
    // against the master they agree on by then, not the first one.
    let m = set.wait_new_master(0);
    for s in 0..3 {
        let (v, _) = wait_view(&set, s, "the old master is listed as a down replica", |v| {
            // Not mid-failover: the leader's view names the master only at its own
            // +switch-master (seen under CI load).
            v.try_get("replica 10.213.1.11:6379 flags")
                .is_some_and(|f| f.split(',').any(|x| x == "s_down"))
                && !v.master_flags().contains(&"failover_in_progress")
        });
        assert_ne!(v.get("master"), "10.213.1.11:6379", "{v}");
        assert!(
            v.get("master config-epoch").parse::<u64>().unwrap() >= 1,
            "{v}"
        );
        // Not `disconnected` as well: Sentinel tries to reconnect every second, and
        // while an attempt is pending it does not flag the link (seen under load).
        let old = "10.213.1.11:6379";
        assert_eq!(v.replica(old, "link"), "err", "{v}");
        assert_eq!(v.replica(old, "master"), "none", "{v}");
    }
    // Against the master this view names: one more failover under load may have swapped
    // the two (a missing line is "not yet", not a panic).
    let other_of = |v: &View| {
        let master = v.get("master").to_string();
        [set.redis_addr(1), set.redis_addr(2)]
            .into_iter()
            .find(|a| *a != master)
            .map(|o| (o, master))
    };
    let (v, _) = wait_view(&set, 0, "the other replica follows the new master", |v| {
        other_of(v).is_some_and(|(o, master)| {
            v.try_get(&format!("replica {o} master")) == Some(master.as_str())
                && v.try_get(&format!("replica {o} link")) == Some("ok")
        })
    });
    let (o, _) = other_of(&v).expect("two replicas");
    assert_eq!(v.replica_flags(&o), ["slave"], "{v}");

    // Restarted from its config file, the old master is master again, and Sentinels
    // list it as a healthy-looking replica (no s_down) that follows nobody.
    set.restart_redis(0);
    let t1 = Instant::now();
    assert_eq!(set.role(0).as_deref(), Some("master"));
    let (v, back) = wait_view(&set, m, "the old master is no longer s_down", |v| {
        v.replica_flags("10.213.1.11:6379") == ["slave"]
    });
    // Unless a Sentinel already converted it (a loaded machine may take that long).
    match v.replica("10.213.1.11:6379", "master") {
        "none" => assert_eq!(v.replica("10.213.1.11:6379", "link"), "err", "{v}"),
        // The new master, or the one a second failover under load made.
        master => assert!(
            [set.redis_addr(1), set.redis_addr(2)].contains(&master.to_string()),
            "follows a stranger\n{v}"
        ),
    }

    // A Sentinel converts it (8 to 10 s): REPLICAOF the new master, then CONFIG REWRITE,
    // so a second restart would come back as a replica.
    // Against the master the Sentinels name by then: under load (down-after is 1 s here)
    // they may have failed over once more meanwhile.
    set.wait_until(
        "the old master is a replica of the Sentinels' master, in its config too",
        |s| {
            s.master_seen_by(m)
                .filter(|&now| now != 0)
                .is_some_and(|now| {
                    s.role(0).as_deref() == Some("slave")
                        && s.info(0).contains(&format!("master_host:{}", s.ip(now)))
                        && s.redis_conf(0)
                            .contains(&format!("replicaof {} 6379", s.ip(now)))
                })
        },
    );
    let converted = t1.elapsed();
    let agreed = set.wait_agreed_within(Duration::from_secs(30));
    assert_ne!(agreed, 0, "{}", set.report());
    eprintln!(
        "kill: s_down {sdown:?}, all name node {m} {switched:?}; restart: \
         s_down gone {back:?}, converted {converted:?}, all healthy {:?}",
        t1.elapsed()
    );
}

#[test]
fn an_unknown_master_name_exits_2_naming_it() {
    let set = RedisSet::start(1);
    let (out, _) = sentinel_view(&set, &set.sentinel_addr(0), "nope", &[]);
    let out = out.expect(2);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr
            .contains("Sentinel 10.213.1.11:26379 does not monitor a master named \"nope\""),
        "{out}"
    );
}

#[test]
fn an_unreachable_sentinel_exits_1_within_the_timeout() {
    let set = RedisSet::start(1);

    // Nothing listens: refused at once.
    let (out, took) = sentinel_view(&set, "10.213.1.11:26380", MASTER_NAME, &[]);
    let out = out.expect(1);
    assert!(
        out.stderr.contains("unreachable") && out.stderr.contains("refused"),
        "{out}"
    );
    assert!(took < Duration::from_millis(500), "{took:?}\n{out}");

    // Nobody answers ARP: the connect times out.
    for (timeout, extra) in [(1000, &[][..]), (300, &["--timeout-ms", "300"][..])] {
        let (out, took) = sentinel_view(&set, "10.213.1.99:26379", MASTER_NAME, extra);
        let out = out.expect(1);
        assert!(
            out.stderr.contains("unreachable: no connection within"),
            "{out}"
        );
        let timeout = Duration::from_millis(timeout);
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(500),
            "{took:?}\n{out}"
        );
    }

    // A frozen Sentinel: the kernel accepts, nobody reads; the read times out.
    set.freeze_sentinel(0, true);
    let (out, took) = sentinel_view(&set, &set.sentinel_addr(0), MASTER_NAME, &[]);
    set.freeze_sentinel(0, false);
    let out = out.expect(1);
    assert!(
        out.stderr.contains("unreachable: no answer within 1s"),
        "{out}"
    );
    let timeout = Duration::from_secs(1);
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}\n{out}"
    );
    View::of(&set, 0); // thawed, it answers again
}

#[test]
fn a_wrong_or_missing_password_exits_2() {
    let set = RedisSet::start_with_password(1, "s3cret");
    let addr = set.sentinel_addr(0);
    let good = set.password_file().unwrap();
    let (out, _) = sentinel_view(
        &set,
        &addr,
        MASTER_NAME,
        &["--password-file", good.to_str().unwrap()],
    );
    let out = out.expect(0);
    assert!(out.stdout.contains("master: 10.213.1.11:6379\n"), "{out}");

    let wrong = good.with_file_name("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let (out, _) = sentinel_view(
        &set,
        &addr,
        MASTER_NAME,
        &["--password-file", wrong.to_str().unwrap()],
    );
    let out = out.expect(2);
    assert!(
        out.stderr
            .contains("refused our credentials: as the default user: WRONGPASS"),
        "{out}"
    );
    assert!(
        !out.stderr.contains("nope") && !out.stderr.contains("s3cret"),
        "{out}"
    );

    let (out, _) = sentinel_view(&set, &addr, MASTER_NAME, &[]);
    let out = out.expect(2);
    assert!(
        out.stderr.contains("refused our credentials: NOAUTH"),
        "{out}"
    );

    // A password for a Sentinel that wants none is a configuration error too.
    let open = RedisSet::start(1);
    let (out, _) = sentinel_view(
        &open,
        &open.sentinel_addr(0),
        MASTER_NAME,
        &["--password-file", good.to_str().unwrap()],
    );
    let out = out.expect(2);
    assert!(
        out.stderr.contains("without any password configured"),
        "{out}"
    );
}
