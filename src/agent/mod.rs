//! The OCF block agents `RedisLBReadBlock` and `RedisLBWriteBlock`: one implementation,
//! two sets of data.

mod actions;
mod error;
mod params;
#[cfg(feature = "fuzzing")]
pub(crate) use params::{
    from_lines as params_from_lines, from_process as params_from_process, to_pairs,
};
mod state;
#[cfg(test)]
mod tests;

use std::io::Write;

use crate::blocks::AgentKind;
use crate::firewall::{Iptables, Xtables};
use crate::lock::LockFile;
use crate::ocf::{Action, Logger, OcfCode, OcfEnv};
use crate::process::Process;
use actions::Agent;
use state::StateFile;

/// Runs the agent action in `argv[1]`; returns the process exit code.
pub(crate) fn run(kind: AgentKind, p: &Process) -> i32 {
    let action = Action::parse(p.args().get(1).and_then(|a| a.to_str()));
    match &action {
        // Runs as `nobody`, reads no parameters, touches nothing.
        Action::MetaData => {
            let _ = std::io::stdout().write_all(kind.metadata().as_bytes());
            return OcfCode::Success.exit_code();
        }
        Action::Usage => {
            println!("{}", usage(kind));
            return OcfCode::Success.exit_code();
        }
        Action::Unknown(name) => {
            eprintln!("{}", usage(kind));
            eprintln!("ocf-exit-reason:unsupported action {name:?}");
            return OcfCode::ErrUnimplemented.exit_code();
        }
        _ => {}
    }
    let env = OcfEnv::from_process(p);
    let log = Logger::from_process(p, kind.name(), env.instance.as_deref());
    let params = params::from_process(kind, p);
    let wait = params
        .as_ref()
        .ok()
        .and_then(|p| p.wait)
        .unwrap_or(env.budget());
    let firewall = Iptables::under_lock(Xtables::new(env.budget(), wait, env.fail_have_binary));
    let agent = Agent {
        kind,
        env: &env,
        log: &log,
        firewall: &firewall,
        params,
        state: StateFile::new(&env.rsctmp, kind, env.instance.as_deref()),
        is_root: nix::unistd::geteuid().is_root(),
        lock: LockFile::host(),
    };
    let outcome = match action {
        Action::Start => agent.start(),
        Action::Stop => agent.stop(),
        Action::Monitor => agent.monitor(),
        Action::ValidateAll => agent.validate(),
        Action::MetaData | Action::Usage | Action::Unknown(_) => unreachable!("handled above"),
    };
    match outcome {
        Ok(code) => code.exit_code(),
        Err(e) => {
            log.exit_reason(&e.to_string());
            e.code().exit_code()
        }
    }
}

fn usage(kind: AgentKind) -> String {
    format!(
        "usage: {} {{start|stop|monitor|validate-all|meta-data|usage|help}}\n\
         Parameters come from OCF_RESKEY_* variables; see `{} meta-data`.",
        kind.name(),
        kind.name()
    )
}
