//! The Sentinel helper's entry points without any Sentinel: arguments, events that need
//! no sync, and config errors, with Sentinel's exit codes (0 done, 1 retry, 2 give up).

use std::process::Command;

use crate::util::{TempDir, run};

fn script(dir: &TempDir, name: &str, config: &str) -> Command {
    let mut cmd = Command::new(dir.persona(name));
    cmd.env("REDIS_HA_CONFIG", dir.join(config));
    cmd
}

#[test]
fn notify_ignores_events_that_cannot_change_roles() {
    let dir = TempDir::new("notify");
    for event in [
        "+reboot",
        "+convert-to-slave",
        "+slave-reconf-done",
        "+failover-end",
    ] {
        let out = run(script(&dir, "sentinel-notify", "missing.conf").args([event, "x"])).expect(0);
        assert_eq!(
            out.stderr, "",
            "{event} should exit at once, silently\n{out}"
        );
    }
}

#[test]
fn wrong_argument_counts_give_up() {
    let dir = TempDir::new("args");
    let table: [(&str, &[&str]); 4] = [
        ("sentinel-notify", &["+sdown"]),
        ("sentinel-notify", &["+sdown", "a", "b"]),
        ("sentinel-reconfig", &["redis-ha", "leader", "start"]),
        ("sentinel-reconfig", &[]),
    ];
    for (name, args) in table {
        let out = run(script(&dir, name, "missing.conf").args(args)).expect(2);
        assert!(out.stderr.contains("expected"), "{name} {args:?}\n{out}");
    }
}

#[test]
fn config_errors_give_up_and_name_the_file_and_line() {
    let dir = TempDir::new("badconf");
    std::fs::write(
        dir.join("bad.conf"),
        "master_name = redis-ha\nsentinels = 1.2.3.4:26379\n",
    )
    .unwrap();
    let args = [
        "redis-ha", "leader", "start", "10.0.0.1", "6379", "10.0.0.2", "6379",
    ];
    let out = run(script(&dir, "sentinel-reconfig", "bad.conf").args(args)).expect(2);
    assert!(
        out.stderr.contains("bad.conf:2: unknown key \"sentinels\""),
        "{out}"
    );
    let out = run(script(&dir, "sentinel-notify", "missing.conf")
        .args(["+odown", "master redis-ha 10.0.0.1 6379"]))
    .expect(2);
    assert!(out.stderr.contains("missing.conf: cannot read"), "{out}");
    let out = run(Command::new(crate::util::bin())
        .args(["sync", "--dry-run", "--config"])
        .arg(dir.join("bad.conf")))
    .expect(2);
    assert!(out.stderr.contains("bad.conf:2"), "{out}");
}

#[test]
fn reconfig_for_another_master_gives_up() {
    let dir = TempDir::new("othermaster");
    std::fs::write(dir.join("c.conf"), "master_name = redis-ha\n").unwrap();
    let args = [
        "cache", "leader", "start", "10.0.0.1", "6379", "10.0.0.2", "6379",
    ];
    let out = run(script(&dir, "sentinel-reconfig", "c.conf").args(args)).expect(2);
    assert!(out.stderr.contains("\"cache\""), "{out}");
}

/// Sentinel passes an event's description as it is: a newline in it must not make a log
/// line of its own.
#[test]
fn a_newline_in_sentinels_arguments_forges_no_log_line() {
    let dir = TempDir::new("forge");
    let out = run(script(&dir, "sentinel-notify", "missing.conf").args([
        "+odown",
        "master m 10.0.0.1 6379 #quorum 2/2\nERROR: forged line",
    ]))
    .expect(2);
    assert!(out.stderr.contains("\\nERROR: forged line"), "{out}");
    assert!(
        !out.stderr.lines().any(|l| l.starts_with("ERROR: forged")),
        "{out}"
    );
}
