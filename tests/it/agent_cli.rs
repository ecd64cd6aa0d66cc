//! The binary's personas and the OCF actions that touch no firewall: meta-data, usage,
//! unknown actions, the `redis-ha agent` path.

use std::process::Command;

use crate::util::{AgentCall, Netns, TempDir, bin, run, write_script};

#[test]
fn meta_data_is_exactly_the_shipped_file() {
    let dir = TempDir::new("md");
    for name in ["RedisLBReadBlock", "RedisLBWriteBlock"] {
        let shipped =
            std::fs::read_to_string(format!("{}/ocf/{name}.xml", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let out = run(Command::new(dir.persona(name)).arg("meta-data")).expect(0);
        assert_eq!(
            out.stdout, shipped,
            "{name} meta-data differs from ocf/{name}.xml"
        );
        assert_eq!(out.stderr, "", "{name} meta-data wrote to stderr");
        let via_cli = run(Command::new(bin()).args(["agent", name, "meta-data"])).expect(0);
        assert_eq!(via_cli.stdout, shipped, "redis-ha agent {name} meta-data");
    }
}

#[test]
fn unknown_actions_are_unimplemented_with_usage_and_a_reason() {
    let dir = TempDir::new("unknown");
    let ns = Netns::new("unknown");
    let agent = dir.persona("RedisLBWriteBlock");
    for action in ["promote", "demote", "notify", "reload", "bogus"] {
        let out = AgentCall::new(&ns, &agent, dir.path())
            .run(action)
            .expect(3);
        assert!(
            out.stderr.contains("usage: RedisLBWriteBlock"),
            "{action}\n{out}"
        );
        assert_eq!(
            out.exit_reason(),
            Some(format!("unsupported action \"{action}\"").as_str()),
            "{out}"
        );
        assert_eq!(out.stdout, "", "{action}: nothing on stdout\n{out}");
    }
    let none = run(&mut Command::new(&agent)).expect(3);
    assert!(none.stderr.contains("usage:"), "{none}");
}

#[test]
fn usage_and_help_succeed() {
    let dir = TempDir::new("usage");
    for action in ["usage", "help"] {
        let out = run(Command::new(dir.persona("RedisLBReadBlock")).arg(action)).expect(0);
        assert!(
            out.stdout
                .starts_with("usage: RedisLBReadBlock {start|stop|monitor"),
            "{out}"
        );
    }
}

#[test]
fn cli_persona_answers_under_any_other_name() {
    let dir = TempDir::new("cli");
    for name in ["redis-ha", "redis-ha-copy", "redislbwriteblock"] {
        let out = run(Command::new(dir.persona(name)).arg("--help")).expect(0);
        assert!(
            out.stdout.contains("Usage: redis-ha") || out.stdout.contains("Usage:"),
            "{name}\n{out}"
        );
        assert!(out.stdout.contains("ports"), "{name}\n{out}");
    }
    let bad = run(Command::new(bin()).args(["agent", "RedisLBBlock", "start"])).expect(2);
    assert!(bad.stderr.contains("RedisLBWriteBlock"), "{bad}");
}

/// An iptables that never returns is killed at the operation's deadline: Pacemaker's
/// own timeout (here 3 s) must find the agent already done, with a reason.
#[test]
fn a_hung_iptables_is_killed_at_the_operation_deadline() {
    let dir = TempDir::new("hung-iptables");
    let ns = Netns::new("hungipt");
    let bin_dir = dir.join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    for program in ["iptables", "iptables-nft", "iptables-legacy"] {
        write_script(&bin_dir.join(program), "#!/bin/sh\nexec sleep 60\n");
    }
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir.display());
    let agent = dir.persona("RedisLBWriteBlock");
    for action in ["start", "monitor", "stop"] {
        let started = std::time::Instant::now();
        let out = AgentCall::new(&ns, &agent, dir.path())
            .path(&path)
            .env("OCF_RESKEY_CRM_meta_timeout", "3000")
            .run(action)
            .expect(1);
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(3),
            "{action} took {took:?}, past Pacemaker's 3 s timeout\n{out}"
        );
        assert!(
            out.exit_reason().is_some_and(|r| r.contains("killed")),
            "{action}: the reason names the kill\n{out}"
        );
    }
}

/// With iptables gone from PATH after a start, stop cannot remove the rule and must not
/// say it did: it fails (Pacemaker then fences), the rule and the state file stay.
#[test]
fn stop_without_iptables_after_a_start_fails_and_keeps_the_rule() {
    let dir = TempDir::new("stop-no-iptables");
    let ns = Netns::new("stopnoipt");
    let agent = dir.persona("RedisLBWriteBlock");
    AgentCall::new(&ns, &agent, dir.path())
        .run("start")
        .expect(0);
    // Only what runs the agent in the namespace: no iptables.
    let empty = dir.join("no-iptables");
    std::fs::create_dir(&empty).unwrap();
    std::os::unix::fs::symlink("/usr/bin/nsenter", empty.join("nsenter")).unwrap();
    let out = AgentCall::new(&ns, &agent, dir.path())
        .path(empty.to_str().unwrap())
        .run("stop")
        .expect(5);
    assert!(
        out.exit_reason().is_some_and(|r| r.contains("iptables")),
        "{out}"
    );
    let rules = ns.dump("iptables-save");
    assert!(rules.contains("redis-ha:RedisLBWriteBlock:6381"), "{rules}");
    // With iptables back, stop removes it.
    AgentCall::new(&ns, &agent, dir.path())
        .run("stop")
        .expect(0);
    let rules = ns.dump("iptables-save");
    assert!(!rules.contains("redis-ha:RedisLBWriteBlock"), "{rules}");
}

/// Two resources of one agent on one port would share one rule: stopping either would
/// lift the other's block behind its back. The second start is refused as misconfigured
/// (6, naming the first), leaving no state file; the first keeps the port blocked.
#[test]
fn a_second_resource_of_one_agent_on_one_port_is_refused() {
    let dir = TempDir::new("same-port");
    let ns = Netns::new("sameport");
    let agent = dir.persona("RedisLBWriteBlock");
    let call = |instance: &str, port: &str| {
        AgentCall::new(&ns, &agent, dir.path())
            .instance(instance)
            .param("port", port)
    };
    call("wb1", "6381").run("start").expect(0);
    let second = call("wb2", "6381").run("start").expect(6);
    assert!(
        second
            .exit_reason()
            .is_some_and(|r| r.contains("6381") && r.contains("wb1")),
        "the reason names the port and the first resource\n{second}"
    );
    assert!(
        !dir.join("redis-ha-RedisLBWriteBlock-wb2.state").exists(),
        "the refused start left a state file"
    );
    call("wb2", "6381").run("monitor").expect(7);
    call("wb2", "6381").run("stop").expect(0);
    // The refused resource's stop lifted nothing: the first still blocks its port.
    call("wb1", "6381").run("monitor").expect(0);
    // On another port the second resource has a rule of its own.
    call("wb2", "7381").run("start").expect(0);
    call("wb1", "6381").run("stop").expect(0);
    call("wb2", "7381").run("monitor").expect(0);
    call("wb2", "7381").run("stop").expect(0);
}

/// A state file beside ours is another namespace's when its rule is not in force here
/// (agents in two network namespaces sharing HA_RSCTMP, as tests and containers do): each
/// blocks the port in its own ruleset, and one's stop lifts nothing of the other's.
#[test]
fn the_same_port_in_two_network_namespaces_is_two_blocks() {
    let dir = TempDir::new("two-netns");
    let (ns1, ns2) = (Netns::new("twons1"), Netns::new("twons2"));
    let agent = dir.persona("RedisLBReadBlock");
    let run = |ns: &Netns, instance: &str, action: &str| {
        AgentCall::new(ns, &agent, dir.path())
            .instance(instance)
            .param("port", "6380")
            .run(action)
    };
    run(&ns1, "rb1", "start").expect(0);
    run(&ns2, "rb2", "start").expect(0);
    run(&ns1, "rb1", "stop").expect(0);
    run(&ns2, "rb2", "monitor").expect(0);
    assert!(
        ns2.dump("iptables-save")
            .contains("redis-ha:RedisLBReadBlock")
    );
    assert!(
        !ns1.dump("iptables-save")
            .contains("redis-ha:RedisLBReadBlock")
    );
    run(&ns2, "rb2", "stop").expect(0);
    run(&ns2, "rb2", "monitor").expect(7);
}
