//! The admin command line `redis-ha`: its definition, and each subcommand handed to its
//! program; the exit code comes from that program's contract (`crate::exit`).

mod cluster_debug;
mod sentinel_view;

use std::ffi::OsString;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::agent;
use crate::blocks::AgentKind;
use crate::config::ConfigError;
use crate::config::{Config, path_from_env};
use crate::deadline::Deadline;
use crate::exit::{Exit, ToolExit};
use crate::firewall::{Backend, Families, Port};
use crate::ocf::Logger;
use crate::ports::{self, PortsFlags};
use crate::process::Process;

#[derive(Debug, Parser)]
#[command(
    name = "redis-ha",
    version,
    about = "Pacemaker agents and tools that steer a load balancer to the Redis primary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a block agent action, exactly as Pacemaker runs it through the agent's link
    /// (parameters from OCF_RESKEY_* variables).
    Agent {
        /// RedisLBReadBlock or RedisLBWriteBlock
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(AgentKind::ALL.map(AgentKind::name)))]
        agent: String,
        /// start, stop, monitor, validate-all, meta-data, usage
        action: OsString,
    },
    /// Reconcile the redis_role node attributes with what the Sentinels say (what the
    /// Sentinel scripts do on every failover; also the first set-up).
    Sync {
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep reconciling, one sync every PERIOD (e.g. 5s, 500ms).
        #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
        every: Option<Duration>,
        /// The config file (default: $REDIS_HA_CONFIG, else /etc/redis-ha/redis-ha.conf).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// One screen for an operator: per node its redis_role, what the Sentinels say its
    /// Redis is, which block clones run there, and whether they agree (exit 0 when all
    /// agree, 1 when anything disagrees or is unknown, 2 when the config is unusable).
    Status {
        /// The config file (default: $REDIS_HA_CONFIG, else /etc/redis-ha/redis-ha.conf).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Move the primary to another node for planned maintenance, losing no acknowledged
    /// write: the primary refuses writes first (its RedisLBWriteBlock runs), the target
    /// catches up with it, every other replica gets replica-priority 0 so that SENTINEL
    /// FAILOVER can only pick the target, and the sync promotes it. Priorities and the
    /// hold on the old primary are restored on every path, Ctrl-C included. Exit 0: the
    /// target takes writes; 1: cannot be done now (why printed, nothing changed); 2:
    /// failed or interrupted before the promotion, everything restored and the old
    /// primary writable again; 3: stopped where it cannot go back (Sentinel promoted the
    /// target) or could not restore something (the lines say what).
    Switchover {
        /// The node to make primary (default: the synced replica Sentinel would choose).
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
        /// For the whole switchover, e.g. 30s; past it, it rolls back.
        #[arg(long, value_name = "DURATION", value_parser = parse_period, default_value = "30s")]
        timeout: Duration,
        /// The config file (default: $REDIS_HA_CONFIG, else /etc/redis-ha/redis-ha.conf).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Take an RDB backup of the Sentinels' primary (or of a synced replica): checked
    /// (header, CRC64), gzipped, written atomically as DIR/redis-<master>-<UTC>.rdb.gz;
    /// exit 1, leaving no partial file, when anything fails.
    Backup {
        /// Where the backups go (must exist).
        dir: std::path::PathBuf,
        /// Then delete this master's backups in DIR older than this many days.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        keep_days: Option<u64>,
        /// primary, or replica (a synced one) to spare the primary the fork.
        #[arg(long, value_enum, default_value = "primary")]
        from: crate::backup::SourceRole,
        /// For connecting and for the whole transfer, in seconds.
        #[arg(long, default_value = "300")]
        timeout: u64,
        /// The config file (default: $REDIS_HA_CONFIG, else /etc/redis-ha/redis-ha.conf).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Print one Sentinel's view of a master as `key: value` lines (for tests and
    /// debugging; exit 1 retry, 2 give up, as the Sentinel helper).
    #[command(hide = true)]
    SentinelView(sentinel_view::ViewArgs),
    /// Query or change Pacemaker the way the Sentinel helper does, one call at a time
    /// (for tests and debugging; exit 1 retry, 2 give up).
    #[command(hide = true)]
    ClusterDebug(cluster_debug::DebugArgs),
    /// Manage the nat REDIRECT rules that make the read and write ports reach Redis
    /// (redis-ha-ports.service runs install at boot, remove at stop). The ports, families
    /// and marks not given come from the config (read_port, write_port, guard_family,
    /// guard_match = mark), else the defaults.
    Ports {
        #[arg(value_enum)]
        op: PortsOp,
        /// Public read port (default: the config's read_port, else 6380).
        #[arg(long, value_parser = parse_port)]
        read: Option<Port>,
        /// Public write port (default: the config's write_port, else 6381).
        #[arg(long, value_parser = parse_port)]
        write: Option<Port>,
        /// Redis's own port, where both are redirected.
        #[arg(long, default_value = "6379", value_parser = parse_port)]
        to: Port,
        /// Also mark packets with their public port in mangle PREROUTING/OUTPUT
        /// (for agents with match=mark; implied by the config's guard_match = mark).
        #[arg(long)]
        mark: bool,
        /// ipv4, ipv6 or both (default: the config's guard_family, else ipv4).
        #[arg(long, value_parser = parse_families)]
        family: Option<Families>,
        /// auto (iptables on PATH), nft or legacy.
        #[arg(long, default_value = "auto", value_parser = parse_backend)]
        backend: Backend,
        /// Seconds to wait for the xtables lock.
        #[arg(long, default_value = "10")]
        wait: u64,
        /// With install: also refuse both ports with the isolation guard's own rules,
        /// which its first round lifts once it can confirm this node (what
        /// redis-ha-ports.service runs at boot: Redis may listen before Pacemaker places
        /// the block clones). Nothing is closed when the config's guard is off.
        #[arg(long)]
        closed: bool,
        /// The config file (default: $REDIS_HA_CONFIG, else /etc/redis-ha/redis-ha.conf;
        /// without one, the defaults).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PortsOp {
    /// Add what is missing, remove stale rules of ours (idempotent).
    Install,
    /// Remove our chains and the jumps to them.
    Remove,
    /// Exit non-zero and name what is missing.
    Check,
}

/// The command line's definition, for the man page generator (`packaging/manpages.rs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// `5s`, `500ms`, or bare seconds; from 100 ms to an hour.
fn parse_period(v: &str) -> Result<Duration, String> {
    let (number, unit) = match v.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (v.strip_suffix('s').unwrap_or(v), 1000),
    };
    match number.parse::<u64>() {
        Ok(n) if (100..=3_600_000).contains(&(n * unit)) => Ok(Duration::from_millis(n * unit)),
        _ => Err(format!(
            "expected a period like 5s or 500ms (100ms to 3600s), got {v:?}"
        )),
    }
}

/// The config `redis-ha ports` takes its defaults from: `--config` must exist; the
/// default one may be missing (the built-in defaults then). `remove` removes every chain
/// of ours whatever the ports, so a broken config does not stop it (it must work at a
/// unit's stop).
fn ports_config(
    p: &Process,
    explicit: Option<std::path::PathBuf>,
    op: PortsOp,
) -> Result<Option<Config>, ConfigError> {
    let given = explicit.is_some();
    let path = explicit.unwrap_or_else(|| path_from_env(p));
    if !given && !path.exists() {
        return Ok(None);
    }
    match (Config::load(&path), op) {
        (Ok(config), _) => Ok(Some(config)),
        (Err(e), PortsOp::Remove) => {
            eprintln!("redis-ha ports: {e} (removing with the defaults)");
            Ok(None)
        }
        (Err(e), _) => Err(e),
    }
}

fn parse_port(v: &str) -> Result<Port, String> {
    Port::parse("port", v).map_err(|e| e.to_string())
}

fn parse_families(v: &str) -> Result<Families, String> {
    Families::parse(v).map_err(|e| e.to_string())
}

fn parse_backend(v: &str) -> Result<Backend, String> {
    Backend::parse(v).map_err(|e| e.to_string())
}

pub(crate) fn run(p: &Process) -> i32 {
    let cli = match Cli::try_parse_from(p.args()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own contract: 2 for a usage error, 0 for --help and --version.
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Agent { agent, action } => {
            let kind = AgentKind::from_name(&agent).expect("clap checked the agent name");
            agent::run(kind, &p.with_args(vec![agent.into(), action]))
        }
        Command::Sync {
            dry_run,
            every,
            config,
        } => {
            let path = config.unwrap_or_else(|| path_from_env(p));
            let exit = match every {
                Some(period) => crate::sync::every(p, &path, period, dry_run),
                None => {
                    let log = Logger::for_tool("redis-ha-sync", p);
                    let result = Config::load(&path).map_err(Into::into).and_then(|config| {
                        crate::sync::once(&config, &log, dry_run, Deadline::NONE)
                    });
                    crate::sync::finish(&log, result)
                }
            };
            exit.code()
        }
        Command::Status { config } => {
            let path = config.unwrap_or_else(|| path_from_env(p));
            crate::status::run(&path).code()
        }
        Command::Switchover {
            to,
            timeout,
            config,
        } => {
            let path = config.unwrap_or_else(|| path_from_env(p));
            let request = crate::switchover::Request {
                to: to.map(crate::cluster::NodeName),
                timeout,
            };
            crate::switchover::run(p, &path, &request).code()
        }
        Command::Backup {
            dir,
            keep_days,
            from,
            timeout,
            config,
        } => {
            let path = config.unwrap_or_else(|| path_from_env(p));
            let req = crate::backup::Request {
                dir: &dir,
                keep_days,
                from,
                timeout: Duration::from_secs(timeout.max(1)),
            };
            crate::backup::run(&path, &req).code()
        }
        Command::SentinelView(args) => sentinel_view::run(&args).code(),
        Command::ClusterDebug(args) => cluster_debug::run(args).code(),
        Command::Ports {
            op,
            read,
            write,
            to,
            mark,
            family,
            backend,
            wait,
            closed,
            config,
        } => {
            let flags = PortsFlags {
                read,
                write,
                mark,
                families: family,
            };
            let conf = match ports_config(p, config, op) {
                Ok(conf) => conf,
                Err(e) => {
                    eprintln!("redis-ha ports: {e}");
                    return ToolExit::Failed.code();
                }
            };
            let cfg = flags.resolve(conf.as_ref().map(|c| &c.guard), to, backend);
            let wait = Duration::from_secs(wait.max(1));
            let result = match op {
                PortsOp::Install if closed => ports::install(&cfg, wait).and_then(|report| {
                    let closing = match &conf {
                        Some(c) => crate::guard::close_at_boot(&c.guard).map_err(|e| e.to_string()),
                        None => Ok(false),
                    };
                    Ok(match closing {
                        Ok(true) => format!(
                            "{report}refused {} and {} with the guard's rules until it confirms this node",
                            cfg.read, cfg.write
                        ),
                        Ok(false) => format!("{report}--closed: the guard is off (or no config): nothing refused"),
                        Err(e) => return Err(ports::PortsError::Closing(e)),
                    })
                }),
                PortsOp::Install => ports::install(&cfg, wait),
                PortsOp::Remove => ports::remove(&cfg, wait),
                PortsOp::Check => ports::check(&cfg, wait),
            };
            let exit = match result {
                Ok(report) => {
                    println!("{report}");
                    ToolExit::Done
                }
                Err(e) => {
                    eprintln!("redis-ha ports: {e}");
                    ToolExit::Failed
                }
            };
            exit.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_seconds_or_milliseconds() {
        let table = [
            ("5s", Some(5000)),
            ("500ms", Some(500)),
            ("10", Some(10_000)),
            ("100ms", Some(100)),
            ("99ms", None),
            ("0s", None),
            ("3601s", None),
            ("5m", None),
            ("", None),
        ];
        for (v, want) in table {
            let got = parse_period(v).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{v:?}");
        }
    }
}
