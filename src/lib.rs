//! redis-ha-ocf: Pacemaker resource agents that steer HAProxy to the Redis primary by
//! refusing ports, as one multi-call binary.

mod agent;
mod backup;
mod blocks;
mod child;
mod cli;
mod cluster;
mod config;
mod firewall;
mod guard;
mod helper;
mod lock;
mod ocf;
mod persona;
mod ports;
mod process;
mod sentinel;
mod status;
mod sync;

/// The admin CLI's clap definition, for `packaging/manpages.rs` (redis-ha.8).
#[doc(hidden)]
pub use cli::command as cli_command;
pub use process::Process;

use persona::Persona;

/// Runs the persona named by `argv[0]`; returns the exit code.
pub fn run(process: Process) -> i32 {
    match Persona::from_argv0(process.argv0()) {
        Persona::Agent(kind) => agent::run(kind, &process),
        Persona::SentinelReconfig => helper::reconfig(&process),
        Persona::SentinelNotify => helper::notify(&process),
        Persona::Cli => cli::run(&process),
    }
}
