//! The block agents' start and stop as one `iptables-restore` transaction per address
//! family: what they run (traced), and what happens when someone else changes the table
//! between their read and their write, or the transaction is refused or hangs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agent_traffic::{AGENTS, CHAIN, Kind, Node, READ, WRITE, assert_reason, with_params};
use crate::util::{AgentCall, Run, run, run_ok, write_script};

/// One program the agent ran: the file executed and its arguments.
#[derive(Debug)]
struct Exec {
    path: String,
    args: Vec<String>,
}

impl Exec {
    fn is_restore(&self) -> bool {
        self.path.ends_with("-restore")
    }

    /// A listing of a table (`-S`).
    fn is_listing(&self) -> bool {
        self.args.iter().any(|a| a == "-S")
    }

    /// An iptables run that only reads: a listing (`-S`) or a check (`-C`).
    fn only_reads(&self) -> bool {
        (self.is_listing() || self.args.iter().any(|a| a == "-C"))
            && !self
                .args
                .iter()
                .any(|a| ["-A", "-I", "-D", "-N", "-X", "-F", "-R"].contains(&a.as_str()))
    }
}

/// The iptables programs (`*tables*`) that one action of `call` executed, traced by strace.
fn iptables_execs(node: &Node, call: AgentCall<'_>, action: &str) -> (Run, Vec<Exec>) {
    let log = node.dir.join("strace-txn.log");
    let log_arg = log.display().to_string();
    let strace = [
        "strace",
        "-f",
        "-qq",
        "-z",
        "-s",
        "512",
        "-e",
        "trace=execve",
        "-e",
        "signal=none",
        "-o",
        &log_arg,
    ];
    let out = call.wrapped(&strace).run(action);
    let trace = std::fs::read_to_string(&log).unwrap();
    let execs = trace
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("execve(\"")?.1;
            let (path, rest) = rest.split_once("\", [")?;
            let args = rest.split_once("], ")?.0;
            let args: Vec<String> = args
                .split(", ")
                .map(|a| a.trim_matches('"').to_string())
                .collect();
            Some(Exec {
                path: path.to_string(),
                args,
            })
        })
        .filter(|e| e.path.contains("tables"))
        .collect();
    (out, execs)
}

/// A directory to put first on PATH, holding a wrapper named like the restore program of
/// `backend` that runs `first` (shell) before the first restore only, counts every run in
/// `runs`, then hands over to the real program (or runs `instead` when given).
struct Wrapper {
    dir: PathBuf,
    runs: PathBuf,
}

impl Wrapper {
    fn new(node: &Node, name: &str, backend: &str, first: &str, instead: Option<&str>) -> Self {
        let dir = node.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let program = format!("iptables-{backend}-restore");
        let runs = dir.join("runs");
        let mark = dir.join("first-done");
        let then = instead.map_or(format!("exec /usr/sbin/{program} \"$@\""), str::to_string);
        write_script(
            &dir.join(&program),
            &format!(
                "#!/bin/sh\necho run >> {runs}\nif [ ! -e {mark} ]; then : > {mark}; {first}; fi\n{then}\n",
                runs = runs.display(),
                mark = mark.display(),
            ),
        );
        Wrapper { dir, runs }
    }

    fn path(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.dir.display())
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// The IPv4 iptables of a backend (`nft`, `legacy`).
fn lister(backend: &str) -> String {
    format!("iptables-{backend}")
}

#[test]
fn start_and_stop_each_run_one_restore_per_family_and_otherwise_only_read() {
    let table: [(&str, &str, &[&str]); 5] = [
        ("nft", "ipv4", &["iptables-nft"]),
        ("nft", "ipv6", &["ip6tables-nft"]),
        ("nft", "both", &["iptables-nft", "ip6tables-nft"]),
        ("legacy", "ipv4", &["iptables-legacy"]),
        ("legacy", "both", &["iptables-legacy", "ip6tables-legacy"]),
    ];
    for (backend, family, listers) in table {
        let node = Node::with_ports(
            &format!("txn-{backend}-{family}"),
            Some(&["--backend", backend, "--family", "both"]),
        );
        let call = || {
            with_params(
                node.agent(WRITE),
                &[("backend", backend), ("family", family)],
            )
        };
        let case = format!("backend={backend} family={family}");
        for (action, blocked) in [("start", true), ("stop", false)] {
            let (out, execs) = iptables_execs(&node, call(), action);
            assert_eq!(out.code, 0, "{case} {action}\n{out}");
            let restores = execs.iter().filter(|e| e.is_restore()).count();
            assert_eq!(restores, listers.len(), "{case} {action}: {execs:#?}");
            // Each table read once: a start's check of the chain and its transaction
            // decide from the same listing (the host lock keeps our own writers out).
            let listings = execs.iter().filter(|e| e.is_listing()).count();
            assert_eq!(listings, listers.len(), "{case} {action}: {execs:#?}");
            assert!(
                execs.iter().all(|e| e.is_restore() || e.only_reads()),
                "{case} {action}: a change outside the transaction: {execs:#?}"
            );
            for lister in listers {
                let rules = node.tagged(lister, WRITE);
                assert_eq!(rules, usize::from(blocked), "{case} {action} in {lister}");
                assert_eq!(
                    node.jumps(lister).len(),
                    usize::from(blocked),
                    "{case} {action}: jumps in {lister}"
                );
            }
            call().run("monitor").expect(if blocked { 0 } else { 7 });
        }
        node.assert_no_chain(&case);
        // Already in that state: nothing to write, no transaction at all.
        let (out, execs) = iptables_execs(&node, call(), "stop");
        assert_eq!(out.code, 0, "{case} second stop\n{out}");
        assert!(
            execs.iter().all(|e| e.only_reads()),
            "{case} second stop: {execs:#?}"
        );
    }
}

#[test]
fn start_when_the_chain_is_there_but_the_jump_is_not_adds_the_jump_and_rule_only() {
    let node = Node::with_ports("txn-nojump", Some(&["--family", "both"]));
    let write = || node.agent(WRITE).param("family", "both");
    write().run("start").expect(0);
    for program in ["iptables", "ip6tables"] {
        for jump in node.jumps(program) {
            let spec = jump.strip_prefix("-A ").unwrap();
            run_ok(
                node.server()
                    .cmd("sh")
                    .args(["-c", &format!("{program} -D {spec}")]),
            );
        }
    }
    write().run("monitor").expect(1);
    let read = || node.agent(READ).param("family", "both");
    let (out, execs) = iptables_execs(&node, read(), "start");
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(execs.iter().filter(|e| e.is_restore()).count(), 2);
    for program in ["iptables", "ip6tables"] {
        assert_eq!(node.jumps(program).len(), 1, "{program}\n{}", node.tables());
        assert_eq!(
            node.tagged(program, READ),
            1,
            "{program}\n{}",
            node.tables()
        );
        assert_eq!(
            node.tagged(program, WRITE),
            1,
            "{program}\n{}",
            node.tables()
        );
    }
    read().run("monitor").expect(0);
    write().run("monitor").expect(0);
    node.assert_blocked(
        &[6380, 6381],
        "both started, the jump put back by the second",
    );
    write().run("stop").expect(0);
    read().run("stop").expect(0);
    node.assert_no_chain("both stopped");
}

#[test]
fn stop_whose_rule_vanished_meanwhile_reads_again_and_reopens() {
    for backend in ["nft", "legacy"] {
        let node = Node::with_ports(
            &format!("txn-gone-{backend}"),
            Some(&["--backend", backend]),
        );
        let lister = lister(backend);
        let agent = || node.agent(WRITE).param("backend", backend);
        agent().run("start").expect(0);
        let chain = node.our_chain(&lister);
        let rule = chain
            .lines()
            .find(|l| l.contains(&WRITE.tag()))
            .unwrap_or_else(|| panic!("no rule after start\n{chain}"));
        // Deleted by someone else between the agent's read and its transaction.
        let spec = rule.strip_prefix("-A ").unwrap();
        let wrapper = Wrapper::new(&node, "gone", backend, &format!("{lister} -D {spec}"), None);
        let out = agent().path(&wrapper.path()).run("stop");
        assert_eq!(out.code, 0, "{backend}\n{out}");
        assert_eq!(
            wrapper.runs(),
            2,
            "{backend}: refused once, then applied\n{out}"
        );
        assert_eq!(node.our_chain(&lister), "", "{backend}\n{}", node.tables());
        assert!(
            node.jumps(&lister).is_empty(),
            "{backend}\n{}",
            node.tables()
        );
        agent().run("monitor").expect(7);
        node.assert_blocked(&[], &format!("{backend}: stopped after the race"));
    }
}

#[test]
fn start_when_the_chain_appeared_meanwhile_reads_again_and_blocks() {
    for backend in ["nft", "legacy"] {
        let node = Node::with_ports(&format!("txn-new-{backend}"), Some(&["--backend", backend]));
        let lister = lister(backend);
        let agent = || node.agent(WRITE).param("backend", backend);
        // Created as we create it: with our marker.
        let racer = format!(
            "{lister} -N {CHAIN} && {lister} -A {CHAIN} -m comment --comment redis-ha:chain"
        );
        let wrapper = Wrapper::new(&node, "new", backend, &racer, None);
        let out = agent().path(&wrapper.path()).run("start");
        assert_eq!(out.code, 0, "{backend}\n{out}");
        assert_eq!(
            wrapper.runs(),
            2,
            "{backend}: refused once, then applied\n{out}"
        );
        assert_eq!(
            node.tagged(&lister, WRITE),
            1,
            "{backend}\n{}",
            node.tables()
        );
        assert_eq!(node.jumps(&lister).len(), 1, "{backend}\n{}", node.tables());
        agent().run("monitor").expect(0);
        node.assert_blocked(&[6381], backend);
        agent().run("stop").expect(0);
    }
}

/// Someone else's chain of our name appears between our read and our write: the fresh
/// read after the refused transaction finds it is not ours, and start adds nothing to it.
#[test]
fn start_when_someone_elses_chain_appeared_meanwhile_is_refused() {
    for backend in ["nft", "legacy"] {
        let node = Node::with_ports(
            &format!("txn-alien-{backend}"),
            Some(&["--backend", backend]),
        );
        let lister = lister(backend);
        let wrapper = Wrapper::new(
            &node,
            "alien",
            backend,
            &format!("{lister} -N {CHAIN}"),
            None,
        );
        let out = node
            .agent(WRITE)
            .param("backend", backend)
            .path(&wrapper.path())
            .run("start");
        assert_eq!(out.code, 6, "{backend}\n{out}");
        assert_reason(&out, "without our marker rule");
        assert_eq!(
            wrapper.runs(),
            1,
            "{backend}: refused once, not retried\n{out}"
        );
        assert_eq!(
            run_ok(node.server().cmd(&lister).args(["-S", CHAIN])),
            format!("-N {CHAIN}\n"),
            "{backend}: left as they made it"
        );
        assert!(
            node.jumps(&lister).is_empty(),
            "{backend}\n{}",
            node.tables()
        );
        node.assert_blocked(&[], backend);
    }
}

#[test]
fn a_transaction_refused_twice_fails_the_action_with_iptables_words() {
    let node = Node::new("txn-refused");
    node.agent(WRITE).run("start").expect(0);
    // Refused whatever the script says, as iptables-restore says it.
    let refuse = "cat >/dev/null; echo 'iptables-restore: line 2 failed' >&2; exit 1";
    let wrapper = Wrapper::new(&node, "refuse", "nft", ":", Some(refuse));
    let out = node.agent(WRITE).path(&wrapper.path()).run("stop");
    assert_eq!(
        out.code, 1,
        "a stop that could not unblock must fail\n{out}"
    );
    assert_eq!(wrapper.runs(), 2, "read again and retried once\n{out}");
    assert_reason(&out, "iptables-nft-restore");
    assert_reason(&out, "line 2 failed");
    node.assert_blocked(&[6381], "the refused stop");
    node.agent(WRITE).run("stop").expect(0);
    node.assert_no_chain("stopped for real");
}

#[test]
fn a_hanging_transaction_is_killed_within_the_operation_timeout() {
    let node = Node::new("txn-hang");
    let wrapper = Wrapper::new(&node, "hang", "nft", ":", Some("exec sleep 30"));
    let started = Instant::now();
    let out = node
        .agent(WRITE)
        .path(&wrapper.path())
        .env("OCF_RESKEY_CRM_meta_timeout", "3000")
        .run("start");
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{out}");
    assert_reason(&out, "killed");
    assert!(took < Duration::from_secs(3), "start took {took:?}\n{out}");
    node.agent(WRITE).run("stop").expect(0);
    node.assert_blocked(&[], "stopped after the hung start");
}

/// The tables of a node with only these agents started, in order, one at a time.
fn sequential_ruleset(tag: &str, started: &[(Kind, &str)]) -> Vec<String> {
    let node = Node::with_ports(tag, Some(&["--family", "both"]));
    for (kind, family) in started {
        node.agent(*kind)
            .param("family", family)
            .run("start")
            .expect(0);
    }
    sorted(&node.tables())
}

fn sorted(tables: &str) -> Vec<String> {
    let mut lines: Vec<String> = tables.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn thirty_parallel_starts_then_thirty_stops_leave_exact_rulesets() {
    // ReadBlock on IPv4, WriteBlock on both families: transactions of both programs.
    let family = |kind: Kind| {
        if kind.port == WRITE.port {
            "both"
        } else {
            "ipv4"
        }
    };
    let node = Node::with_ports("txn-par", Some(&["--family", "both"]));
    // Once, so the (empty) filter tables iptables-nft creates on first use exist before.
    for kind in AGENTS {
        node.agent(kind)
            .param("family", family(kind))
            .run("start")
            .expect(0);
        node.agent(kind)
            .param("family", family(kind))
            .run("stop")
            .expect(0);
    }
    let before = node.tables();
    let want = sequential_ruleset("txn-seq", &[(READ, family(READ)), (WRITE, family(WRITE))]);
    for action in ["start", "stop"] {
        let runs: Vec<Run> = std::thread::scope(|s| {
            let started: Vec<_> = (0..30)
                .map(|i| {
                    let kind = AGENTS[i % 2];
                    let call = node.agent(kind).param("family", family(kind));
                    s.spawn(move || call.run(action))
                })
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for out in &runs {
            assert_eq!(out.code, 0, "parallel {action}\n{out}");
        }
        if action == "start" {
            assert_eq!(sorted(&node.tables()), want, "after 30 parallel starts");
            node.assert_blocked(&[6380, 6381], "after 30 parallel starts");
        } else {
            assert_eq!(node.tables(), before, "after 30 parallel stops");
            node.assert_blocked(&[], "after 30 parallel stops");
        }
    }
    // What a ruleset check would print of ours after all that: nothing.
    let out = run(node.server().cmd("iptables").args(["-S", CHAIN]));
    assert_ne!(out.code, 0, "{out}");
}

#[test]
fn stop_without_state_or_valid_parameters_lifts_every_rule_of_its_tag_in_one_go() {
    let node = Node::with_ports("txn-bytag", Some(&["--family", "both"]));
    let write = || node.agent(WRITE).param("family", "both");
    write().run("start").expect(0);
    // Another WriteBlock resource on another port (its own state file), and ReadBlock.
    node.agent(WRITE)
        .instance("other-write")
        .param("port", "7000")
        .run("start")
        .expect(0);
    node.agent(READ).run("start").expect(0);
    for entry in std::fs::read_dir(node.rsctmp()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(WRITE.name) {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (out, execs) = iptables_execs(&node, node.agent(WRITE).param("port", "0"), "stop");
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("removed 2 ipv4 rule(s)"), "{out}");
    assert!(out.stderr.contains("removed 1 ipv6 rule(s)"), "{out}");
    assert_eq!(
        execs.iter().filter(|e| e.is_restore()).count(),
        2,
        "{execs:#?}"
    );
    let v4 = node.our_chain("iptables");
    assert!(!v4.contains(WRITE.name), "{v4}");
    assert_eq!(node.tagged("iptables", READ), 1, "{v4}");
    assert_eq!(node.jumps("iptables").len(), 1, "{}", node.tables());
    assert_eq!(node.our_chain("ip6tables"), "", "{}", node.tables());
    assert!(node.jumps("ip6tables").is_empty(), "{}", node.tables());
    node.assert_blocked(&[6380], "ReadBlock's rule alone left");
    node.agent(READ).run("stop").expect(0);
    node.assert_no_chain("all stopped");
}
