//! The parsers that read what other programs hand us, opened to the fuzz targets in
//! `fuzz/` (cargo feature `fuzzing`, never in a release build). Each entry takes raw
//! bytes the way the program receives them, runs the same parser the program runs, and
//! panics only where a parser broke its contract: a rejection must be a typed error with
//! a message, and what is accepted must hold what its type promises.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::agent;
use crate::blocks::AgentKind;
use crate::cluster;
use crate::config::{self, Config};
use crate::hooks::{NotifyArgs, ReconfigArgs};
use crate::ocf::{Action, OcfEnv};
use crate::process::Process;
use crate::sentinel::{self, Addr};

/// Inputs past this are cut: every parser here reads bounded input (the config, a
/// reply, a CIB through its own caps), and a fuzzer gains nothing from megabytes.
pub const MAX_INPUT: usize = 256 * 1024;

fn bounded(data: &[u8]) -> &[u8] {
    &data[..data.len().min(MAX_INPUT)]
}

/// A rejection, checked to say something.
fn rejected(message: String) -> Result<(), String> {
    assert!(!message.trim().is_empty(), "a rejection without a message");
    Err(message)
}

/// `redis-ha.conf` as `Config::load` reads it: at most `MAX_CONFIG_BYTES` of UTF-8.
pub fn config(data: &[u8]) -> Result<(), String> {
    let data = &data[..data.len().min(config::MAX_CONFIG_BYTES as usize)];
    let Ok(text) = std::str::from_utf8(data) else {
        return Err("not UTF-8 (load refuses it before parsing)".into());
    };
    match Config::parse(text, "fuzz.conf") {
        Err(e) => {
            if let config::ConfigError::Line { line, .. } = &e {
                assert!(
                    (1..=text.lines().count()).contains(line),
                    "{e}: no such line"
                );
            }
            rejected(e.to_string())
        }
        Ok(c) => {
            assert!(!c.master_name.is_empty());
            assert!(!c.sentinels.is_empty(), "no Sentinel to ask");
            for s in &c.sentinels {
                assert!(!s.host.is_empty() && s.port != 0, "sentinel {s:?} accepted");
            }
            for (node, addrs) in &c.nodes {
                for a in addrs {
                    assert!(!a.is_empty(), "node {node} mapped to an empty address");
                }
            }
            assert!((1..=60_000).contains(&c.timeout.as_millis()));
            assert!((1..=60_000).contains(&c.block_wait.as_millis()));
            Ok(())
        }
    }
}

/// The bytes a Sentinel sends back for `SENTINEL MASTER`, `SENTINEL REPLICAS` and
/// `SENTINEL SENTINELS` in one round trip: framed reply by reply as the wire reads them,
/// then read into one view. Also checks the framing the wire relies on: a reply cut
/// short anywhere is "incomplete", never an error nor another reply.
pub fn sentinel_replies(data: &[u8]) -> Result<(), String> {
    let data = bounded(data);
    let sentinel = Addr {
        host: "127.0.0.1".into(),
        port: sentinel::SENTINEL_PORT,
    };
    // MASTER, REPLICAS, SENTINELS, then MYID: an input that ends after three stands for a
    // Sentinel that refused MYID (an older ACL user), read as Nil.
    let mut replies = Vec::with_capacity(4);
    let mut start = 0;
    while replies.len() < 4 {
        let rest = &data[start..];
        if replies.len() == 3 && rest.is_empty() {
            replies.push(redis::Value::Nil);
            break;
        }
        match sentinel::next_reply(rest) {
            Err(e) => return rejected(e.to_string()),
            Ok(None) => return Err("incomplete".into()),
            Ok(Some((value, len))) => {
                assert!((1..=rest.len()).contains(&len), "a reply of {len} bytes");
                for cut in [len - 1, len / 2, len.saturating_sub(2)] {
                    match sentinel::next_reply(&rest[..cut]) {
                        Ok(None) => {}
                        other => panic!(
                            "the first {cut} of a {len}-byte reply read as {:?}, not incomplete",
                            other.map(|o| o.map(|(_, l)| l))
                        ),
                    }
                }
                replies.push(value);
                start += len;
            }
        }
    }
    match sentinel::view(
        &sentinel,
        "mymaster",
        &replies[0],
        &replies[1],
        &replies[2],
        &replies[3],
    ) {
        Err(e) => rejected(e.to_string()),
        Ok(view) => {
            assert!(!view.master.addr.host.is_empty());
            for r in &view.replicas {
                assert!(!r.addr.host.is_empty());
            }
            for s in &view.sentinels {
                assert!(!s.addr.host.is_empty());
            }
            Ok(())
        }
    }
}

/// `cibadmin --query`'s output, read as `child::run` hands it over (lossy UTF-8).
pub fn cib(data: &[u8]) -> Result<(), String> {
    let xml = String::from_utf8_lossy(bounded(data));
    match cluster::parse_cib(&xml) {
        Err(e) => rejected(e.to_string()),
        Ok(cib) => {
            // What the programs ask of it next must not fail either.
            for node in cib.state.roles.keys() {
                let _ = cib.effective_role(node);
            }
            let _ = cib.writable();
            Ok(())
        }
    }
}

/// An agent's start as execd makes it: the first byte picks the agent, the first line
/// is `argv[1]`, each further `NAME=VALUE` line is one variable of the environment
/// (`OCF_RESKEY_` is put before a name that has no `OCF_`/`HA_` prefix). The parameters
/// that parse must come back the same from the state file they are written to.
pub fn agent_params(data: &[u8]) -> Result<(), String> {
    let Some((&pick, rest)) = bounded(data).split_first() else {
        return Err("empty".into());
    };
    let kind = if pick % 2 == 0 {
        AgentKind::Read
    } else {
        AgentKind::Write
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let action = OsString::from_vec(lines.next().unwrap_or_default().to_vec());
    let env: Vec<(OsString, OsString)> = lines
        .filter_map(|line| {
            let eq = line.iter().position(|&b| b == b'=')?;
            let (name, value) = (&line[..eq], &line[eq + 1..]);
            let name = if name.starts_with(b"OCF_") || name.starts_with(b"HA_") {
                name.to_vec()
            } else {
                [b"OCF_RESKEY_".as_slice(), name].concat()
            };
            Some((OsString::from_vec(name), OsString::from_vec(value.to_vec())))
        })
        .collect();
    let p = Process::new([OsString::from(kind.name()), action], env);
    let _ = Action::parse(p.args().get(1).and_then(|a| a.to_str()));
    let ocf = OcfEnv::from_process(&p);
    assert!(ocf.budget() <= ocf.timeout.max(std::time::Duration::from_millis(500)));
    let _ = ocf.is_probe();
    match agent::params_from_process(kind, &p) {
        Err(e) => rejected(e.to_string()),
        Ok(params) => {
            let text: String = agent::to_pairs(&params.block)
                .into_iter()
                .map(|(name, value)| format!("{name}={value}\n"))
                .collect();
            match agent::params_from_lines(kind, &text) {
                Ok(back) => assert_eq!(back.block, params.block, "the state file {text:?}"),
                Err(e) => panic!("the state file {text:?} does not read back: {e}"),
            }
            Ok(())
        }
    }
}

/// An agent's state file, whatever it holds (a torn write, another version's).
pub fn agent_state_file(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bounded(data));
    for kind in AgentKind::ALL {
        if let Err(e) = agent::params_from_lines(kind, &text) {
            rejected(e.to_string())?;
        }
    }
    Ok(())
}

/// Sentinel's script arguments after `argv[0]`, NUL-separated as in
/// `/proc/PID/cmdline`: the first byte picks the reconfig script (even) or the
/// notification script (odd).
pub fn sentinel_argv(data: &[u8]) -> Result<(), String> {
    let Some((&pick, rest)) = bounded(data).split_first() else {
        return Err("empty".into());
    };
    let args: Vec<OsString> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect()
    };
    if pick % 2 == 1 {
        return match NotifyArgs::parse(&args) {
            Err(e) => rejected(e.to_string()),
            Ok(n) => {
                let _ = n.syncs();
                Ok(())
            }
        };
    }
    match ReconfigArgs::parse(&args) {
        Err(e) => rejected(e.to_string()),
        Ok(r) => {
            assert!(!r.master.is_empty() && !r.state.is_empty());
            for addr in [&r.from, &r.to] {
                assert!(
                    !addr.host.is_empty() && addr.port != 0,
                    "{addr:?} accepted from {args:?}"
                );
            }
            let _ = r.to_string();
            Ok(())
        }
    }
}
