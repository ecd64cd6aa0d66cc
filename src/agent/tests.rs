//! The agents' decisions against a recording fake firewall. The real iptables behaviour
//! of the same cases is tested in `tests/it/agent_traffic.rs`.

use std::path::PathBuf;

use super::actions::Agent;
use super::params;
use super::state::StateFile;
use crate::blocks::AgentKind;
use crate::firewall::fake::FakeFirewall;
use crate::lock::LockFile;
use crate::ocf::{Logger, OcfCode, OcfEnv};
use crate::process::Process;

/// A scratch directory for state and lock files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("redis-ha-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(dir: &Scratch, vars: &[(&str, &str)]) -> OcfEnv {
    let mut all = vec![("HA_RSCTMP", dir.0.to_str().unwrap())];
    all.extend_from_slice(vars);
    OcfEnv::from_process(&Process::new(["agent"], all))
}

/// Runs `f` with an agent of `kind` whose parameters are `pairs`.
fn with_agent<R>(
    dir: &Scratch,
    fw: &FakeFirewall,
    env: &OcfEnv,
    pairs: &[(&str, &str)],
    is_root: bool,
    f: impl FnOnce(&Agent<'_, FakeFirewall>) -> R,
) -> R {
    let kind = AgentKind::Write;
    let log = Logger::from_process(&Process::default(), kind.name(), None);
    let agent = Agent {
        kind,
        env,
        log: &log,
        firewall: fw,
        params: params::parse(kind, |k| {
            pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        }),
        state: StateFile::new(&dir.0, kind, Some("w")),
        is_root,
        lock: LockFile::scratch(&dir.0, "lock"),
    };
    f(&agent)
}

fn code(outcome: Result<OcfCode, super::error::AgentError>) -> i32 {
    match outcome {
        Ok(c) => c.exit_code(),
        Err(e) => e.code().exit_code(),
    }
}

#[test]
fn lifecycle_start_monitor_stop() {
    let dir = Scratch::new("lifecycle");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[("OCF_RESKEY_CRM_meta_interval", "10000")]);
    let run = |f: &dyn Fn(&Agent<'_, FakeFirewall>) -> i32| with_agent(&dir, &fw, &e, &[], true, f);
    assert_eq!(run(&|a| code(a.monitor())), 7, "monitor before start");
    assert_eq!(run(&|a| code(a.start())), 0, "start");
    assert_eq!(run(&|a| code(a.start())), 0, "second start");
    assert_eq!(fw.blocks.borrow().len(), 1);
    assert_eq!(run(&|a| code(a.monitor())), 0, "monitor after start");
    assert_eq!(run(&|a| code(a.stop())), 0, "stop");
    assert_eq!(run(&|a| code(a.stop())), 0, "second stop");
    assert!(fw.blocks.borrow().is_empty());
    assert_eq!(run(&|a| code(a.monitor())), 7, "monitor after stop");
}

#[test]
fn monitor_fails_when_the_rule_vanished_behind_our_back() {
    let dir = Scratch::new("vanished");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[("OCF_RESKEY_CRM_meta_interval", "10000")]);
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    fw.blocks.borrow_mut().clear();
    assert_eq!(
        with_agent(&dir, &fw, &e, &[], true, |a| code(a.monitor())),
        1
    );
}

#[test]
fn iptables_failure_is_never_absent() {
    let dir = Scratch::new("broken");
    let fw = FakeFirewall {
        broken: true,
        ..Default::default()
    };
    let e = env(&dir, &[]);
    assert_eq!(
        with_agent(&dir, &fw, &e, &[], true, |a| code(a.monitor())),
        1
    );
}

#[test]
fn missing_iptables_is_not_running_for_a_probe_and_not_installed_otherwise() {
    let dir = Scratch::new("missing");
    let fw = FakeFirewall {
        missing: true,
        ..Default::default()
    };
    let probe = env(&dir, &[]);
    let recurring = env(&dir, &[("OCF_RESKEY_CRM_meta_interval", "10000")]);
    let level10 = env(&dir, &[("OCF_CHECK_LEVEL", "10")]);
    assert_eq!(
        with_agent(&dir, &fw, &probe, &[], true, |a| code(a.monitor())),
        7
    );
    assert_eq!(
        with_agent(&dir, &fw, &recurring, &[], true, |a| code(a.monitor())),
        5
    );
    assert_eq!(
        with_agent(&dir, &fw, &probe, &[], true, |a| code(a.start())),
        5
    );
    assert_eq!(
        with_agent(&dir, &fw, &probe, &[], true, |a| code(a.validate())),
        0
    );
    assert_eq!(
        with_agent(&dir, &fw, &level10, &[], true, |a| code(a.validate())),
        5
    );
    assert_eq!(
        with_agent(&dir, &fw, &probe, &[], true, |a| code(a.stop())),
        0
    );
}

#[test]
fn stop_fails_when_a_recorded_block_cannot_be_removed_for_lack_of_iptables() {
    let dir = Scratch::new("gone");
    let e = env(&dir, &[]);
    let fw = FakeFirewall::default();
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    // iptables gone from PATH: the rule start installed may still be in force.
    let gone = FakeFirewall {
        missing: true,
        ..Default::default()
    };
    assert_eq!(
        with_agent(&dir, &gone, &e, &[], true, |a| code(a.stop())),
        5
    );
    assert!(StateFile::new(&dir.0, AgentKind::Write, Some("w")).exists());
    assert_eq!(fw.blocks.borrow().len(), 1);
}

#[test]
fn stop_with_nothing_to_do_succeeds_where_no_state_can_be() {
    let dir = Scratch::new("nostate");
    let file = dir.0.join("a-file");
    std::fs::write(&file, "").unwrap();
    let long = "x".repeat(300);
    // (case, HA_RSCTMP, instance)
    let table = [
        ("HA_RSCTMP is a file", file.clone(), "w"),
        ("a name too long to exist", dir.0.clone(), long.as_str()),
    ];
    for (case, rsctmp, instance) in table {
        let fw = FakeFirewall::default();
        let e = env(&dir, &[]);
        let kind = AgentKind::Write;
        let log = Logger::from_process(&Process::default(), kind.name(), None);
        let agent = Agent {
            kind,
            env: &e,
            log: &log,
            firewall: &fw,
            params: params::parse(kind, |_| None),
            state: StateFile::new(&rsctmp, kind, Some(instance)),
            is_root: true,
            lock: LockFile::scratch(&dir.0, "lock"),
        };
        assert_eq!(code(agent.stop()), 0, "{case}");
    }
}

#[test]
fn bad_parameters_change_nothing() {
    let dir = Scratch::new("badparams");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[]);
    let bad = [("port", "99999")];
    assert_eq!(
        with_agent(&dir, &fw, &e, &bad, true, |a| code(a.validate())),
        6
    );
    assert_eq!(
        with_agent(&dir, &fw, &e, &bad, true, |a| code(a.start())),
        6
    );
    assert_eq!(
        with_agent(&dir, &fw, &e, &bad, true, |a| code(a.monitor())),
        6
    );
    assert!(fw.calls.borrow().is_empty(), "{:?}", fw.calls.borrow());
    assert!(!StateFile::new(&dir.0, AgentKind::Write, Some("w")).exists());
}

/// `chain=` naming a chain that is someone else's: start, monitor and a host-level
/// validate-all say so with 6 and change nothing; stop still succeeds.
#[test]
fn a_chain_that_is_not_ours_is_not_configured_and_changes_nothing() {
    let dir = Scratch::new("notours");
    let fw = FakeFirewall {
        not_ours: true,
        ..Default::default()
    };
    let e = env(&dir, &[]);
    let level10 = env(&dir, &[("OCF_CHECK_LEVEL", "10")]);
    let foreign = [("chain", "FOREIGN")];
    let run = |e: &OcfEnv, f: &dyn Fn(&Agent<'_, FakeFirewall>) -> i32| {
        with_agent(&dir, &fw, e, &foreign, true, f)
    };
    assert_eq!(run(&e, &|a| code(a.start())), 6, "start");
    assert!(!StateFile::new(&dir.0, AgentKind::Write, Some("w")).exists());
    assert_eq!(run(&e, &|a| code(a.monitor())), 6, "monitor");
    assert_eq!(run(&level10, &|a| code(a.validate())), 6, "validate-all 10");
    assert_eq!(
        run(&e, &|a| code(a.validate())),
        0,
        "validate-all 0: parameters only"
    );
    assert_eq!(fw.applies.get(), 0, "{:?}", fw.calls.borrow());
    assert_eq!(run(&e, &|a| code(a.stop())), 0, "stop");
    let reason = with_agent(&dir, &fw, &e, &foreign, true, |a| {
        a.start().unwrap_err().to_string()
    });
    assert!(
        reason.starts_with("chain FOREIGN is not one redis-ha created"),
        "{reason}"
    );
}

#[test]
fn stop_with_now_invalid_parameters_removes_what_start_installed() {
    let dir = Scratch::new("stopinvalid");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[]);
    let good = [("port", "7001")];
    assert_eq!(
        with_agent(&dir, &fw, &e, &good, true, |a| code(a.start())),
        0
    );
    assert_eq!(
        with_agent(&dir, &fw, &e, &[("port", "x")], true, |a| code(a.stop())),
        0
    );
    assert!(fw.blocks.borrow().is_empty());
}

#[test]
fn stop_without_state_or_valid_parameters_removes_by_tag() {
    let dir = Scratch::new("stoptag");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[]);
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    StateFile::new(&dir.0, AgentKind::Write, Some("w"))
        .remove()
        .unwrap();
    assert_eq!(
        with_agent(&dir, &fw, &e, &[("chain", "-")], true, |a| code(a.stop())),
        0
    );
    assert!(fw.blocks.borrow().is_empty());
    assert!(
        fw.calls
            .borrow()
            .iter()
            .any(|c| c.starts_with("remove_tagged REDIS-HA")),
        "{:?}",
        fw.calls.borrow()
    );
}

#[test]
fn start_with_changed_parameters_replaces_the_old_block() {
    let dir = Scratch::new("changed");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[]);
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    assert_eq!(
        with_agent(&dir, &fw, &e, &[("port", "7002")], true, |a| code(
            a.start()
        )),
        0
    );
    let ports: Vec<u16> = fw.blocks.borrow().iter().map(|b| b.port.get()).collect();
    assert_eq!(ports, [7002]);
}

#[test]
fn not_root_is_a_permission_error_and_changes_nothing() {
    let dir = Scratch::new("notroot");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[]);
    let results = [
        (
            "start",
            with_agent(&dir, &fw, &e, &[], false, |a| code(a.start())),
        ),
        (
            "stop",
            with_agent(&dir, &fw, &e, &[], false, |a| code(a.stop())),
        ),
        (
            "monitor",
            with_agent(&dir, &fw, &e, &[], false, |a| code(a.monitor())),
        ),
    ];
    for (name, got) in results {
        assert_eq!(got, 4, "{name}");
    }
    assert!(fw.calls.borrow().is_empty());
}

#[test]
fn monitor_skips_iptables_while_the_ruleset_generation_is_unchanged() {
    let dir = Scratch::new("generation");
    let fw = FakeFirewall::default();
    let e = env(&dir, &[("OCF_RESKEY_CRM_meta_interval", "10000")]);
    let monitor = || with_agent(&dir, &fw, &e, &[], true, |a| code(a.monitor()));
    let checks = || {
        fw.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("presence"))
            .count()
    };
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    fw.generation.set(Some(1));
    assert_eq!(monitor(), 0);
    assert_eq!(checks(), 1, "first monitor checks");
    assert_eq!(monitor(), 0);
    assert_eq!(checks(), 1, "same generation: no check");
    fw.generation.set(Some(2));
    assert_eq!(monitor(), 0);
    assert_eq!(checks(), 2, "new generation: checked again");
    fw.blocks.borrow_mut().clear();
    fw.generation.set(Some(3));
    assert_eq!(monitor(), 1, "the rule vanished with that change");
    fw.generation.set(None);
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    assert_eq!(monitor(), 0);
    assert_eq!(monitor(), 0);
    assert_eq!(checks(), 5, "no generation (legacy): every monitor checks");
}

#[test]
fn a_verification_does_not_outlive_stop_and_start() {
    let dir = Scratch::new("verified");
    let fw = FakeFirewall::default();
    fw.generation.set(Some(7));
    let e = env(&dir, &[("OCF_RESKEY_CRM_meta_interval", "10000")]);
    let monitor = || with_agent(&dir, &fw, &e, &[], true, |a| code(a.monitor()));
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.start())), 0);
    assert_eq!(monitor(), 0);
    assert_eq!(with_agent(&dir, &fw, &e, &[], true, |a| code(a.stop())), 0);
    // Even if the generation had not moved, a stopped block must not read as running.
    assert_eq!(monitor(), 7);
}

/// The meta-data against the parameters the code parses (`crate::blocks` holds both
/// agents' documents).
mod metadata {
    use crate::agent::params::parameter_defaults;
    use crate::blocks::AgentKind;
    use quick_xml::Reader;
    use quick_xml::events::Event;

    /// (parameter name, default attribute) in the order the meta-data lists them.
    fn metadata_parameters(xml: &str) -> Vec<(String, Option<String>)> {
        let mut reader = Reader::from_str(xml);
        let mut params = Vec::new();
        loop {
            match reader.read_event().expect("meta-data is well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |name: &str| {
                        e.try_get_attribute(name).unwrap().map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                    };
                    match e.name().as_ref() {
                        "parameter" => params.push((attr("name").unwrap(), None)),
                        "content" => params.last_mut().unwrap().1 = attr("default"),
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        params
    }

    #[test]
    fn metadata_documents_every_parameter_with_the_code_default() {
        for kind in AgentKind::ALL {
            let documented = metadata_parameters(kind.metadata());
            let coded: Vec<(String, Option<String>)> = parameter_defaults(kind)
                .into_iter()
                .map(|(n, d)| (n.to_string(), d))
                .collect();
            assert_eq!(documented, coded, "{}", kind.name());
            let header = format!(
                "<resource-agent name=\"{}\" version=\"{}\">",
                kind.name(),
                env!("CARGO_PKG_VERSION")
            );
            assert!(
                kind.metadata().contains(&header),
                "{} lacks {header}",
                kind.name()
            );
        }
    }

    #[test]
    fn agents_differ_only_by_name_port_and_prose() {
        let read = AgentKind::Read.metadata().lines().count();
        let write = AgentKind::Write.metadata().lines().count();
        assert_eq!(read, write);
        assert_ne!(
            AgentKind::Read.default_port(),
            AgentKind::Write.default_port()
        );
        assert_eq!(
            AgentKind::from_name("RedisLBReadBlock"),
            Some(AgentKind::Read)
        );
        assert_eq!(
            AgentKind::from_name("RedisLBWriteBlock"),
            Some(AgentKind::Write)
        );
        assert_eq!(AgentKind::from_name("RedisLBBlock"), None);
    }
}
