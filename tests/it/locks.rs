//! The host lock and the sync lock: no local user may hold them (and so stall a stop into
//! fencing, or a sync for 20 s), nor plant a link that steers where root creates them.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent_traffic::{Node, WRITE};
use crate::util::{Run, TempDir, run, run_ok};

/// Where the agents' lock lives (`packaging/tmpfiles.d/redis-ha-ocf.conf`).
const HOST_LOCK: &str = "/run/redis-ha/host.lock";
/// Where the syncs' lock lives.
const SYNC_LOCK: &str = "/run/redis-ha/sync.lock";
/// Where both lived before: in the world-writable `/run/lock`, where anyone could hold them.
const OLD_HOST_LOCK: &str = "/run/lock/redis-ha.lock";
const OLD_SYNC_LOCK: &str = "/run/lock/redis-ha-sync.lock";

/// `setpriv` as another user with only that user's primary group.
fn as_user(user: &str, group: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={user}"),
        &format!("--regid={group}"),
        "--clear-groups",
        "--",
    ]);
    cmd
}

/// `flock -x PATH` held by `nobody` (the reported attack), killed on drop. Returns once
/// the lock is held: the holder says so on its stdout.
struct NobodyHolds {
    child: Child,
    created: bool,
    path: &'static str,
}

impl NobodyHolds {
    fn new(path: &'static str) -> Self {
        let created = !Path::new(path).exists();
        let mut held = NobodyHolds {
            child: as_user("nobody", "nogroup")
                .args(["flock", "-x", path, "sh", "-c", "echo held; exec sleep 60"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
            created,
            path,
        };
        let mut line = String::new();
        BufReader::new(held.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "held\n", "nobody could not hold {path}");
        held
    }
}

impl Drop for NobodyHolds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.created {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

/// `nobody` trying to take `path` the way the report did: it must not even open it.
fn assert_nobody_cannot_open(path: &str) {
    let out = run(as_user("nobody", "nogroup").args(["flock", "-x", "-w", "1", path, "true"]));
    assert_ne!(out.code, 0, "nobody took {path}\n{out}");
    assert!(
        out.stderr.contains("cannot open lock file"),
        "nobody's flock of {path} failed for another reason than opening it\n{out}"
    );
}

#[test]
fn no_other_user_stalls_a_stop_or_start_through_the_host_lock() {
    let node = Node::new("lockuser");
    node.agent(WRITE).run("start").expect(0);
    assert_nobody_cannot_open(HOST_LOCK);
    let _old = NobodyHolds::new(OLD_HOST_LOCK);
    for action in ["stop", "start"] {
        let started = Instant::now();
        let out = node
            .agent(WRITE)
            .env("OCF_RESKEY_CRM_meta_timeout", "2000")
            .run(action);
        let took = started.elapsed();
        assert_eq!(
            out.code, 0,
            "{action} while nobody holds {OLD_HOST_LOCK}\n{out}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{action} took {took:?} while nobody holds {OLD_HOST_LOCK}\n{out}"
        );
    }
    node.assert_blocked(&[6381], "start while nobody holds the old lock");
    node.agent(WRITE).run("stop").expect(0);
}

/// The agent run in a mount namespace of its own with a fresh /run, where `prepare` (a
/// shell line run as root first) may plant something; `after` runs once the agent is
/// done (its exit code is kept).
fn with_fresh_run(node: &Node, action: &str, prepare: &str, after: &str) -> Run {
    let script = format!(
        "mount -t tmpfs -o mode=0755 rha-run /run && {prepare} && {{ \"$@\"; rc=$?; {after}; exit $rc; }}"
    );
    node.agent(WRITE)
        .wrapped(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .run(action)
}

#[test]
fn root_makes_our_run_directory_when_missing_reachable_by_root_and_redis_only() {
    let node = Node::new("lockdir");
    let out = with_fresh_run(
        &node,
        "start",
        "true",
        &format!("stat -c 'mode %U:%G %a %n' /run/redis-ha {HOST_LOCK} >&2"),
    )
    .expect(0);
    assert!(
        out.stderr.contains("mode root:redis 750 /run/redis-ha\n"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("mode root:root 600 {HOST_LOCK}\n")),
        "{out}"
    );
}

#[test]
fn a_link_planted_at_a_lock_path_is_refused_not_followed() {
    let node = Node::new("locklink");
    let elsewhere = TempDir::new("lock-target");
    let target = elsewhere.join("made-by-root");
    // (what is planted, the path the refusal names)
    let rows = [
        (
            format!(
                "mkdir -m 0750 /run/redis-ha && ln -s {} {HOST_LOCK}",
                target.display()
            ),
            HOST_LOCK,
        ),
        (
            format!("ln -s {} /run/redis-ha", target.display()),
            "/run/redis-ha",
        ),
        (
            format!("ln -s {} /run/redis-ha", elsewhere.path().display()),
            "/run/redis-ha",
        ),
    ];
    for (plant, named) in rows {
        let out = with_fresh_run(&node, "start", &plant, "true");
        assert_eq!(out.code, 1, "start with `{plant}`\n{out}");
        let reason = out.exit_reason().unwrap_or_default();
        assert!(
            reason.contains(named) && reason.contains("symbolic link"),
            "start with `{plant}`: the reason must name {named} and the link\n{out}"
        );
        let made: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
        assert!(made.is_empty(), "start with `{plant}` made {made:?}\n{out}");
        node.agent(WRITE).probe().expect(7);
    }
}

/// A config whose sync gets past the lock and fails at the CIB (there is no cluster
/// here): Sentinel's scripts, run as `redis`, sync themselves when the service is absent.
fn sync_config(dir: &TempDir) -> std::path::PathBuf {
    let conf = dir.join("redis-ha.conf");
    std::fs::write(&conf, "master_name = redis-ha\nsentinel = 127.0.0.1:1\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    conf
}

/// The sync lock the package made (its tmpfiles.d, as postinst runs it) locks for
/// `redis`, at once even while someone holds the old lock, and for no other user.
#[test]
fn the_sync_lock_locks_for_redis_and_no_other_user() {
    let dir = TempDir::new("synclock");
    let conf = sync_config(&dir);
    let tmpfiles =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/tmpfiles.d/redis-ha-ocf.conf");
    run_ok(
        Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(&tmpfiles),
    );
    assert_nobody_cannot_open(SYNC_LOCK);
    let _old = NobodyHolds::new(OLD_SYNC_LOCK);
    let sync_as = |user: &str, group: &str| {
        let started = Instant::now();
        let out = run(as_user(user, group)
            .arg(dir.persona("redis-ha"))
            .args(["sync", "--config"])
            .arg(&conf));
        (out, started.elapsed())
    };
    let (out, took) = sync_as("redis", "redis");
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains("lock"), "{out}");
    assert!(out.stderr.contains("cibadmin --query failed"), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}\n{out}");
    let (out, _) = sync_as("nobody", "nogroup");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains(&format!("cannot open lock {SYNC_LOCK}"))
            && out.stderr.contains("Permission denied"),
        "{out}"
    );
}

/// Without the package (a fresh /run), the sync lock root's `redis-ha sync` makes locks
/// for `redis` too.
#[test]
fn a_sync_lock_root_made_locks_for_redis() {
    let dir = TempDir::new("synclock-root");
    let conf = sync_config(&dir);
    let sync = format!(
        "{} sync --config {}",
        dir.persona("redis-ha").display(),
        conf.display()
    );
    let script = format!(
        "mount -t tmpfs -o mode=0755 rha-run /run && {{ {sync}; echo \"== root $?\"; \
         setpriv --reuid=redis --regid=redis --clear-groups -- {sync}; echo \"== redis $?\"; \
         stat -c '%U:%G %a' {SYNC_LOCK}; }}"
    );
    let out = run(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    assert!(
        out.stdout
            .contains("== root 1\n== redis 1\nroot:redis 640\n"),
        "{out}"
    );
    assert_eq!(
        out.stderr.matches("cibadmin --query failed").count(),
        2,
        "root and redis both reach the CIB\n{out}"
    );
    assert!(!out.stderr.contains("lock"), "{out}");
}
