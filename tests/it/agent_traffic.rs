//! The block agents against real iptables and a real Redis behind the REDIRECT: what a
//! client actually gets on the read and write ports, and what iptables lists, as Pacemaker
//! drives start, stop, monitor and validate-all.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::util::{
    AgentCall, Netns, Pair, Probe, Redis, Run, SERVER_V4, SERVER_V6, TempDir, bin, ping, run,
    run_ok, sock, write_script,
};

/// One block agent as data: the name it is installed under and the port it refuses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    pub(crate) name: &'static str,
    pub(crate) port: u16,
}

pub(crate) const READ: Kind = Kind {
    name: "RedisLBReadBlock",
    port: 6380,
};
pub(crate) const WRITE: Kind = Kind {
    name: "RedisLBWriteBlock",
    port: 6381,
};
pub(crate) const AGENTS: [Kind; 2] = [READ, WRITE];

/// The agents' default filter chain.
pub(crate) const CHAIN: &str = "REDIS-HA";

/// The host-wide lock every agent and `redis-ha ports` take, in our own run directory.
const HOST_LOCK: &str = "/run/redis-ha/host.lock";

/// Short enough to keep the DROP cases fast, long enough for a namespace on a busy host.
const DROP_WAIT: Duration = Duration::from_millis(400);

/// Parameters that are invalid everywhere, each naming the parameter it is about.
const BAD_PARAMS: [(&str, &str); 9] = [
    ("port", "0"),
    ("match", "bogus"),
    ("reject_with", "reset"),
    ("family", "inet"),
    ("chain", "INPUT"),
    ("chain", "A-CHAIN-NAME-LONGER-THAN-28-CHARS"),
    // Target names: `-j TRACE` would not jump to a chain of ours.
    ("chain", "TRACE"),
    ("chain", "MASQUERADE"),
    ("wait", "0"),
];

impl Kind {
    /// The comment tag on its rule (the agent's convention, spelled out literally here).
    pub(crate) fn tag(self) -> String {
        format!("redis-ha:{}:{}", self.name, self.port)
    }
}

/// A server namespace with Redis (and usually `redis-ha ports install`), and a client
/// namespace.
pub(crate) struct Node {
    pub(crate) pair: Pair,
    _redis: Redis,
    pub(crate) dir: TempDir,
}

impl Node {
    pub(crate) fn new(tag: &str) -> Self {
        Self::with_ports(tag, Some(&[]))
    }

    /// `ports`: the options for `redis-ha ports install`, or `None` for no REDIRECT at all
    /// (clients then only reach Redis on 6379).
    pub(crate) fn with_ports(tag: &str, ports: Option<&[&str]>) -> Self {
        let pair = Pair::new(tag);
        let redis = Redis::start(&pair.server);
        if let Some(options) = ports {
            run_ok(
                pair.server
                    .cmd(bin())
                    .args(["ports", "install"])
                    .args(options),
            );
        }
        Node {
            pair,
            _redis: redis,
            dir: TempDir::new(tag),
        }
    }

    pub(crate) fn server(&self) -> &Netns {
        &self.pair.server
    }

    pub(crate) fn rsctmp(&self) -> PathBuf {
        self.dir.join("rsctmp")
    }

    pub(crate) fn agent(&self, kind: Kind) -> AgentCall<'_> {
        AgentCall::new(self.server(), &self.dir.persona(kind.name), &self.rsctmp())
    }

    /// `program -S REDIS-HA` (e.g. `iptables`, `ip6tables-legacy`); empty when the chain
    /// does not exist, and only then.
    pub(crate) fn our_chain(&self, program: &str) -> String {
        let out = run(self.server().cmd(program).args(["-S", CHAIN]));
        if out.code == 0 {
            return out.stdout;
        }
        let table = run_ok(self.server().cmd(program).arg("-S"));
        assert!(
            !table.lines().any(|l| l == format!("-N {CHAIN}")),
            "{program} -S {CHAIN} failed although the chain exists\n{out}\n{table}"
        );
        String::new()
    }

    /// How many rules in our chain carry `kind`'s tag, as `program` lists them.
    pub(crate) fn tagged(&self, program: &str, kind: Kind) -> usize {
        let tag = kind.tag();
        self.our_chain(program)
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w.trim_matches('"') == tag))
            .count()
    }

    /// The jumps from INPUT to our chain, as `program -S INPUT` lists them.
    pub(crate) fn jumps(&self, program: &str) -> Vec<String> {
        run_ok(self.server().cmd(program).args(["-S", "INPUT"]))
            .lines()
            .filter(|l| l.ends_with(&format!("-j {CHAIN}")))
            .map(str::to_string)
            .collect()
    }

    /// iptables-save and ip6tables-save without comments and counters: the same text
    /// before and after means nothing changed.
    pub(crate) fn tables(&self) -> String {
        let mut text = String::new();
        for program in ["iptables-save", "ip6tables-save"] {
            for line in run_ok(&mut self.server().cmd(program)).lines() {
                if line.starts_with('#') {
                    continue;
                }
                let line = match line.split_once(" [") {
                    Some((chain, _)) if line.starts_with(':') => chain,
                    _ => line,
                };
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Asserts that neither our chain nor the jump from INPUT to it is left, in any family.
    pub(crate) fn assert_no_chain(&self, when: &str) {
        let tables = self.tables();
        assert!(
            !tables.lines().any(
                |l| l.starts_with(&format!(":{CHAIN} ")) || l.ends_with(&format!("-j {CHAIN}"))
            ),
            "{when}: chain {CHAIN} or the INPUT jump to it is left\n{tables}"
        );
    }

    /// Deletes `rule` (an `-A CHAIN ...` line of `iptables -S`) behind the agents' back.
    /// Through a shell, as an admin would paste it: `-S` quotes the comment.
    pub(crate) fn delete(&self, rule: &str) {
        let spec = rule.strip_prefix("-A ").expect("an -A line");
        run_ok(
            self.server()
                .cmd("sh")
                .args(["-c", &format!("iptables -D {spec}")]),
        );
    }

    /// (remote 6380, remote 6381, local 6380, local 6381) as clients see them.
    fn probes(&self) -> [Probe; 4] {
        [
            self.pair.client.probe(sock(SERVER_V4, 6380)),
            self.pair.client.probe(sock(SERVER_V4, 6381)),
            self.server().probe(sock("127.0.0.1", 6380)),
            self.server().probe(sock("127.0.0.1", 6381)),
        ]
    }

    /// Asserts that exactly the `blocked` ports are refused, remote and local.
    pub(crate) fn assert_blocked(&self, blocked: &[u16], when: &str) {
        let want = [6380, 6381, 6380, 6381].map(|port| {
            if blocked.contains(&port) {
                Probe::Refused
            } else {
                Probe::Pong
            }
        });
        assert_eq!(
            self.probes(),
            want,
            "{when}: (remote 6380, remote 6381, local 6380, local 6381)\n{}",
            self.tables()
        );
    }
}

/// The agent with these parameters (Pacemaker passes them to every action).
pub(crate) fn with_params<'a>(mut call: AgentCall<'a>, params: &[(&str, &str)]) -> AgentCall<'a> {
    for (name, value) in params {
        call = call.param(name, value);
    }
    call
}

/// Asserts the exit reason Pacemaker would show contains `want`.
pub(crate) fn assert_reason(out: &Run, want: &str) {
    assert!(
        out.exit_reason().is_some_and(|r| r.contains(want)),
        "exit reason should mention {want:?}\n{out}"
    );
}

/// A PATH without iptables: a directory holding only `nsenter`, which the harness itself
/// finds through that PATH (Command searches the child's PATH when it is set).
fn path_without_iptables(dir: &TempDir) -> String {
    let bin = dir.join("no-iptables");
    std::fs::create_dir_all(&bin).unwrap();
    let nsenter = bin.join("nsenter");
    if !nsenter.exists() {
        std::os::unix::fs::symlink("/usr/bin/nsenter", &nsenter).unwrap();
    }
    bin.display().to_string()
}

/// A PATH whose `iptables` and `ip6tables` are the legacy ones.
fn path_preferring_legacy(dir: &TempDir) -> String {
    let bin = dir.join("legacy-first");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["iptables", "ip6tables"] {
        let link = bin.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(format!("/usr/sbin/{name}-legacy"), &link).unwrap();
        }
    }
    format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display())
}

/// How a test makes iptables unavailable to the agent.
#[derive(Debug, Clone, Copy)]
enum Missing {
    /// No iptables on PATH.
    EmptyPath,
    /// ocf-tester's `OCF_TESTER_FAIL_HAVE_BINARY=1`.
    TesterFlag,
}

impl Missing {
    fn apply<'a>(self, call: AgentCall<'a>, dir: &TempDir) -> AgentCall<'a> {
        match self {
            Missing::EmptyPath => call.path(&path_without_iptables(dir)),
            Missing::TesterFlag => call.env("OCF_TESTER_FAIL_HAVE_BINARY", "1"),
        }
    }
}

#[test]
fn each_agent_refuses_only_its_port_with_a_reset_and_stop_reopens() {
    let node = Node::new("refuse");
    node.assert_blocked(&[], "before start");
    for kind in AGENTS {
        let agent = node.agent(kind);
        agent.run("start").expect(0);
        node.assert_blocked(&[kind.port], &format!("after {} start", kind.name));
        agent.run("monitor").expect(0);
        agent.run("stop").expect(0);
        node.assert_blocked(&[], &format!("after {} stop", kind.name));
        agent.run("monitor").expect(7);
    }
}

#[test]
fn start_resets_connections_opened_before_it_and_spares_the_other_port() {
    let node = Node::new("estab");
    for kind in AGENTS {
        let other = AGENTS.iter().find(|k| k.port != kind.port).unwrap().port;
        // (who, port, what its PING gets once the block is on)
        let clients = [
            (
                "remote",
                kind.port,
                &node.pair.client,
                SERVER_V4,
                Probe::Reset,
            ),
            ("local", kind.port, node.server(), "127.0.0.1", Probe::Reset),
            ("remote", other, &node.pair.client, SERVER_V4, Probe::Pong),
            ("local", other, node.server(), "127.0.0.1", Probe::Pong),
        ];
        let open: Vec<_> = clients
            .iter()
            .map(|&(who, port, ns, addr, _)| {
                let stream = ns
                    .connect(sock(addr, port))
                    .unwrap_or_else(|e| panic!("{who} client cannot connect to {port}: {e}"));
                let first = ping(stream.try_clone().unwrap());
                assert_eq!(first, Probe::Pong, "{who} client on {port} before start");
                stream
            })
            .collect();
        node.agent(kind).run("start").expect(0);
        for ((who, port, _, _, want), stream) in clients.iter().zip(open) {
            assert_eq!(
                ping(stream),
                *want,
                "{} started: PING from the {who} client on {port} over a connection opened \
                 before start\n{}",
                kind.name,
                node.tables()
            );
        }
        node.agent(kind).run("stop").expect(0);
    }
}

#[test]
fn double_start_and_stop_keep_one_rule_and_leave_no_chain_behind() {
    let node = Node::new("idem");
    for kind in AGENTS {
        for attempt in ["start", "second start"] {
            let out = node.agent(kind).run("start").expect(0);
            assert_eq!(
                node.tagged("iptables", kind),
                1,
                "{} after {attempt}\n{out}\n{}",
                kind.name,
                node.tables()
            );
        }
    }
    assert_eq!(node.jumps("iptables").len(), 1, "{}", node.tables());
    node.assert_blocked(&[6380, 6381], "both started twice");
    for (i, kind) in AGENTS.iter().enumerate() {
        for attempt in ["stop", "second stop"] {
            let out = node.agent(*kind).run("stop").expect(0);
            assert_eq!(
                node.tagged("iptables", *kind),
                0,
                "{} after {attempt}\n{out}\n{}",
                kind.name,
                node.tables()
            );
        }
        node.agent(*kind).run("monitor").expect(7);
        let still: Vec<u16> = AGENTS[i + 1..].iter().map(|k| k.port).collect();
        node.assert_blocked(&still, &format!("after {} stopped twice", kind.name));
    }
    node.assert_no_chain("after both agents stopped");
}

#[test]
fn monitor_tells_stopped_from_running_from_vanished_from_partial() {
    let node = Node::new("mon");
    for kind in AGENTS {
        let agent = node.agent(kind);
        agent.probe().expect(7);
        agent.run("monitor").expect(7);
        agent.run("start").expect(0);
        agent.probe().expect(0);
        agent.run("monitor").expect(0);

        let chain = node.our_chain("iptables");
        let rule = chain
            .lines()
            .find(|l| l.contains(&kind.tag()))
            .unwrap_or_else(|| panic!("no {} rule\n{chain}", kind.tag()));
        node.delete(rule);
        let out = agent.run("monitor").expect(1);
        assert_reason(&out, "no longer blocked");
        node.assert_blocked(&[], &format!("{} rule deleted", kind.name));

        agent.run("start").expect(0);
        agent.run("monitor").expect(0);
        let jumps = node.jumps("iptables");
        assert_eq!(jumps.len(), 1, "{}", node.tables());
        node.delete(&jumps[0]);
        let out = agent.run("monitor").expect(1);
        assert_reason(&out, "partly blocked");

        agent.run("stop").expect(0);
        agent.run("monitor").expect(7);
        node.assert_blocked(&[], &format!("{} stopped", kind.name));
    }
}

#[test]
fn missing_iptables_is_not_running_for_a_probe_and_not_installed_otherwise() {
    let node = Node::new("noipt");
    let before = node.tables();
    for kind in AGENTS {
        for missing in [Missing::EmptyPath, Missing::TesterFlag] {
            let call = || missing.apply(node.agent(kind), &node.dir);
            let out = call().probe().expect(7);
            assert_eq!(out.exit_reason(), None, "{out}");
            for action in ["monitor", "start"] {
                let out = call().run(action);
                assert_eq!(out.code, 5, "{} {action}, {missing:?}\n{out}", kind.name);
                assert_reason(&out, "not installed");
            }
            assert_eq!(
                node.tables(),
                before,
                "{} start with iptables missing ({missing:?}) changed the tables",
                kind.name
            );
            // What Pacemaker does after the failed start: stop, then probe once iptables is back.
            call().run("stop").expect(0);
            node.agent(kind).probe().expect(7);
            node.assert_blocked(&[], &format!("{} after {missing:?}", kind.name));
        }
    }
}

#[test]
fn twenty_parallel_starts_leave_one_rule_each_and_one_jump() {
    let node = Node::new("par");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let started: Vec<_> = (0..20)
            .map(|i| {
                let call = node.agent(AGENTS[i % 2]);
                s.spawn(move || call.run("start"))
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &runs {
        assert_eq!(out.code, 0, "parallel start\n{out}");
    }
    for kind in AGENTS {
        assert_eq!(
            node.tagged("iptables", kind),
            1,
            "{}\n{}",
            kind.name,
            node.tables()
        );
        node.agent(kind).run("monitor").expect(0);
    }
    assert_eq!(node.jumps("iptables").len(), 1, "{}", node.tables());
    node.assert_blocked(&[6380, 6381], "after 20 parallel starts");
}

#[test]
fn match_and_reject_variants_block_and_stop_reopens() {
    struct Variant {
        name: &'static str,
        /// `redis-ha ports install` options, `None` for no REDIRECT.
        ports: Option<&'static [&'static str]>,
        params: &'static [(&'static str, &'static str)],
        /// The port clients use.
        port: u16,
        blocked: Probe,
    }
    let table = [
        Variant {
            name: "match=mark",
            ports: Some(&["--mark"]),
            params: &[("match", "mark")],
            port: 6381,
            blocked: Probe::Refused,
        },
        Variant {
            name: "match=dport on Redis's own port, no REDIRECT",
            ports: None,
            params: &[("match", "dport"), ("port", "6379")],
            port: 6379,
            blocked: Probe::Refused,
        },
        Variant {
            name: "reject_with=icmp-port-unreachable",
            ports: Some(&[]),
            params: &[("reject_with", "icmp-port-unreachable")],
            port: 6381,
            blocked: Probe::Refused,
        },
        Variant {
            name: "reject_with=drop",
            ports: Some(&[]),
            params: &[("reject_with", "drop")],
            port: 6381,
            blocked: Probe::Silent,
        },
    ];
    for (i, v) in table.iter().enumerate() {
        let node = Node::with_ports(&format!("var{i}"), v.ports);
        let agent = with_params(node.agent(WRITE), v.params);
        let seen = || {
            [
                node.pair
                    .client
                    .probe_within(sock(SERVER_V4, v.port), DROP_WAIT),
                node.server()
                    .probe_within(sock("127.0.0.1", v.port), DROP_WAIT),
            ]
        };
        assert_eq!(
            seen(),
            [Probe::Pong, Probe::Pong],
            "{}: before start",
            v.name
        );
        agent.run("start").expect(0);
        agent.run("monitor").expect(0);
        assert_eq!(
            seen(),
            [v.blocked.clone(), v.blocked.clone()],
            "{}: (remote, local) after start\n{}",
            v.name,
            node.tables()
        );
        agent.run("stop").expect(0);
        assert_eq!(
            seen(),
            [Probe::Pong, Probe::Pong],
            "{}: after stop\n{}",
            v.name,
            node.tables()
        );
        agent.run("monitor").expect(7);
    }
}

#[test]
fn ipv6_is_blocked_exactly_where_the_family_says() {
    let node = Node::with_ports("v6", Some(&["--family", "both"]));
    let clients: [(&str, &Netns, &str); 4] = [
        ("remote ipv4", &node.pair.client, SERVER_V4),
        ("remote ipv6", &node.pair.client, SERVER_V6),
        ("local ipv4", node.server(), "127.0.0.1"),
        ("local ipv6", node.server(), "::1"),
    ];
    let seen = |port: u16| -> Vec<(&str, Probe)> {
        clients
            .iter()
            .map(|&(who, ns, addr)| (who, ns.probe(sock(addr, port))))
            .collect()
    };
    let expect = |pattern: [Probe; 4]| -> Vec<(&str, Probe)> {
        clients.iter().map(|c| c.0).zip(pattern).collect()
    };
    use Probe::{Pong, Refused};
    let table = [
        ("both", [Refused, Refused, Refused, Refused]),
        ("ipv6", [Pong, Refused, Pong, Refused]),
        ("ipv4", [Refused, Pong, Refused, Pong]),
    ];
    assert_eq!(seen(6381), expect([Pong, Pong, Pong, Pong]), "before start");
    for (family, blocked) in table {
        let agent = node.agent(WRITE).param("family", family);
        agent.run("start").expect(0);
        agent.run("monitor").expect(0);
        let dump = || format!("{}{}", node.tables(), node.our_chain("ip6tables"));
        assert_eq!(seen(6381), expect(blocked), "family={family}\n{}", dump());
        assert_eq!(
            seen(6380),
            expect([Pong, Pong, Pong, Pong]),
            "family={family}: the read port stays open\n{}",
            dump()
        );
        agent.run("stop").expect(0);
        assert_eq!(
            seen(6381),
            expect([Pong, Pong, Pong, Pong]),
            "family={family} stopped\n{}",
            dump()
        );
    }
}

#[test]
fn legacy_backend_by_parameter_or_by_path_blocks_in_the_legacy_tables() {
    for how in ["backend=legacy", "PATH with legacy iptables first"] {
        let node = Node::with_ports("legacy", Some(&["--backend", "legacy"]));
        let agent = match how {
            "backend=legacy" => node.agent(WRITE).param("backend", "legacy"),
            _ => node.agent(WRITE).path(&path_preferring_legacy(&node.dir)),
        };
        let dump = || {
            format!(
                "iptables-legacy-save:\n{}\niptables-nft-save:\n{}",
                node.server().dump("iptables-legacy-save"),
                node.server().dump("iptables-nft-save")
            )
        };
        // Never started: legacy reports the jump to a missing chain its own way.
        agent.probe().expect(7);
        agent.run("start").expect(0);
        agent.run("monitor").expect(0);
        assert_eq!(
            node.tagged("iptables-legacy", WRITE),
            1,
            "{how}\n{}",
            dump()
        );
        assert_eq!(node.our_chain("iptables-nft"), "", "{how}\n{}", dump());
        node.assert_blocked(&[6381], how);
        agent.run("stop").expect(0);
        assert_eq!(node.our_chain("iptables-legacy"), "", "{how}\n{}", dump());
        agent.run("monitor").expect(7);
        node.assert_blocked(&[], &format!("{how}, stopped"));
    }
}

#[test]
fn bad_parameters_are_not_configured_and_change_nothing() {
    let node = Node::new("bad");
    let before = node.tables();
    for kind in AGENTS {
        for (name, value) in BAD_PARAMS {
            for action in ["start", "validate-all"] {
                let out = node.agent(kind).param(name, value).run(action);
                assert_eq!(out.code, 6, "{} {action} {name}={value}\n{out}", kind.name);
                assert_reason(&out, &format!("invalid {name} {value:?}"));
            }
            assert_eq!(
                node.tables(),
                before,
                "{} start with {name}={value} changed the tables",
                kind.name
            );
        }
        node.agent(kind).run("validate-all").expect(0);
        node.agent(kind)
            .env("OCF_CHECK_LEVEL", "10")
            .run("validate-all")
            .expect(0);
        let out = node
            .agent(kind)
            .env("OCF_CHECK_LEVEL", "10")
            .path(&path_without_iptables(&node.dir))
            .run("validate-all")
            .expect(5);
        assert_reason(&out, "iptables");
        node.agent(kind).probe().expect(7);
    }
    node.assert_blocked(&[], "after every bad start");
}

#[test]
fn stop_with_now_invalid_parameters_still_reopens_the_port() {
    let node = Node::new("badstop");
    for kind in AGENTS {
        for (name, value) in BAD_PARAMS {
            node.agent(kind).run("start").expect(0);
            node.assert_blocked(&[kind.port], &format!("{} started", kind.name));
            let out = node.agent(kind).param(name, value).run("stop");
            assert_eq!(out.code, 0, "{} stop with {name}={value}\n{out}", kind.name);
            assert_eq!(
                node.tagged("iptables", kind),
                0,
                "{} stop with {name}={value}\n{}",
                kind.name,
                node.tables()
            );
            node.assert_blocked(&[], &format!("{} stop with {name}={value}", kind.name));
        }
    }
    node.assert_no_chain("after every stop with invalid parameters");
}

/// `kind`'s agent run as user nobody: a wrapper of the same file name (the name picks the
/// agent) that drops root with setpriv and execs the real link.
fn as_nobody(node: &Node, kind: Kind) -> PathBuf {
    let dir = node.dir.join("as-nobody");
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join(kind.name);
    let script = format!(
        "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups {} \"$@\"\n",
        node.dir.persona(kind.name).display()
    );
    write_script(&wrapper, &script);
    wrapper
}

#[test]
fn not_root_is_a_permission_error_and_changes_nothing() {
    let node = Node::new("nobody");
    for kind in AGENTS {
        // Per agent: the first one's start leaves iptables-nft's (empty) filter table behind.
        let before = node.tables();
        let nobody = || AgentCall::new(node.server(), &as_nobody(&node, kind), &node.rsctmp());
        // Never started: the root check comes before anything touches HA_RSCTMP.
        for (action, want) in [
            ("start", 4),
            ("monitor", 4),
            ("stop", 4),
            ("validate-all", 0),
        ] {
            let out = nobody().run(action);
            assert_eq!(out.code, want, "{} {action} as nobody\n{out}", kind.name);
            if want == 4 {
                assert_reason(&out, "root");
            }
        }
        assert_eq!(nobody().probe().code, 4, "{} probe as nobody", kind.name);
        assert!(
            !node.rsctmp().exists(),
            "runs as nobody created {}",
            node.rsctmp().display()
        );
        assert_eq!(node.tables(), before, "{} as nobody", kind.name);

        // Started by root: nobody can neither stop it nor pretend it did.
        node.agent(kind).run("start").expect(0);
        let started = node.tables();
        let out = nobody().run("stop").expect(4);
        assert_reason(&out, "root");
        assert_eq!(node.tables(), started, "{} stop as nobody", kind.name);
        node.agent(kind).run("monitor").expect(0);
        node.agent(kind).run("stop").expect(0);
        node.assert_no_chain(&format!("{} stopped by root", kind.name));
        std::fs::remove_dir_all(node.rsctmp()).unwrap();
    }
}

#[test]
fn start_gives_up_on_a_held_host_lock_with_a_reason_and_changes_nothing() {
    let node = Node::new("lock");
    let before = node.tables();
    // `redis-ha ports install` made it; a read-only descriptor is all flock needs.
    let file = File::open(HOST_LOCK).unwrap();
    // Held for about a second: every other test's agent waits on this lock too.
    let held = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    let started = Instant::now();
    let out = node
        .agent(WRITE)
        .env("OCF_RESKEY_CRM_meta_timeout", "2000")
        .run("start");
    let took = started.elapsed();
    drop(held);
    assert_eq!(out.code, 1, "start while the host lock is held\n{out}");
    assert_reason(&out, "lock");
    assert!(
        took < Duration::from_secs(2),
        "start took {took:?}, past its 2 s timeout\n{out}"
    );
    assert_eq!(
        node.tables(),
        before,
        "a start that got no lock changed the tables"
    );
    node.agent(WRITE).probe().expect(7);
    node.agent(WRITE).run("start").expect(0);
    node.assert_blocked(&[6381], "start once the lock is free");
}

/// How many times an iptables program ran during one monitor of `call`, traced by strace.
fn iptables_runs_in_monitor(node: &Node, call: AgentCall<'_>) -> usize {
    let log = node.dir.join("strace.log");
    let log_arg = log.display().to_string();
    let strace = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", &log_arg];
    call.wrapped(&strace).run("monitor").expect(0);
    let trace = std::fs::read_to_string(&log).unwrap();
    trace
        .lines()
        .filter(|l| l.contains("execve(") && l.contains("tables") && !l.contains("ENOENT"))
        .count()
}

#[test]
fn monitor_runs_no_iptables_while_the_ruleset_is_unchanged() {
    let node = Node::new("gen");
    let server = &node.pair.server;
    for kind in AGENTS {
        let runs = || iptables_runs_in_monitor(&node, node.agent(kind));
        node.agent(kind).run("start").expect(0);
        assert_eq!(
            runs(),
            2,
            "{}: first monitor checks rule and jump",
            kind.name
        );
        assert_eq!(runs(), 0, "{}: ruleset unchanged since", kind.name);
        // Any change to the ruleset, ours or not, sends the next monitor back to iptables.
        run_ok(server.cmd("iptables").args(["-N", "UNRELATED"]));
        assert_eq!(runs(), 2, "{}: after a change", kind.name);
        run_ok(server.cmd("iptables").args(["-X", "UNRELATED"]));
        // A change that removes our rule is seen at once.
        let chain = node.our_chain("iptables");
        let rule = chain.lines().find(|l| l.contains(&kind.tag())).unwrap();
        node.delete(rule);
        node.agent(kind).run("monitor").expect(1);
        node.agent(kind).run("stop").expect(0);
        node.agent(kind).probe().expect(7);
    }
    // The legacy backend has no generation: every monitor checks.
    let legacy = || node.agent(WRITE).param("backend", "legacy");
    legacy().run("start").expect(0);
    legacy().run("monitor").expect(0);
    assert_eq!(iptables_runs_in_monitor(&node, legacy()), 2, "legacy");
    legacy().run("stop").expect(0);
}

#[test]
fn a_verification_made_in_another_namespace_is_not_trusted() {
    // Same state directory, same nf_tables generation number, but a new namespace without
    // our rule: must not read as running.
    let dir = TempDir::new("otherns");
    let rsctmp = dir.join("rsctmp");
    let first = Netns::new("otherns-a");
    AgentCall::new(&first, &dir.persona(WRITE.name), &rsctmp)
        .run("start")
        .expect(0);
    AgentCall::new(&first, &dir.persona(WRITE.name), &rsctmp)
        .run("monitor")
        .expect(0);
    let seen = verified_generation(&rsctmp, WRITE);
    drop(first);
    let second = Netns::new("otherns-b");
    // The same ruleset transaction as that start (one each), with ReadBlock's rule: our
    // chain and jump, not our rule. Its own verification shows the generations agree.
    let other = dir.join("rsctmp-read");
    AgentCall::new(&second, &dir.persona(READ.name), &other)
        .run("start")
        .expect(0);
    AgentCall::new(&second, &dir.persona(READ.name), &other)
        .run("monitor")
        .expect(0);
    assert_eq!(
        verified_generation(&other, READ),
        seen,
        "both namespaces at the same generation, or this test proves nothing"
    );
    let out = AgentCall::new(&second, &dir.persona(WRITE.name), &rsctmp)
        .run("monitor")
        .expect(1);
    assert_reason(&out, "no longer blocked");
}

/// The nf_tables generation number of the last verification `kind` recorded in `rsctmp`
/// (`version=BOOT/NETNS/GENERATION` in its `.verified` file).
fn verified_generation(rsctmp: &std::path::Path, kind: Kind) -> String {
    let file = std::fs::read_dir(rsctmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("redis-ha-{}-", kind.name)) && name.ends_with(".verified")
        })
        .unwrap_or_else(|| panic!("no verification of {} in {}", kind.name, rsctmp.display()));
    let text = std::fs::read_to_string(&file).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap_or_else(|| panic!("{}: {text}", file.display()));
    version.rsplit('/').next().unwrap().to_string()
}
