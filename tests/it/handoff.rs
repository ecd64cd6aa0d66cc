//! Sentinel's scripts handing their events to the `redis-ha sync --every` service over its
//! socket, as under Debian's sandboxed Sentinel: the scripts run as user `redis` with no
//! way to the CIB (its directory is root's alone), the service as root does the sync and
//! the scripts exit as its sync did; without the service they sync themselves or say
//! that the service is missing; a stalled, trickling or foreign peer holds nothing.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};

use crate::sync::{Periodic, Setup};
use crate::util::{Run, run};

/// The uid and gid `setpriv` runs a script with, by name.
const REDIS: &str = "redis";

impl Setup {
    /// A setup whose CIB user `redis` cannot reach (its directory is root's, 0700), as
    /// under Debian's sandbox, where the scripts have no rights on the CIB.
    fn sandboxed(tag: &str) -> Self {
        let s = Setup::new(tag);
        let cib_dir = s.cib.path().parent().unwrap();
        std::fs::set_permissions(cib_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut query = s.as_user(REDIS, REDIS, "cibadmin");
        query.arg("--query");
        let out = run(&mut query);
        assert_ne!(out.code, 0, "user redis must not reach the CIB here\n{out}");
        s
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("sync.sock")
    }

    /// `program` (a persona of ours, or a tool on PATH) in the set's namespace as
    /// `user`:`group` with no other group, with the CIB's environment and our config.
    fn as_user(&self, user: &str, group: &str, program: &str) -> Command {
        let program: PathBuf = match program {
            "sentinel-notify" | "sentinel-reconfig" => self.dir.persona(program),
            tool => PathBuf::from(tool),
        };
        let mut cmd = self.set.ns().cmd("setpriv");
        cmd.envs(self.cib.env())
            .env("REDIS_HA_CONFIG", self.dir.join("redis-ha.conf"))
            .args([
                format!("--reuid={user}"),
                format!("--regid={group}"),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(program);
        cmd
    }

    /// `sentinel-notify +sdown …` as `user`:`group`.
    fn notify_as(&self, user: &str, group: &str) -> Run {
        let mut cmd = self.as_user(user, group, "sentinel-notify");
        cmd.args([
            "+sdown",
            "slave 10.213.9.9:6379 10.213.9.9 6379 @ redis-ha 1 2",
        ]);
        run(&mut cmd)
    }

    /// The service, once its socket is there; its first sync has set the roles.
    fn service(&self) -> Periodic {
        let service = self.every("600s");
        wait_for(
            &format!("the service's socket {}", self.socket().display()),
            || self.socket().exists() && self.service_log().contains("primary node1"),
        );
        service
    }

    fn service_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("periodic.err")).unwrap_or_default()
    }
}

/// Polls `done` every 20 ms; fails after 30 s (a bound for a hang, not a timing assert).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_script_without_cib_rights_is_handed_over_and_the_service_writes_the_role() {
    let s = Setup::sandboxed("handoff-role");
    let _service = s.service();
    assert_eq!(s.roles(), ["primary", "replica", "replica"]);
    let socket = std::fs::metadata(s.socket()).unwrap();
    assert_eq!(
        socket.permissions().mode() & 0o777,
        0o660,
        "the socket is root:redis 0660"
    );
    // A role gone wrong that no event announces: only a handed-over sync repairs it.
    s.cib.set_role("node2", Some("fail"));
    let out = s.notify_as(REDIS, REDIS).expect(0);
    assert!(
        out.stderr
            .contains("the sync service answered: epoch 0, primary node1"),
        "{out}"
    );
    assert!(out.stderr.contains("wrote node2=replica"), "{out}");
    assert!(!out.stderr.contains("syncing here"), "{out}");
    assert_eq!(s.roles(), ["primary", "replica", "replica"]);
    let log = s.service_log();
    assert!(
        log.contains("event: sentinel-notify +sdown slave 10.213.9.9:6379")
            && log.contains("(handed over): syncing now"),
        "the service says whose request it serves\n{log}"
    );
    // With the socket's directory read-only, as ProtectSystem=strict leaves /run for
    // Sentinel: connecting needs no write access to the file system.
    s.cib.set_role("node3", Some("fail"));
    let dir = s.dir.path().display().to_string();
    let mut cmd = s.set.ns().cmd("unshare");
    cmd.envs(s.cib.env())
        .env("REDIS_HA_CONFIG", s.dir.join("redis-ha.conf"))
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "mount --bind -o ro {dir} {dir}; ! touch {dir}/rw-test 2>/dev/null; \
             exec setpriv --reuid={REDIS} --regid={REDIS} --clear-groups -- \"$@\""
        ))
        .arg("sh")
        .arg(s.dir.persona("sentinel-notify"))
        .args([
            "+sdown",
            "slave 10.213.9.9:6379 10.213.9.9 6379 @ redis-ha 1 2",
        ]);
    let out = run(&mut cmd).expect(0);
    assert!(out.stderr.contains("wrote node3=replica"), "{out}");
    assert_eq!(s.roles(), ["primary", "replica", "replica"]);
}

/// Sentinel publishes an event at once and starts its scripts from its 100 ms timer: the
/// service's watcher hears it first and syncs. The script's hand-over of the same event is
/// answered by that sync, not by one more (at a failover each node's script would double
/// the syncs while the Sentinels elect their leader).
#[test]
fn a_scripts_event_the_service_heard_first_is_answered_without_another_sync() {
    let mut s = Setup::sandboxed("handoff-heard");
    let _service = s.service();
    // Its subscriptions are up once its first sync has named the Sentinels.
    wait_for("the service's first sync", || {
        s.service_log().contains("Sentinels reached")
    });
    std::thread::sleep(Duration::from_millis(500));
    s.set.kill_redis(2);
    let heard = "event: +sdown slave ";
    wait_for("the service to hear the replica's +sdown", || {
        s.service_log().contains(heard)
    });
    // Every Sentinel's `+sdown` of it heard and synced for: the log still for a second.
    let mut last = s.service_log();
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let now = s.service_log();
        if now != last {
            (last, still) = (now, Instant::now());
        }
    }
    let syncs = |log: &str| log.matches("Sentinels reached").count();
    let before = syncs(&last);
    let line = last.lines().find(|l| l.contains(heard)).unwrap();
    let event =
        &line[line.find(heard).unwrap() + "event: ".len()..line.find(" (Sentinel").unwrap()];
    let (name, description) = event.split_once(' ').unwrap();
    let mut notify = s.as_user(REDIS, REDIS, "sentinel-notify");
    notify.args([name, description]);
    let out = run(&mut notify).expect(0);
    assert!(out.stderr.contains("the sync service answered"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let log = s.service_log();
    assert_eq!(
        syncs(&log),
        before,
        "one more sync for an event the service had heard\n{log}"
    );
    // An event it did not hear (here, none happened) is synced for.
    s.notify_as(REDIS, REDIS).expect(0);
    assert!(s.service_log().contains("(handed over): syncing now"));
}

#[test]
fn the_scripts_exit_as_the_services_sync_did() {
    let s = Setup::sandboxed("handoff-exit");
    let _service = s.service();
    let conf = std::fs::read_to_string(s.dir.join("redis-ha.conf")).unwrap();
    // (case, the config the service reads at its next sync, quorum, exit, stderr)
    let table = [
        ("done", conf.clone(), true, 0, "no change"),
        (
            "no quorum: retry",
            conf.clone(),
            false,
            1,
            "no quorum: writing nothing (will retry)",
        ),
        (
            "an address mapped to no node: give up",
            conf.replace(
                &format!("node node1 = {}", s.set.ip(0)),
                "node node1 = 10.213.9.9",
            ),
            true,
            2,
            "some Redis addresses map to no single node",
        ),
    ];
    for (case, text, quorate, code, said) in table {
        std::fs::write(s.dir.join("redis-ha.conf"), text).unwrap();
        s.cib.set_quorum(quorate);
        let out = s.notify_as(REDIS, REDIS);
        assert_eq!(out.code, code, "{case}\n{out}");
        assert!(out.stderr.contains(said), "{case}\n{out}");
        assert!(
            out.stderr.contains("the sync service answered"),
            "{case}\n{out}"
        );
    }
}

#[test]
fn without_the_service_a_script_syncs_itself_or_names_what_is_missing() {
    let s = Setup::sandboxed("handoff-down");
    // Root, as the test clusters run Sentinel: the script syncs itself, as before.
    let out = run(s.helper("sentinel-reconfig").args([
        "redis-ha",
        "leader",
        "start",
        s.set.ip(1),
        "6379",
        s.set.ip(0),
        "6379",
    ]))
    .expect(0);
    assert!(
        out.stderr.contains("no sync service (cannot connect to"),
        "{out}"
    );
    assert!(out.stderr.contains("syncing here"), "{out}");
    assert_eq!(s.roles(), ["primary", "replica", "replica"]);
    // User redis without CIB rights: no socket at all, then a stale one nobody serves.
    s.cib.set_role("node2", Some("fail"));
    let stale = || {
        drop(std::os::unix::net::UnixListener::bind(s.socket()).unwrap());
    };
    for (case, make, errno) in [
        ("no socket", None, "ENOENT"),
        ("stale socket", Some(stale), "ECONNREFUSED"),
    ] {
        if let Some(make) = make {
            make();
            std::fs::set_permissions(s.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let out = s.notify_as(REDIS, REDIS).expect(1);
        for said in [
            &format!(
                "the redis-ha-sync service does not answer here (cannot connect to {}: {errno}",
                s.socket().display()
            ),
            "and this process cannot sync itself (cibadmin",
            "systemctl enable --now redis-ha-sync.service",
            "(will retry)",
        ] {
            assert!(out.stderr.contains(said), "{case}: {said}\n{out}");
        }
        assert_eq!(s.roles(), ["primary", "fail", "replica"], "{case}");
    }
}

#[test]
fn a_peer_of_a_foreign_uid_is_refused() {
    let s = Setup::sandboxed("handoff-foreign");
    let _service = s.service();
    s.cib.set_role("node2", Some("fail"));
    // In group redis, so the socket's mode lets it connect; its uid is not redis.
    let out = s.notify_as("nobody", REDIS).expect(2);
    assert!(
        out.stderr
            .contains("refused: uid 65534 may not ask for a sync (only root and redis)"),
        "{out}"
    );
    // Neither user nor group: the socket's mode stops it; it cannot sync itself either.
    let out = s.notify_as("nobody", "nogroup").expect(1);
    assert!(out.stderr.contains("EACCES"), "{out}");
    assert!(
        out.stderr
            .contains("the redis-ha-sync service does not answer here"),
        "{out}"
    );
    assert_eq!(
        s.roles(),
        ["primary", "fail", "replica"],
        "nothing was synced for them"
    );
    let log = s.service_log();
    assert!(
        log.contains("refused a sync request from pid") && log.contains("uid 65534"),
        "{log}"
    );
}

/// Whether the service has neither answered nor closed `stream` yet.
fn still_waiting(stream: &UnixStream) -> bool {
    let mut probe = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    recv(stream.as_raw_fd(), &mut probe, flags) == Err(Errno::EAGAIN)
}

/// Reads what the service sends until it closes (at most 30 s).
fn until_closed(stream: &mut UnixStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the service did not close a stalled connection within 30 s: {e}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_stalled_or_trickling_peer_does_not_hold_the_service() {
    let s = Setup::sandboxed("handoff-slow");
    let _service = s.service();
    // Connected, and never a whole line: one says nothing, one trickles a byte every
    // 100 ms, which must not buy it more time.
    let mut stalled = UnixStream::connect(s.socket()).unwrap();
    let socket = s.socket();
    let trickler = std::thread::spawn(move || trickle(&socket));
    // Meanwhile a malformed request gets its answer at once, while the stalled peer is
    // still connected (so that answer did not wait for the stalled one's deadline)...
    let mut bad = UnixStream::connect(s.socket()).unwrap();
    bad.write_all(b"hello\n").unwrap();
    let answer = until_closed(&mut bad);
    assert!(
        answer.starts_with("redis-ha-sync/1 give-up bad request: not a redis-ha-sync/1 line"),
        "{answer:?}"
    );
    assert!(
        still_waiting(&stalled),
        "the stalled peer was answered or closed before another request was answered"
    );
    // ... and a script is served.
    s.cib.set_role("node3", Some("fail"));
    let out = s.notify_as(REDIS, REDIS).expect(0);
    assert!(out.stderr.contains("wrote node3=replica"), "{out}");
    // Both slow peers are dropped at their deadline, with a word why.
    let said = until_closed(&mut stalled);
    assert!(
        said.contains("bad request: nothing whole within 2s"),
        "{said:?}"
    );
    let (sent, said) = trickler.join().unwrap();
    assert!(sent > 1, "the trickler sent {sent} bytes");
    assert!(
        said.contains("bad request: nothing whole within 2s"),
        "{said:?}"
    );
    let log = s.service_log();
    assert!(log.contains("dropped a sync request from pid"), "{log}");
}

/// A peer that sends `r` every 100 ms until the service stops it (at most 30 s): the
/// bytes it got through, and what the service said.
fn trickle(socket: &Path) -> (usize, String) {
    let mut stream = UnixStream::connect(socket).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while stream.write_all(b"r").is_ok() {
        sent += 1;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the service let a trickling peer hold its connection for 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
        // The service answers then closes: stop at its answer.
        if !still_waiting(&stream) {
            break;
        }
    }
    (sent, until_closed(&mut stream))
}

/// Not a test: figures for the README. `cargo test --release --test it -- --ignored
/// --nocapture handoff_latency`: a role gone wrong, repaired by `sentinel-notify`, from
/// the script's start to its exit (the role is written by then), handed over as user
/// `redis` and synced by the script itself as root, ROUNDS times each.
#[test]
#[ignore]
fn handoff_latency() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let s = Setup::sandboxed("handoff-bench");
    let time = |s: &Setup, as_redis: bool| {
        let mut figures = Vec::new();
        for i in 0..rounds {
            let node = ["node2", "node3"][i % 2];
            s.cib.set_role(node, Some("fail"));
            let start = Instant::now();
            let out = if as_redis {
                s.notify_as(REDIS, REDIS)
            } else {
                run(s.helper("sentinel-notify").args([
                    "+sdown",
                    "slave 10.213.9.9:6379 10.213.9.9 6379 @ redis-ha 1 2",
                ]))
            };
            figures.push(start.elapsed().as_secs_f64() * 1000.0);
            out.expect(0);
            assert_eq!(s.roles(), ["primary", "replica", "replica"]);
        }
        figures.sort_by(f64::total_cmp);
        figures
    };
    // The direct path first (no service: the socket is absent), then the hand-off, with
    // the service's isolation guard (a CIB query and iptables every 250 ms, as shipped)
    // and without it (the hand-off's own cost).
    run(s.helper("redis-ha").arg("sync")).expect(0);
    let direct = time(&s, false);
    let service = s.service();
    let handed = time(&s, true);
    drop(service);
    let conf = s.dir.join("redis-ha.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}guard = off\n")).unwrap();
    std::fs::remove_file(s.socket()).unwrap();
    let service = s.service();
    let unguarded = time(&s, true);
    drop(service);
    let p = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!("script start -> exit, the role written ({rounds} rounds each), ms:");
    println!("{:<40} {:>8} {:>8} {:>8}", "path", "p50", "p90", "max");
    for (name, v) in [
        ("direct (root, syncs itself)", &direct),
        ("handed over (redis -> service)", &handed),
        ("handed over, the service's guard off", &unguarded),
    ] {
        println!(
            "{name:<40} {:>8.1} {:>8.1} {:>8.1}",
            p(v, 0.5),
            p(v, 0.9),
            p(v, 1.0)
        );
    }
}
