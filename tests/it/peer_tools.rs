//! The installed agents judged by the tools the cluster stack ships: ocf-tester, the
//! meta-data schemas (xmllint), and Pacemaker's `crm_resource` (`--validate`, and
//! `--force-start/check/stop` on a `CIB_file`). These tools only find agents in the real
//! OCF root, so this needs `make install` (`make test` does it).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::User;

use crate::util::{Netns, Run, TempDir, installed_agent, run, run_ok, unique};

/// Each agent with its default port.
const AGENTS: [(&str, u16); 2] = [("RedisLBReadBlock", 6380), ("RedisLBWriteBlock", 6381)];

const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A PATH on which no iptables (nor anything else) can be found.
const NO_TOOLS: &str = "/nonexistent";

/// Where state files go when nobody sets `HA_RSCTMP`: neither ocf-tester nor
/// crm_resource does (ocf-directories' default, which the agent shares).
const DEFAULT_RSCTMP: &str = "/run/resource-agents";

/// The meta-data validators: ocf-tester's DTD, pcs's schema, resource-agents' schema.
const VALIDATORS: [(&str, &str); 3] = [
    ("--dtdvalid", "/usr/share/resource-agents/ra-api-1.dtd"),
    ("--relaxng", "/usr/share/pcs/data/ocf-1.1.rng"),
    ("--relaxng", "/usr/share/resource-agents/metadata.rng"),
];

/// The comment tag on an agent's rule.
fn tag(name: &str, port: u16) -> String {
    format!("redis-ha:{name}:{port}")
}

/// The state file an agent keeps for `instance` in the default `HA_RSCTMP`.
fn default_state_file(name: &str, instance: &str) -> PathBuf {
    Path::new(DEFAULT_RSCTMP).join(format!("redis-ha-{name}-{instance}.state"))
}

/// A state file the agent should remove itself; removed on drop should an assertion
/// fail first, so a failing test leaves nothing in the host's `/run/resource-agents`.
struct Tidy(PathBuf);

impl Drop for Tidy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// `program` inside `ns`, with an environment of PATH alone (what a clean root shell
/// would pass on, minus everything that could change the outcome).
fn clean(ns: &Netns, program: &str, path: &str) -> Command {
    let mut cmd = Command::new("/usr/bin/nsenter");
    cmd.arg(format!("--net=/run/netns/{}", ns.name()))
        .arg("--")
        .arg(program)
        .env_clear()
        .env("PATH", path);
    cmd
}

/// The namespace's filter table as `-S` lists it (all chains: `-S CHAIN` fails once the
/// agent has removed its chain).
fn filter_rules(ns: &Netns, program: &str) -> String {
    run_ok(ns.cmd(program).args(["-w", "5", "-S"]))
}

/// Runs `cmd` with `input` on its stdin.
fn run_with_input(cmd: &mut Command, input: &str) -> Run {
    let command = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    // Small enough for the pipe buffer: no writer thread needed.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from_output(command, Vec::new(), child.wait_with_output().unwrap())
}

/// xmllint with one validator on `doc`, from ocf-tester's directory so that the
/// DOCTYPE's relative `ra-api-1.dtd` resolves as it does there.
fn xmllint(flag: &str, schema: &str, doc: &str) -> Run {
    run_with_input(
        Command::new("xmllint")
            .args(["--noout", "--nonet", flag, schema, "-"])
            .current_dir("/usr/share/resource-agents"),
        doc,
    )
}

#[test]
fn ocf_tester_passes_both_agents_with_default_and_other_params() {
    let ns = Netns::new("ocft");
    let cwd = TempDir::new("ocft");
    let param_sets: [&[&str]; 2] = [&[], &["port=7000", "family=both"]];
    for (name, _) in AGENTS {
        let agent = installed_agent(name);
        for params in param_sets {
            let instance = unique("ocft");
            // ocf-tester sets no HA_RSCTMP and we pass none: the agent's default applies.
            let state = Tidy(default_state_file(name, &instance));
            let mut cmd = clean(&ns, "ocf-tester", PATH);
            cmd.current_dir(cwd.path()).args(["-n", &instance]);
            for p in params {
                cmd.args(["-o", p]);
            }
            let out = run(cmd.arg(&agent));
            let passed = format!("{} passed all tests", agent.display());
            assert!(
                out.code == 0 && out.stdout.contains(&passed) && !out.stdout.contains("* rc="),
                "ocf-tester {params:?} did not pass\n{out}"
            );
            assert!(
                !state.0.exists(),
                "{} left behind after ocf-tester {params:?}\n{out}",
                state.0.display()
            );
            for program in ["iptables", "ip6tables"] {
                let rules = filter_rules(&ns, program);
                assert!(
                    !rules.contains("redis-ha"),
                    "{program} rules left after ocf-tester {name} {params:?}:\n{rules}"
                );
            }
        }
    }
}

#[test]
fn meta_data_validates_against_the_dtd_and_both_schemas() {
    for (name, _) in AGENTS {
        let md = run(Command::new(installed_agent(name)).arg("meta-data")).expect(0);
        for (flag, schema) in VALIDATORS {
            let out = xmllint(flag, schema, &md.stdout);
            assert!(
                out.code == 0 && !out.stderr.contains("error") && !out.stderr.contains("warning"),
                "{name} meta-data fails {schema}\n{out}"
            );
            // The validator really validates: without <version> the document is invalid.
            let broken = md.stdout.replacen("<version>1.1</version>", "", 1);
            assert_ne!(
                broken, md.stdout,
                "{name} meta-data lacks <version>1.1</version>"
            );
            let out = xmllint(flag, schema, &broken);
            assert_ne!(
                out.code, 0,
                "{schema} accepts meta-data without <version>\n{out}"
            );
        }
    }
}

#[test]
fn meta_data_as_nobody_is_identical_and_writes_nothing() {
    let scratch = TempDir::new("nobody");
    let cwd = scratch.join("cwd");
    fs::create_dir(&cwd).unwrap();
    fs::set_permissions(&cwd, fs::Permissions::from_mode(0o777)).unwrap();
    let rsctmp = scratch.join("rsctmp");
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    let as_nobody = |program: &Path, arg: &str| {
        run(Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program)
            .arg(arg)
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", &cwd)
            .env("HA_RSCTMP", &rsctmp)
            // meta-data reads no parameters: a bad one changes nothing.
            .env("OCF_RESKEY_port", "0"))
    };
    let id = as_nobody(Path::new("/usr/bin/id"), "-u").expect(0);
    assert_eq!(id.stdout.trim(), nobody.uid.to_string(), "setpriv\n{id}");
    for (name, _) in AGENTS {
        let agent = installed_agent(name);
        let as_root = run(Command::new(&agent).arg("meta-data")).expect(0);
        let out = as_nobody(&agent, "meta-data").expect(0);
        assert!(
            out.stdout == as_root.stdout && out.stderr.is_empty(),
            "{name} meta-data as nobody differs from root's\n{out}"
        );
        assert!(
            !rsctmp.exists(),
            "meta-data created {}\n{out}",
            rsctmp.display()
        );
        let made: Vec<_> = fs::read_dir(&cwd).unwrap().collect();
        assert!(made.is_empty(), "meta-data wrote {made:?} into its cwd");
        // The host lock is the one other file the agent opens; root's agents create it.
        let lock = Path::new("/run/redis-ha/host.lock");
        if let Ok(meta) = fs::metadata(lock) {
            assert_ne!(
                meta.uid(),
                nobody.uid.as_raw(),
                "{} made by nobody",
                lock.display()
            );
        }
    }
}

#[test]
fn crm_resource_validate_relays_our_codes_and_reasons() {
    let ns = Netns::new("crmv");
    let cwd = TempDir::new("crmv");
    for (name, _) in AGENTS {
        let validate = |level: &str, path: &str, options: &[&str]| {
            let mut cmd = clean(&ns, "/usr/sbin/crm_resource", path);
            cmd.current_dir(cwd.path())
                .arg(format!("--validate={level}"))
                .args(["--class", "ocf", "--provider", "redis-ha", "--agent", name]);
            for o in options {
                cmd.args(["--option", o]);
            }
            run(&mut cmd)
        };
        let said = |out: &Run, what: &str| {
            let line = format!("Operation validate (ocf:redis-ha:{name}) returned {what}");
            assert!(out.stdout.contains(&line), "expected {line:?}\n{out}");
        };

        let out = validate("0", PATH, &[]).expect(0);
        said(&out, "0 (ok)");

        // crm_resource exits with the agent's code and shows its exit reason.
        let reason = "invalid port \"0\": expected a TCP port number from 1 to 65535";
        let out = validate("0", PATH, &["port=0"]).expect(6);
        said(&out, &format!("6 (not configured: {reason})"));
        assert!(
            out.stdout.contains(&format!("ocf-exit-reason:{reason}"))
                && out
                    .stderr
                    .contains("crm_resource: Error performing operation: Not configured"),
            "{out}"
        );

        // Level 0 checks parameters only; level 10 also looks for iptables.
        let out = validate("0", NO_TOOLS, &[]).expect(0);
        said(&out, "0 (ok)");
        let out = validate("10", NO_TOOLS, &[]).expect(5);
        said(
            &out,
            "5 (not installed: iptables is not installed (not found on PATH))",
        );
    }
}

#[test]
fn crm_resource_force_start_check_stop_on_a_cib_file() {
    let ns = Netns::new("crmf");
    let dir = TempDir::new("crmf");
    let cib = dir.join("cib.xml");
    let tool = |program: &str| {
        let mut cmd = Command::new(program);
        cmd.env("CIB_file", &cib).current_dir(dir.path());
        cmd
    };
    fs::write(&cib, run_ok(tool("cibadmin").arg("--empty"))).unwrap();
    run_ok(tool("crm_attribute").args([
        "--type",
        "crm_config",
        "--name",
        "stonith-enabled",
        "--update",
        "false",
    ]));
    for (name, port) in AGENTS {
        let id = unique("crmf");
        run_ok(
            tool("cibadmin")
                .args(["--create", "-o", "resources", "--xml-text"])
                .arg(format!(
                    r#"<primitive id="{id}" class="ocf" provider="redis-ha" type="{name}"/>"#
                )),
        );
        // crm_resource passes its own environment on and adds no HA_RSCTMP: with a
        // clean environment the state lands in the agent's default directory.
        let state = Tidy(default_state_file(name, &id));
        let force = |op: &str, path: &str| {
            run(clean(&ns, "/usr/sbin/crm_resource", path)
                .env("CIB_file", &cib)
                .current_dir(dir.path())
                .args(["-r", &id, &format!("--force-{op}")]))
        };
        let said = |out: &Run, op: &str, what: &str| {
            let line =
                format!("Operation force-{op} for {id} (ocf:redis-ha:{name}) returned {what}");
            assert!(out.stdout.contains(&line), "expected {line:?}\n{out}");
        };
        let tag = tag(name, port);
        let tagged = format!("--comment \"{tag}\"");

        let out = force("check", PATH).expect(7);
        said(&out, "check", "7 (not running)");

        let out = force("start", PATH).expect(0);
        said(&out, "start", "0 (ok)");
        let chain = run(ns.cmd("iptables").args(["-w", "5", "-S", "REDIS-HA"])).expect(0);
        assert!(
            chain.stdout.contains(&tagged),
            "no {tag} rule after start\n{chain}"
        );
        assert!(
            state.0.exists(),
            "no {} after start\n{out}",
            state.0.display()
        );

        let out = force("check", PATH).expect(0);
        said(&out, "check", "0 (ok)");

        let out = force("stop", PATH).expect(0);
        said(&out, "stop", "0 (ok)");
        let rules = filter_rules(&ns, "iptables");
        assert!(
            !rules.contains(&tag),
            "{tag} rule still there after stop:\n{rules}"
        );
        assert!(
            !state.0.exists(),
            "{} left after stop\n{out}",
            state.0.display()
        );

        let out = force("check", PATH).expect(7);
        said(&out, "check", "7 (not running)");

        // --force-check passes no OCF_RESKEY_CRM_meta_interval: a probe, which says "not
        // running" even without iptables, where a recurring monitor says "not installed".
        let out = force("check", NO_TOOLS).expect(7);
        said(&out, "check", "7 (not running)");
        let agent = installed_agent(name);
        run(clean(&ns, &agent.display().to_string(), NO_TOOLS)
            .env("OCF_RESKEY_CRM_meta_interval", "10000")
            .arg("monitor"))
        .expect(5);
    }
}
