//! redis-ha-ocf: Pacemaker resource agents that steer HAProxy to the Redis primary by
//! refusing ports, as one multi-call binary.
//!
//! Layers, imports pointing down only (the README's "Architecture" draws them):
//! - entry: `main`, `persona`, and `run` below;
//! - programs: `agent`, `hooks` (Sentinel's scripts), `sync`, `guard`, `status`, `backup`,
//!   `ports`, `switchover`, `cli`;
//! - what they share: `observe` (one observation of the cluster), `config`, `exit`,
//!   `wake`, `handoff` (Sentinel's scripts asking the sync service over a socket);
//! - effects behind traits: `cluster` (Pacemaker), `sentinel` (Sentinel and Redis),
//!   `firewall`, `child`, `lock` (in `run_dir`), `ocf` (OCF environment and logging),
//!   `process`, `resolve` (host names, within a deadline), `deadline` (one for a whole
//!   run, each step bounded by what is left); and
//!   `blocks`, the clones' names, ports and chain, which the CIB parser reads too.

// Entry and programs.
mod agent;
mod backup;
mod cli;
mod guard;
mod hooks;
mod persona;
mod ports;
mod status;
mod switchover;
mod sync;

// What the programs share.
mod config;
mod exit;
mod handoff;
mod observe;
mod wake;

// Effects, and the data they share.
mod blocks;
mod child;
mod cluster;
mod deadline;
mod firewall;
mod lock;
mod ocf;
mod process;
mod resolve;
mod run_dir;
mod sentinel;

/// The parsers of what other programs hand us, for the fuzz targets in `fuzz/` only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;

/// The admin CLI's clap definition, for `packaging/manpages.rs` (redis-ha.8).
#[doc(hidden)]
pub use cli::command as cli_command;
pub use process::Process;

use exit::Exit;
use persona::Persona;

/// Runs the persona named by `argv[0]`; returns the exit code.
pub fn run(process: Process) -> i32 {
    match Persona::from_argv0(process.argv0()) {
        Persona::Agent(kind) => agent::run(kind, &process),
        Persona::SentinelReconfig => hooks::reconfig(&process).code(),
        Persona::SentinelNotify => hooks::notify(&process).code(),
        Persona::Cli => cli::run(&process),
    }
}
