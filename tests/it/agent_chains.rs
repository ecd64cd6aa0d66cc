//! `chain=` naming a chain that is not ours (issue 15, item 4): the agents never jump to,
//! fill or delete someone else's chain, and adopt the chains of earlier releases.

use crate::agent_traffic::{AGENTS, CHAIN, Kind, Node, READ, WRITE, assert_reason};
use crate::util::run_ok;

/// The marker rule our chains carry, as `iptables -S` lists it.
fn marker(chain: &str) -> String {
    format!("-A {chain} -m comment --comment \"redis-ha:chain\"")
}

impl Node {
    /// Runs `iptables ARGS` in the server namespace, as the host's admin would.
    fn iptables(&self, args: &[&str]) {
        run_ok(self.server().cmd("iptables").args(args));
    }
}

/// The host refuses 6381 in INPUT itself (what a node's own firewall might do), and
/// someone's chain FOREIGN accepts everything.
fn host_with_a_foreign_accept(tag: &str) -> Node {
    let node = Node::new(tag);
    node.iptables(&[
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctorigdstport",
        "6381",
        "--ctdir",
        "ORIGINAL",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    node.iptables(&["-N", "FOREIGN"]);
    node.iptables(&["-A", "FOREIGN", "-j", "ACCEPT"]);
    node
}

#[test]
fn start_into_someones_accepting_chain_is_not_configured_and_changes_nothing() {
    let node = host_with_a_foreign_accept("foreign");
    let before = node.tables();
    node.assert_blocked(&[6381], "the host's own INPUT rule");
    for kind in AGENTS {
        let agent = || node.agent(kind).param("chain", "FOREIGN");
        let out = agent().run("start").expect(6);
        assert_reason(&out, "chain FOREIGN is not one redis-ha created");
        assert_reason(&out, "-A FOREIGN -j ACCEPT");
        assert_eq!(
            node.tables(),
            before,
            "{} start changed the tables",
            kind.name
        );
        node.assert_blocked(
            &[6381],
            &format!("{} refused: INPUT still decides", kind.name),
        );
        for (action, check_level) in [("monitor", "0"), ("validate-all", "10")] {
            let out = agent()
                .env("OCF_CHECK_LEVEL", check_level)
                .run(action)
                .expect(6);
            assert_reason(&out, "chain FOREIGN is not one redis-ha created");
        }
        agent().probe().expect(6);
        agent().run("stop").expect(0);
        assert_eq!(
            node.tables(),
            before,
            "{} stop changed the tables",
            kind.name
        );
    }
}

#[test]
fn stop_without_start_leaves_someones_empty_chain_alone() {
    let node = Node::new("emptyforeign");
    node.iptables(&["-N", "FOREIGN"]);
    let before = node.tables();
    for kind in AGENTS {
        node.agent(kind)
            .param("chain", "FOREIGN")
            .run("stop")
            .expect(0);
        assert_eq!(
            node.tables(),
            before,
            "{} stop changed the tables",
            kind.name
        );
        // Nor is an empty chain of someone else's taken for ours.
        let out = node
            .agent(kind)
            .param("chain", "FOREIGN")
            .run("start")
            .expect(6);
        assert_reason(&out, "without our marker rule");
        assert_eq!(
            node.tables(),
            before,
            "{} start changed the tables",
            kind.name
        );
    }
}

#[test]
fn a_rule_someone_put_in_our_chain_keeps_no_jump_of_ours_and_refuses_starts() {
    let node = Node::new("ourchainforeign");
    node.agent(WRITE).run("start").expect(0);
    // Someone accepts a subnet in our chain: behind our jump at the top of INPUT, it
    // would bypass the host's own INPUT rules once our rule is gone.
    node.iptables(&["-A", CHAIN, "-s", "10.213.0.0/16", "-j", "ACCEPT"]);
    node.agent(WRITE).run("stop").expect(0);
    assert_eq!(
        node.jumps("iptables"),
        Vec::<String>::new(),
        "{}",
        node.tables()
    );
    assert_eq!(node.tagged("iptables", WRITE), 0, "{}", node.tables());
    let chain = node.our_chain("iptables");
    assert!(
        chain.contains("-A REDIS-HA -s 10.213.0.0/16 -j ACCEPT"),
        "their rule stays\n{chain}"
    );
    node.assert_blocked(&[], "stopped");

    let before = node.tables();
    for kind in AGENTS {
        let out = node.agent(kind).run("start").expect(6);
        assert_reason(&out, "chain REDIS-HA is not one redis-ha created");
        assert_reason(&out, "-A REDIS-HA -s 10.213.0.0/16 -j ACCEPT");
        assert_eq!(
            node.tables(),
            before,
            "{} start changed the tables",
            kind.name
        );
    }
}

#[test]
fn a_default_chain_created_by_someone_else_is_refused() {
    let node = Node::new("defaultforeign");
    node.iptables(&["-N", CHAIN]);
    node.iptables(&["-A", CHAIN, "-j", "ACCEPT"]);
    let before = node.tables();
    for kind in AGENTS {
        let out = node.agent(kind).run("start").expect(6);
        assert_reason(&out, "-A REDIS-HA -j ACCEPT");
        node.agent(kind).run("stop").expect(0);
        assert_eq!(node.tables(), before, "{}", kind.name);
    }
    node.assert_blocked(&[], "nothing of ours");
}

/// What an earlier release (no marker) left for `kind`: the chain, the jump, the rule.
fn earlier_release_block(node: &Node, kind: Kind, jump: bool) {
    if !node.tables().contains(&format!(":{CHAIN} ")) {
        node.iptables(&["-N", CHAIN]);
    }
    if jump {
        node.iptables(&[
            "-I",
            "INPUT",
            "1",
            "-m",
            "comment",
            "--comment",
            "redis-ha",
            "-j",
            CHAIN,
        ]);
    }
    let port = kind.port.to_string();
    let tag = kind.tag();
    node.iptables(&[
        "-A",
        CHAIN,
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctorigdstport",
        &port,
        "--ctdir",
        "ORIGINAL",
        "-m",
        "comment",
        "--comment",
        &tag,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
}

#[test]
fn an_earlier_releases_chain_is_adopted_and_marked() {
    let node = Node::new("adopt");
    earlier_release_block(&node, READ, true);
    node.assert_blocked(&[6380], "the earlier release's ReadBlock");
    node.agent(READ).run("monitor").expect(0);

    node.agent(WRITE).run("start").expect(0);
    let chain = node.our_chain("iptables");
    assert_eq!(
        chain.lines().nth(1),
        Some(marker(CHAIN).as_str()),
        "marked, first\n{chain}"
    );
    assert_eq!(node.jumps("iptables").len(), 1, "{}", node.tables());
    node.assert_blocked(&[6380, 6381], "adopted");
    for kind in AGENTS {
        node.agent(kind).run("monitor").expect(0);
    }
    for kind in AGENTS {
        node.agent(kind).run("stop").expect(0);
    }
    node.assert_no_chain("both stopped");
}

#[test]
fn an_earlier_releases_block_is_stopped_without_a_start_in_between() {
    for jump in [true, false] {
        let node = Node::new("upgradestop");
        earlier_release_block(&node, WRITE, jump);
        node.agent(WRITE).run("stop").expect(0);
        node.assert_no_chain(&format!("stopped (jump: {jump})"));
        node.assert_blocked(&[], "stopped");
    }
}
