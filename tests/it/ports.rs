//! `redis-ha ports install|check|remove`: the REDIRECTs that make 6380/6381 reach Redis.

use crate::util::{Netns, Probe, Redis, bin, run, sock};

/// `ports` subcommand inside `ns`.
fn ports(ns: &Netns, args: &[&str]) -> crate::util::Run {
    run(ns.cmd(bin()).arg("ports").args(args))
}

fn nat_and_mangle(ns: &Netns) -> String {
    let mut out = String::new();
    for table in ["nat", "mangle"] {
        out.push_str(&crate::util::run_ok(
            ns.cmd("iptables").args(["-t", table, "-S"]),
        ));
    }
    out
}

#[test]
fn install_is_idempotent_and_check_names_what_is_missing() {
    let ns = Netns::new("ports");
    let _redis = Redis::start(&ns);
    let check = ports(&ns, &["check"]).expect(1);
    assert!(check.stderr.contains("REDIS-HA-PRE"), "{check}");
    assert!(check.stderr.contains("redis-ha ports install"), "{check}");
    assert_eq!(
        ns.probe(sock("127.0.0.1", 6381)),
        Probe::Refused,
        "nothing listens on 6381 yet"
    );

    ports(&ns, &["install"]).expect(0);
    let first = nat_and_mangle(&ns);
    let again = ports(&ns, &["install"]).expect(0);
    assert!(
        !again.stdout.contains("added"),
        "second install changed something\n{again}"
    );
    assert_eq!(
        nat_and_mangle(&ns),
        first,
        "second install changed the tables"
    );
    ports(&ns, &["check"]).expect(0);
    for port in [6380, 6381] {
        assert_eq!(
            ns.probe(sock("127.0.0.1", port)),
            Probe::Pong,
            "local client on {port}"
        );
    }

    // A rule deleted behind our back is named by check and restored by install.
    crate::util::run_ok(ns.cmd("iptables").args(["-t", "nat", "-F", "REDIS-HA-OUT"]));
    let broken = ports(&ns, &["check"]).expect(1);
    assert!(
        broken
            .stderr
            .contains("REDIS-HA-OUT -o lo -p tcp --dport 6381"),
        "{broken}"
    );
    assert!(
        !broken.stderr.contains("REDIS-HA-PRE"),
        "only what is missing\n{broken}"
    );
    ports(&ns, &["install"]).expect(0);
    ports(&ns, &["check"]).expect(0);

    ports(&ns, &["remove"]).expect(0);
    let left = nat_and_mangle(&ns);
    assert!(
        !left.contains("REDIS-HA"),
        "remove left rules behind:\n{left}"
    );
    ports(&ns, &["remove"]).expect(0);
    ports(&ns, &["check"]).expect(1);
}

#[test]
fn changed_ports_replace_the_stale_rules() {
    let ns = Netns::new("portmove");
    let _redis = Redis::start(&ns);
    ports(&ns, &["install"]).expect(0);
    let moved = ports(&ns, &["install", "--write", "7381", "--mark"]).expect(0);
    assert!(moved.stdout.contains("removed stale"), "{moved}");
    let tables = nat_and_mangle(&ns);
    assert!(
        !tables.contains("--dport 6381"),
        "stale 6381 redirect left:\n{tables}"
    );
    assert!(
        tables.contains("redis-ha:mark:7381"),
        "mark rule missing:\n{tables}"
    );
    assert_eq!(ns.probe(sock("127.0.0.1", 7381)), Probe::Pong);
    assert_eq!(ns.probe(sock("127.0.0.1", 6381)), Probe::Refused);
    // Dropping --mark removes the mangle chain again.
    ports(&ns, &["install", "--write", "7381"]).expect(0);
    let unmarked = nat_and_mangle(&ns);
    assert!(!unmarked.contains("REDIS-HA-MARK"), "{unmarked}");
    ports(&ns, &["check", "--write", "7381"]).expect(0);
}

#[test]
fn bad_options_are_refused_before_anything_changes() {
    let ns = Netns::new("portbad");
    let before = nat_and_mangle(&ns);
    let table: [&[&str]; 4] = [
        &["install", "--read", "6379"],
        &["install", "--write", "0"],
        &["install", "--family", "inet"],
        &["install", "--backend", "xt"],
    ];
    for args in table {
        let out = ports(&ns, args);
        assert_ne!(out.code, 0, "{args:?}\n{out}");
        assert!(!out.stderr.is_empty(), "{args:?} gave no reason\n{out}");
    }
    assert_eq!(nat_and_mangle(&ns), before);
}

#[test]
fn legacy_backend_installs_checks_and_removes_in_its_own_tables() {
    let ns = Netns::new("portlegacy");
    let _redis = Redis::start(&ns);
    let args = |op: &'static str| [op, "--backend", "legacy", "--family", "both"];
    let missing = ports(&ns, &args("check")).expect(1);
    assert!(
        missing.stderr.contains("ipv6 -t nat -A REDIS-HA-PRE"),
        "{missing}"
    );
    ports(&ns, &args("install")).expect(0);
    ports(&ns, &args("check")).expect(0);
    let legacy = crate::util::run_ok(ns.cmd("iptables-legacy").args(["-t", "nat", "-S"]));
    assert!(legacy.contains("redis-ha:ports:6381:6379"), "{legacy}");
    assert!(
        !nat_and_mangle(&ns).contains("REDIS-HA"),
        "nft tables touched"
    );
    assert_eq!(
        ns.probe(sock("::1", 6381)),
        Probe::Pong,
        "IPv6 local client"
    );
    ports(&ns, &args("remove")).expect(0);
    ports(&ns, &args("check")).expect(1);
}

/// What redis-ha-ports.service runs at boot and at stop: `ports install` and `ports
/// remove` with the ports of redis-ha.conf (the ones the guard and the agents refuse).
#[test]
fn the_boot_unit_takes_the_ports_from_the_config_and_removes_whatever_it_says() {
    let ns = Netns::new("ports-conf");
    let _redis = Redis::start(&ns);
    let dir = crate::util::TempDir::new("ports-conf");
    let conf = dir.join("redis-ha.conf");
    std::fs::write(
        &conf,
        "master_name = m\nread_port = 7380\nwrite_port = 7381\nguard_match = mark\n",
    )
    .unwrap();
    let with_conf = |op: &str| {
        run(ns
            .cmd(bin())
            .args(["ports", op])
            .env("REDIS_HA_CONFIG", &conf))
    };
    let out = with_conf("install").expect(0);
    assert!(
        out.stdout
            .contains("7380 (read) and 7381 (write) -> 6379, packets marked with their port"),
        "{out}"
    );
    for port in [7380, 7381] {
        assert_eq!(ns.probe(sock("127.0.0.1", port)), Probe::Pong, "{port}");
    }
    assert_eq!(ns.probe(sock("127.0.0.1", 6381)), Probe::Refused);
    with_conf("check").expect(0);
    // A config broken meanwhile stops no removal (a unit's stop), but any other use.
    std::fs::write(&conf, "master_name = m\nread_port = x\n").unwrap();
    let out = with_conf("check").expect(1);
    assert!(
        out.stderr.contains("redis-ha.conf:2: invalid read_port"),
        "{out}"
    );
    with_conf("remove").expect(0);
    let tables = nat_and_mangle(&ns);
    assert!(!tables.contains("REDIS-HA"), "{tables}");
    // --config must exist; the default config may be missing (the defaults then).
    let out = run(ns
        .cmd(bin())
        .args(["ports", "check", "--config"])
        .arg(dir.join("nope")));
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("cannot read"), "{out}");
}

#[test]
fn install_closed_refuses_both_ports_with_the_guards_rules_unless_the_guard_is_off() {
    let ns = Netns::new("ports-closed");
    let _redis = Redis::start(&ns);
    let dir = crate::util::TempDir::new("ports-closed");
    let on = dir.join("on.conf");
    let off = dir.join("off.conf");
    std::fs::write(&on, "master_name = m\n").unwrap();
    std::fs::write(&off, "master_name = m\nguard = off\n").unwrap();

    let out = ports(
        &ns,
        &["install", "--closed", "--config", on.to_str().unwrap()],
    )
    .expect(0);
    assert!(out.stdout.contains("with the guard's rules"), "{out}");
    let filter = crate::util::run_ok(ns.cmd("iptables").args(["-S"]));
    for port in [6380, 6381] {
        assert!(
            filter.contains(&format!("redis-ha:guard:{port}")),
            "no guard rule for {port}\n{filter}"
        );
        assert_eq!(
            ns.probe(sock("127.0.0.1", port)),
            Probe::Refused,
            "local client on {port}, closed at boot"
        );
    }

    // Without a guard nothing would lift them: nothing is closed.
    let ns = Netns::new("ports-open");
    let _redis = Redis::start(&ns);
    let out = ports(
        &ns,
        &["install", "--closed", "--config", off.to_str().unwrap()],
    )
    .expect(0);
    assert!(out.stdout.contains("nothing refused"), "{out}");
    for port in [6380, 6381] {
        assert_eq!(
            ns.probe(sock("127.0.0.1", port)),
            Probe::Pong,
            "{port}, guard off"
        );
    }
}

/// A chain of our name that holds someone else's rule: install neither fills it nor
/// deletes their rule as "stale" (issue 15), and remove leaves it with their rule.
#[test]
fn install_refuses_a_chain_holding_someones_rule_and_remove_keeps_their_rule() {
    let ns = Netns::new("ports-foreign");
    let theirs = [
        "-p",
        "tcp",
        "--dport",
        "8080",
        "-j",
        "REDIRECT",
        "--to-ports",
        "80",
    ];
    crate::util::run_ok(ns.cmd("iptables").args(["-t", "nat", "-N", "REDIS-HA-PRE"]));
    crate::util::run_ok(
        ns.cmd("iptables")
            .args(["-t", "nat", "-A", "REDIS-HA-PRE"])
            .args(theirs),
    );
    let listed = "-A REDIS-HA-PRE -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80";
    let before = nat_and_mangle(&ns);
    let out = ports(&ns, &["install"]).expect(1);
    assert!(
        out.stderr
            .contains("chain nat/REDIS-HA-PRE is not one redis-ha created")
            && out.stderr.contains(listed),
        "{out}"
    );
    assert_eq!(
        nat_and_mangle(&ns),
        before,
        "a refused install changed the tables"
    );

    let out = ports(&ns, &["remove"]).expect(0);
    assert!(
        out.stdout
            .contains("left ipv4 chain nat/REDIS-HA-PRE in place"),
        "{out}"
    );
    assert!(nat_and_mangle(&ns).contains(listed), "their rule is gone");

    // Someone's empty chain of our name is not ours either.
    crate::util::run_ok(ns.cmd("iptables").args(["-t", "nat", "-F", "REDIS-HA-PRE"]));
    let out = ports(&ns, &["install"]).expect(1);
    assert!(out.stderr.contains("without our marker rule"), "{out}");
    ports(&ns, &["remove"]).expect(0);
    let left = nat_and_mangle(&ns);
    assert!(
        left.contains("-N REDIS-HA-PRE"),
        "their empty chain is gone\n{left}"
    );
}

/// Chains an earlier release installed (no marker) are adopted, not refused.
#[test]
fn install_adopts_the_chains_of_an_earlier_release() {
    let ns = Netns::new("ports-upgrade");
    let _redis = Redis::start(&ns);
    ports(&ns, &["install", "--mark"]).expect(0);
    // What an earlier release left: the same rules, without the markers.
    for (table, chain) in [
        ("nat", "REDIS-HA-PRE"),
        ("nat", "REDIS-HA-OUT"),
        ("mangle", "REDIS-HA-MARK"),
    ] {
        crate::util::run_ok(ns.cmd("iptables").args([
            "-t",
            table,
            "-D",
            chain,
            "-m",
            "comment",
            "--comment",
            "redis-ha:chain",
        ]));
    }
    assert!(!nat_and_mangle(&ns).contains("redis-ha:chain"));
    let out = ports(&ns, &["install", "--mark"]).expect(0);
    assert!(
        !out.stdout.contains("added") && !out.stdout.contains("removed"),
        "{out}"
    );
    assert_eq!(
        nat_and_mangle(&ns)
            .matches("--comment \"redis-ha:chain\"")
            .count(),
        3,
        "{}",
        nat_and_mangle(&ns)
    );
    assert_eq!(ns.probe(sock("127.0.0.1", 6381)), Probe::Pong);
    ports(&ns, &["remove"]).expect(0);
    assert!(
        !nat_and_mangle(&ns).contains("REDIS-HA"),
        "{}",
        nat_and_mangle(&ns)
    );
}

/// `install --closed` puts the guard's rules in the agents' chain: never in a `REDIS-HA`
/// that is someone else's.
#[test]
fn install_closed_refuses_someones_redis_ha_chain() {
    let ns = Netns::new("ports-closed-foreign");
    let dir = crate::util::TempDir::new("ports-closed-foreign");
    let conf = dir.join("on.conf");
    std::fs::write(&conf, "master_name = m\n").unwrap();
    crate::util::run_ok(ns.cmd("iptables").args(["-N", "REDIS-HA"]));
    crate::util::run_ok(ns.cmd("iptables").args(["-A", "REDIS-HA", "-j", "ACCEPT"]));
    let filter = || crate::util::run_ok(ns.cmd("iptables").args(["-S"]));
    let before = filter();
    let out = ports(
        &ns,
        &["install", "--closed", "--config", conf.to_str().unwrap()],
    )
    .expect(1);
    assert!(
        out.stderr
            .contains("chain REDIS-HA is not one redis-ha created")
            && out.stderr.contains("-A REDIS-HA -j ACCEPT"),
        "{out}"
    );
    assert_eq!(filter(), before, "the filter table changed");
}
