//! The helper as a Redis ACL user (README, "Redis ACL users"): with exactly the rules the
//! README documents, on real Redis servers and Sentinels that require ACL users, the sync,
//! its event watcher, `redis-ha status` and `redis-ha backup` work; every rule is needed
//! (without it, what needs it is refused with NOPERM); a wrong user fails and says whom
//! the helper tried to be.

use std::time::{Duration, Instant};

use crate::fixture::redis_set::{Acl, HELPER_USER, RedisSet};
use crate::sync::Setup;
use crate::util::{Run, run};

const ON_REDIS: &str = "# On Redis (";
const ON_SENTINEL: &str = "# On Sentinel (";

/// The rules the README documents for the helper's user: the line after the comment
/// line that starts with `heading`, without `user redis-ha on >PASSWORD`.
fn documented(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut lines = readme.lines().skip_while(|l| !l.starts_with(heading));
    assert!(lines.next().is_some(), "README.md has no line {heading:?}");
    let user = lines.next().unwrap_or_default();
    let prefix = format!("user {HELPER_USER} on >PASSWORD ");
    user.strip_prefix(&prefix)
        .unwrap_or_else(|| {
            panic!("README.md: after {heading:?}, expected {prefix:?}..., got {user:?}")
        })
        .to_string()
}

/// A set with the documented rules, and the helper configured as `redis_user` and
/// `sentinel_user`.
fn setup(tag: &str) -> Setup {
    let set = RedisSet::start_with_acl(
        3,
        Acl {
            redis_rules: documented(ON_REDIS),
            sentinel_rules: documented(ON_SENTINEL),
        },
    );
    let pass = set.helper_password_file();
    let extra = format!(
        "sentinel_user = {HELPER_USER}\nsentinel_password_file = {p}\n\
         redis_user = {HELPER_USER}\nredis_password_file = {p}\n",
        p = pass.display()
    );
    Setup::on(set, tag, &extra)
}

/// The setup's config with `from` replaced by `to`, in a file of its own.
fn config_with(s: &Setup, name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(s.dir.join("redis-ha.conf")).unwrap();
    assert!(text.contains(from), "{from:?} not in\n{text}");
    let path = s.dir.join(name);
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

fn backup(s: &Setup, config: &std::path::Path, from: &str, dir: &std::path::Path) -> Run {
    run(s
        .helper("redis-ha")
        .env("REDIS_HA_CONFIG", config)
        .args(["backup", "--from", from])
        .arg(dir))
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Waits up to `limit` until `path` contains `text`; returns the file.
fn wait_log(path: &std::path::Path, text: &str, limit: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return Ok(log);
        }
        if start.elapsed() > limit {
            return Err(log);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_backup_sync_and_events_work_with_exactly_the_documented_rules() {
    let s = setup("acl-works");
    let conf = s.dir.join("redis-ha.conf");
    // The default user cannot be used by accident: it is off on Redis, and has a password
    // the helper does not know on Sentinel.
    let off = s.set.cli(
        s.set.ip(0),
        6379,
        &["--user", "default", "--pass", "", "PING"],
    );
    assert!(!off.stdout.contains("PONG"), "{off}");

    s.sync().expect(0);
    s.cib.settle();
    assert_eq!(s.roles(), ["primary", "replica", "replica"]);

    let status = run(s.helper("redis-ha").arg("status")).expect(0);
    assert_eq!(
        status.stdout.matches("replica, link ok, lag ").count(),
        2,
        "{status}"
    );
    assert!(!status.stdout.contains("lag ?"), "{status}");

    let out_dir = s.dir.join("backups");
    std::fs::create_dir(&out_dir).unwrap();
    for from in ["primary", "replica"] {
        let out = backup(&s, &conf, from, &out_dir).expect(0);
        assert!(out.stdout.contains(&format!("from {from} ")), "{out}");
    }
    let written = files(&out_dir);
    assert_eq!(written.len(), 2, "{written:?}");
    for file in &written {
        let rdb = s.dir.join("check.rdb");
        let gunzip = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gzip -dc '{}' > '{}'",
                file.display(),
                rdb.display()
            ))
            .status()
            .unwrap();
        assert!(gunzip.success());
        run(std::process::Command::new("redis-check-rdb").arg(&rdb)).expect(0);
    }

    // The event watcher (PSUBSCRIBE, PING) as the same user: with a period far longer
    // than the test, only an event can move the roles after the failover.
    let mut s = s;
    let _watching = s.every("600s");
    std::thread::sleep(Duration::from_secs(2));
    s.set.kill_redis(0);
    s.set.wait_new_master(0);
    // The roles must follow the master the Sentinels name at the time, not the first one
    // named: the leader's `CLIENT KILL` at the promotion cuts the other Sentinels' links
    // to the new master, and with this fixture's 1 s down-after they can call it down
    // before they reconnect and fail over once more (CI, 2026-12-05: node3, then node2).
    let settled = |s: &Setup| {
        let roles = s.roles();
        let master = s.set.named_master().filter(|&m| m != 0);
        roles[0] == "fail" && master.is_some_and(|m| roles[m] == "primary")
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) && !settled(&s) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(s.dir.join("periodic.err")).unwrap_or_default();
    assert!(
        settled(&s),
        "roles 30 s after the failover: {:?}, the Sentinels' master {:?}\n{log}\n{}",
        s.roles(),
        s.set.named_master(),
        s.set.report()
    );
    assert!(log.contains("event: +"), "woken by an event\n{log}");
    assert!(!log.contains("not following"), "{log}");
}

#[test]
fn a_wrong_user_or_a_missing_rule_fails_and_says_why() {
    let s = setup("acl-refused");
    s.sync().expect(0);
    let out_dir = s.dir.join("backups");
    std::fs::create_dir(&out_dir).unwrap();
    let who = format!("redis_user = {HELPER_USER}");

    // A wrong Redis user: the backup fails naming it, the status says why it has no lag.
    let wrong_redis = config_with(&s, "wrong-redis.conf", &who, "redis_user = nobody");
    let out = backup(&s, &wrong_redis, "primary", &out_dir).expect(1);
    assert!(
        out.stderr
            .contains("refused our credentials (as user nobody): WRONGPASS"),
        "{out}"
    );
    let status = run(s
        .helper("redis-ha")
        .env("REDIS_HA_CONFIG", &wrong_redis)
        .arg("status"));
    assert!(status.stdout.contains("link ok, lag ?"), "{status}");
    assert!(
        status.stdout.contains("as user nobody: WRONGPASS"),
        "{status}"
    );

    // A wrong Sentinel user: a config error for the sync (exit 2: Sentinel gives up),
    // a failure for the backup, both naming the user.
    let wrong_sentinel = config_with(
        &s,
        "wrong-sentinel.conf",
        &format!("sentinel_user = {HELPER_USER}"),
        "sentinel_user = nobody",
    );
    let out = run(s
        .helper("redis-ha")
        .env("REDIS_HA_CONFIG", &wrong_sentinel)
        .arg("sync"))
    .expect(2);
    assert!(
        out.stderr
            .contains("refused our credentials: as user nobody: WRONGPASS"),
        "{out}"
    );
    let out = backup(&s, &wrong_sentinel, "primary", &out_dir).expect(1);
    assert!(out.stderr.contains("as user nobody: WRONGPASS"), "{out}");
    // The hidden sentinel-view: --user with --password-file, the same contract.
    let pass = s.set.helper_password_file();
    let view = |credentials: &[&str]| {
        let sentinel = s.set.sentinel_addr(1);
        let mut args = vec![
            "sentinel-view",
            "--sentinel",
            &sentinel,
            "--master",
            "redis-ha",
        ];
        args.extend_from_slice(credentials);
        run(s.set.ns().cmd(crate::util::bin()).args(args))
    };
    let pass = pass.to_str().unwrap();
    let out = view(&["--user", HELPER_USER, "--password-file", pass]).expect(0);
    assert!(out.stdout.contains("master config-epoch: "), "{out}");
    let out = view(&["--user", "nobody", "--password-file", pass]).expect(2);
    assert!(out.stderr.contains("as user nobody: WRONGPASS"), "{out}");
    let out = view(&["--user", HELPER_USER]).expect(2);
    assert!(out.stderr.contains("--password-file"), "{out}");
    assert!(files(&out_dir).is_empty(), "{:?}", files(&out_dir));

    // Every documented rule is needed: without it, what needs it is refused (NOPERM).
    let conf = s.dir.join("redis-ha.conf");
    let without = |rules: &str, rule: &str| -> String {
        let rest: Vec<&str> = rules.split_whitespace().filter(|r| *r != rule).collect();
        assert_eq!(
            rest.len() + 1,
            rules.split_whitespace().count(),
            "{rule} in {rules}"
        );
        rest.join(" ")
    };
    let (redis_rules, sentinel_rules) = (documented(ON_REDIS), documented(ON_SENTINEL));
    s.set
        .set_helper_rules(true, &without(&redis_rules, "+sync"));
    let out = backup(&s, &conf, "replica", &out_dir).expect(1);
    assert!(
        out.stderr.contains("refused SYNC to user redis-ha (NOPERM")
            && out.stderr.contains("give it +sync"),
        "{out}"
    );
    s.set
        .set_helper_rules(true, &without(&redis_rules, "+info"));
    let status = run(s.helper("redis-ha").arg("status"));
    assert!(
        status.stdout.contains("lag ?: ") && status.stdout.contains("NOPERM"),
        "{status}"
    );
    s.set.set_helper_rules(true, &redis_rules);
    for sub in ["master", "replicas", "sentinels", "myid"] {
        s.set.set_helper_rules(
            false,
            &without(&sentinel_rules, &format!("+sentinel|{sub}")),
        );
        let out = s.sync().expect(2);
        assert!(
            out.stderr.contains(&format!("'sentinel|{sub}'")) && out.stderr.contains("NOPERM"),
            "without +sentinel|{sub}\n{out}"
        );
    }
    s.set.set_helper_rules(false, &sentinel_rules);
    s.sync().expect(0);
    assert!(files(&out_dir).is_empty(), "{:?}", files(&out_dir));

    // The watcher: without +psubscribe (or the channel) it cannot subscribe; without +ping
    // its check after 10 s of silence is refused. Each time it says so and tries again.
    let log = s.dir.join("periodic.err");
    for (rule, within) in [
        ("+psubscribe", Duration::from_secs(5)),
        ("&*", Duration::from_secs(5)),
        ("+ping", Duration::from_secs(20)),
    ] {
        s.set
            .set_helper_rules(false, &without(&sentinel_rules, rule));
        let watching = s.every("600s");
        let text = wait_log(&log, "not following Sentinel", within)
            .unwrap_or_else(|log| panic!("without {rule}: still following\n{log}"));
        assert!(text.contains("NOPERM"), "without {rule}\n{text}");
        drop(watching);
    }
}

/// The Ansible role's ACL mode gives the helper's users the rules the README documents
/// (and the tests above prove): one source of truth, checked.
#[test]
fn the_roles_helper_rules_are_the_documented_ones() {
    let defaults = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/ansible/roles/redis_ha/defaults/main.yml"
    ))
    .unwrap();
    let default = |key: &str| -> String {
        let prefix = format!("{key}: ");
        let line = defaults
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key} in the role's defaults"));
        line.trim_matches('"').to_string()
    };
    assert_eq!(default("redis_ha_acl_helper_rules"), documented(ON_REDIS));
    assert_eq!(
        default("redis_ha_acl_helper_sentinel_rules"),
        documented(ON_SENTINEL)
    );
}
