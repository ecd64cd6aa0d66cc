//! `/etc/redis-ha/redis-ha.conf`: which master to follow, which Sentinels to ask, how
//! Redis addresses map to Pacemaker nodes. Parsed without I/O; errors name the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::blocks::AgentKind;
use crate::cluster::NodeName;
use crate::deadline::Deadline;
use crate::firewall::{Families, MatchBy, Port};
use crate::process::Process;
use crate::run_dir::RUN_DIR;
use crate::sentinel::{
    AclUser, Addr, Credentials, RedisClients, RedisSentinels, SENTINEL_PORT, host_of, parse_addr,
    read_password,
};

/// Where the config lives unless `REDIS_HA_CONFIG` says otherwise.
pub(crate) const DEFAULT_PATH: &str = "/etc/redis-ha/redis-ha.conf";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// The name Sentinel monitors the master under.
    pub(crate) master_name: String,
    /// Sentinels to ask; the local one when none is given.
    pub(crate) sentinels: Vec<Addr>,
    /// How to authenticate to the Sentinels (`sentinel_user`, `sentinel_password_file`).
    pub(crate) sentinel_auth: Option<AuthFile>,
    /// How to authenticate to the Redis servers themselves, for `redis-ha status` and
    /// `redis-ha backup` (`redis_user`, `redis_password_file`).
    pub(crate) redis_auth: Option<AuthFile>,
    /// Pacemaker node → the addresses its Redis is announced under.
    pub(crate) nodes: BTreeMap<String, Vec<String>>,
    /// Per request to a Sentinel.
    pub(crate) timeout: Duration,
    /// How long to wait for the demoted primary's write block before promoting.
    pub(crate) block_wait: Duration,
    /// How the sync follows a failover (`read_max_stale_ms`, `promote_at`).
    pub(crate) policy: Policy,
    /// The isolation guard (run by `redis-ha sync --every`).
    pub(crate) guard: GuardSettings,
    /// Where `redis-ha sync --every` listens for Sentinel's scripts (`crate::handoff`).
    pub(crate) sync_socket: PathBuf,
}

/// Credentials as configured: an optional ACL user and the file holding the password
/// (its first line), read only when a client is made. A user without a password file
/// cannot be expressed: the parser refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFile {
    pub(crate) user: Option<AclUser>,
    pub(crate) password_file: PathBuf,
}

/// The isolation guard's settings: whether it runs, how fast it must react, and the
/// ports and rule form it refuses them with (the same as the block agents').
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuardSettings {
    pub(crate) enabled: bool,
    /// The longest from an isolation until the guard has closed the ports: it checks
    /// every quarter of this and gives the Sentinels half of it to answer.
    pub(crate) react: Duration,
    /// When it starts refusing reads, how long it refuses only new connections before it
    /// cuts those already open (`guard_read_drain_ms`): a read under way is answered, and
    /// HAProxy, whose check is refused meanwhile, sends the next ones elsewhere.
    pub(crate) read_drain: Duration,
    pub(crate) read_port: Port,
    pub(crate) write_port: Port,
    pub(crate) families: Families,
    pub(crate) match_by: MatchBy,
    /// This node's Pacemaker name (default: the host name).
    pub(crate) local_node: Option<String>,
    /// Where the guard records what it refuses and why, for `redis-ha status`.
    pub(crate) record_file: PathBuf,
}

impl GuardSettings {
    /// This node's name in Pacemaker: the config's `local_node`, else the host name.
    pub(crate) fn local_node(&self) -> NodeName {
        NodeName(self.local_node.clone().unwrap_or_else(|| {
            nix::sys::utsname::uname()
                .map(|u| u.nodename().to_string_lossy().into_owned())
                .unwrap_or_default()
        }))
    }
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            enabled: true,
            react: Duration::from_millis(1000),
            read_drain: Duration::from_millis(100),
            read_port: AgentKind::Read.default_port(),
            write_port: AgentKind::Write.default_port(),
            families: Families::Ipv4,
            match_by: MatchBy::Conntrack,
            local_node: None,
            record_file: Path::new(RUN_DIR).join("guard"),
        }
    }
}

/// How the truth follows a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Policy {
    pub(crate) read_bound: ReadBound,
    pub(crate) promote_at: PromoteAt,
}

/// The Sentinels' signal at which the replica they promote becomes the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PromoteAt {
    /// As soon as the master is lost for a majority of the Sentinels (`+odown`, or
    /// `+sdown` at most of them) and a majority of their views foresee, by Sentinel's
    /// own rules, the replica the leader will choose (`observe::select`): its write port
    /// opens while they elect a leader, so it is open when the replica becomes a master,
    /// and HAProxy's `role:master` check sends it writes at once, as with HAProxy's check
    /// alone. Until then it is a replica and answers writes with READONLY. Where the views
    /// cannot tell, or the leader chose another, as at `SelectedSlave`.
    #[default]
    Foreseen,
    /// The failover leader's `+selected-slave` (its `failover-state` is
    /// `send_slaveof_noone` or later, the replica flagged `promoted`): its write port opens
    /// while Sentinel turns it into a master, and HAProxy's `role:master` check sends it
    /// writes as soon as it is one, as with HAProxy's check alone. A failover that aborts
    /// after the replica became a master can discard what it acknowledged.
    SelectedSlave,
    /// The failover leader's `+promoted-slave` (its `failover-state` is `reconf_slaves`):
    /// the replica answers as a master and the failover can no longer abort.
    PromotedSlave,
    /// The first `+switch-master`: a Sentinel not leading the failover names it.
    SwitchMaster,
}

impl PromoteAt {
    pub(crate) const NAMES: &'static str =
        "foreseen, selected-slave, promoted-slave or switch-master";

    pub(crate) fn parse(value: &str) -> Option<PromoteAt> {
        match value {
            "foreseen" => Some(PromoteAt::Foreseen),
            "selected-slave" => Some(PromoteAt::SelectedSlave),
            "promoted-slave" => Some(PromoteAt::PromotedSlave),
            "switch-master" => Some(PromoteAt::SwitchMaster),
            _ => None,
        }
    }

    /// The signal for a manual failover (`SENTINEL FAILOVER`) of a master that is not
    /// down: no earlier than `+promoted-slave`. Until the leader's own INFO has seen the
    /// replica answer as a master, another Sentinel that still takes its old master for
    /// sane may turn the replica back (`+convert-to-slave`) and the leader then aborts
    /// (`-failover-abort-slave-timeout`), discarding what the replica acknowledged: a
    /// Sentinel that last saw that replica as a master (it was one before a recent
    /// failover; Sentinel asks a live master's replicas only every 10 s) converts it at
    /// its first INFO, without the 8 s grace a fresh role change gets. A planned
    /// switchover's write gap grows by up to the leader's INFO period (1 s) for it.
    pub(crate) fn live_master(self) -> PromoteAt {
        match self {
            PromoteAt::Foreseen | PromoteAt::SelectedSlave => PromoteAt::PromotedSlave,
            later => later,
        }
    }

    /// Whether the failover leader's `failover-state` has reached this signal (its
    /// replica flagged `promoted` is then the one it promotes). Never for `SwitchMaster`:
    /// that signal is another Sentinel's new configuration, not the leader's state.
    pub(crate) fn reached_by(self, failover_state: &str) -> bool {
        let states: &[&str] = match self {
            PromoteAt::Foreseen | PromoteAt::SelectedSlave => &[
                "send_slaveof_noone",
                "wait_promotion",
                "reconf_slaves",
                "update_config",
            ],
            PromoteAt::PromotedSlave => &["reconf_slaves", "update_config"],
            PromoteAt::SwitchMaster => &[],
        };
        states.contains(&failover_state)
    }
}

/// How long a replica of a lost master keeps serving reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ReadBound {
    #[default]
    /// `down-after-milliseconds` + twice `failover-timeout` (as the newest view reports
    /// them: Sentinel's retry of an election that split) + the time a failover takes
    /// (`observe::truth::FAILOVER_ALLOWANCE`).
    Auto,
    /// As configured (`read_max_stale_ms`); zero: never, reads stop with the master.
    Fixed(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cannot read the {whose} password file {}: {reason}", path.display())]
    Password {
        whose: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// `raw` without its comment: from a `#` that starts the line or follows a space or a
/// tab, as in a shell. A `#` inside a value (a path, a file name) is part of it.
fn strip_comment(raw: &str) -> &str {
    let mut prev_blank = true;
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_blank {
            return &raw[..i];
        }
        prev_blank = c == ' ' || c == '\t';
    }
    raw
}

/// The longest `timeout_ms`: one exchange with a Sentinel (resolving, connecting, the
/// answers) may take. A Sentinel on the cluster's network answers in milliseconds: a
/// longer timeout only lengthens the wait for a dead one. An observation asks in at most
/// three rounds one after another (the configured Sentinels, those they name, the
/// replicas' own offsets): 15 s at this cap, a good part of the 50 s a script's own sync
/// has before its deadline (`hooks`), which ends it before Sentinel kills it at 60 s. It
/// is also the most the isolation guard gives them (half of `guard_react_ms`'s 10 s).
const MAX_TIMEOUT_MS: u64 = 5_000;

/// The longest `block_wait_ms`.
const MAX_BLOCK_WAIT_MS: u64 = 60_000;

/// The most a config file may hold: ours is a few KiB with every comment.
pub(crate) const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// A master name as Sentinel knows it, limited to what is safe in a file name (backups
/// are named after it) and in a log line: letters, digits, `.`, `_`, `-`.
fn master_name_of(value: &str) -> Result<String, String> {
    let safe = value.len() <= 128
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if safe {
        Ok(value.to_string())
    } else {
        Err(format!(
            "master_name {value:?}: expected letters, digits, `.`, `_` or `-` (not first: `.`), \
             at most 128"
        ))
    }
}

const KEYS: &str = "master_name, sentinel, sentinel_user, sentinel_password_file, redis_user, \
                    redis_password_file, node, \
                    timeout_ms, block_wait_ms, guard, guard_react_ms, guard_read_drain_ms, read_port, write_port, \
                    guard_family, guard_match, local_node, guard_record_file, read_max_stale_ms, promote_at, \
                    sync_socket";

impl Config {
    /// Reads and parses the config at `path`: a regular file of at most
    /// [`MAX_CONFIG_BYTES`] (opened without blocking, so a FIFO or a device named by
    /// `REDIS_HA_CONFIG` is refused, never waited on).
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(failed("not a regular file".into()));
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(failed(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| failed("not UTF-8 text".into()))?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses `key = value` lines; `#` at the start of a line or after a blank starts a
    /// comment; `node NAME = ADDR [ADDR...]`; every key but `sentinel` and `node` at most
    /// once.
    pub(crate) fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let err = |line: usize, message: String| ConfigError::Line {
            path: path.to_string(),
            line,
            message,
        };
        let mut master_name = None;
        let mut sentinels = Vec::new();
        let mut password_file = None;
        let mut redis_password_file = None;
        // Each user with the line it was given on, for the error when its file is missing.
        let mut sentinel_user: Option<(AclUser, usize)> = None;
        let mut redis_user: Option<(AclUser, usize)> = None;
        let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut timeout = Duration::from_millis(1000);
        let mut block_wait = Duration::from_millis(10_000);
        let mut guard = GuardSettings::default();
        let mut policy = Policy::default();
        // Where each single-valued key was given: a second one is an error, not a quiet
        // override.
        let mut given: BTreeMap<String, usize> = BTreeMap::new();
        let mut sync_socket = Path::new(RUN_DIR).join("sync.sock");
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(n, format!("expected `key = value`, got {line:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(err(n, format!("{key} has no value")));
            }
            let mut words = key.split_whitespace();
            let repeatable = matches!(words.clone().next(), Some("sentinel" | "node"));
            if let Some(first) = given.insert(key.to_string(), n).filter(|_| !repeatable) {
                return Err(err(
                    n,
                    format!("{key} is given twice (first on line {first})"),
                ));
            }
            match (words.next(), words.next(), words.next()) {
                (Some("master_name"), None, _) => {
                    master_name = Some(master_name_of(value).map_err(|m| err(n, m))?)
                }
                (Some("sentinel"), None, _) => {
                    sentinels.push(parse_addr(value, SENTINEL_PORT).map_err(|m| err(n, m))?)
                }
                (Some("sentinel_password_file"), None, _) => {
                    password_file = Some(PathBuf::from(value))
                }
                (Some("redis_password_file"), None, _) => {
                    redis_password_file = Some(PathBuf::from(value))
                }
                (Some("sentinel_user"), None, _) => {
                    sentinel_user = Some((AclUser::parse(key, value).map_err(|m| err(n, m))?, n))
                }
                (Some("redis_user"), None, _) => {
                    redis_user = Some((AclUser::parse(key, value).map_err(|m| err(n, m))?, n))
                }
                (Some("node"), Some(name), None) => {
                    let addrs = value
                        .split_whitespace()
                        .map(|a| {
                            host_of(a).ok_or_else(|| {
                                err(
                                    n,
                                    format!("node {name}: {a:?} is not a host name or address"),
                                )
                            })
                        })
                        .collect::<Result<Vec<String>, _>>()?;
                    if nodes.insert(name.to_string(), addrs).is_some() {
                        return Err(err(n, format!("node {name} is mapped twice")));
                    }
                }
                (Some("node"), _, _) => {
                    return Err(err(n, "expected `node NAME = ADDRESS [ADDRESS...]`".into()));
                }
                (Some("timeout_ms"), None, _) => {
                    timeout = millis(value, 1..=MAX_TIMEOUT_MS).map_err(|m| err(n, m))?
                }
                (Some("block_wait_ms"), None, _) => {
                    block_wait = millis(value, 1..=MAX_BLOCK_WAIT_MS).map_err(|m| err(n, m))?
                }
                (Some("guard"), None, _) => {
                    guard.enabled = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(err(n, format!("expected on or off, got {value:?}"))),
                    }
                }
                (Some("guard_read_drain_ms"), None, _) => {
                    guard.read_drain = millis(value, 0..=5_000).map_err(|m| err(n, m))?
                }
                (Some("guard_react_ms"), None, _) => {
                    guard.react = millis(value, 200..=10_000).map_err(|m| err(n, m))?
                }
                (Some("read_port"), None, _) => {
                    guard.read_port =
                        Port::parse("read_port", value).map_err(|e| err(n, e.to_string()))?
                }
                (Some("write_port"), None, _) => {
                    guard.write_port =
                        Port::parse("write_port", value).map_err(|e| err(n, e.to_string()))?
                }
                (Some("guard_family"), None, _) => {
                    guard.families = Families::parse(value).map_err(|e| err(n, e.to_string()))?
                }
                (Some("guard_match"), None, _) => {
                    guard.match_by = MatchBy::parse(value).map_err(|e| err(n, e.to_string()))?
                }
                (Some("local_node"), None, _) => guard.local_node = Some(value.to_string()),
                (Some("promote_at"), None, _) => {
                    policy.promote_at = PromoteAt::parse(value).ok_or_else(|| {
                        err(n, format!("expected {}, got {value:?}", PromoteAt::NAMES))
                    })?
                }
                (Some("read_max_stale_ms"), None, _) => {
                    policy.read_bound = match value {
                        "auto" => ReadBound::Auto,
                        _ => ReadBound::Fixed(
                            millis_or("auto or ", value, 0..=600_000).map_err(|m| err(n, m))?,
                        ),
                    }
                }
                (Some("guard_record_file"), None, _) => guard.record_file = PathBuf::from(value),
                (Some("sync_socket"), None, _) => sync_socket = PathBuf::from(value),
                _ => {
                    return Err(err(
                        n,
                        format!("unknown key {key:?} (expected one of {KEYS})"),
                    ));
                }
            }
        }
        let Some(master_name) = master_name else {
            return Err(ConfigError::File {
                path: path.to_string(),
                message: "master_name is missing (the name in `sentinel monitor NAME ...`)".into(),
            });
        };
        if sentinels.is_empty() {
            sentinels.push(Addr {
                host: "127.0.0.1".into(),
                port: SENTINEL_PORT,
            });
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (node, addrs) in &nodes {
            for addr in addrs {
                if let Some(other) = seen.insert(addr, node) {
                    return Err(ConfigError::File {
                        path: path.to_string(),
                        message: format!("address {addr} is mapped to both {other} and {node}"),
                    });
                }
            }
        }
        let sentinel_auth = auth_file(sentinel_user, password_file, "sentinel")
            .map_err(|(line, message)| err(line, message))?;
        let redis_auth = auth_file(redis_user, redis_password_file, "redis")
            .map_err(|(line, message)| err(line, message))?;
        Ok(Config {
            master_name,
            sentinels,
            sentinel_auth,
            redis_auth,
            nodes,
            timeout,
            block_wait,
            policy,
            guard,
            sync_socket,
        })
    }
}

/// A `<prefix>_user` and a `<prefix>_password_file` as one setting: a user needs the file.
fn auth_file(
    user: Option<(AclUser, usize)>,
    password_file: Option<PathBuf>,
    prefix: &str,
) -> Result<Option<AuthFile>, (usize, String)> {
    match (user, password_file) {
        (Some((user, line)), None) => Err((
            line,
            format!(
                "{prefix}_user = {user} needs {prefix}_password_file (a file whose first line is \
                 that user's password)"
            ),
        )),
        (user, Some(password_file)) => Ok(Some(AuthFile {
            user: user.map(|(u, _)| u),
            password_file,
        })),
        (None, None) => Ok(None),
    }
}

/// A whole number of milliseconds within `range`, in decimal digits only.
fn millis(value: &str, range: std::ops::RangeInclusive<u64>) -> Result<Duration, String> {
    millis_or("", value, range)
}

/// [`millis`] for a setting that also takes words, which its error names first
/// (`others`: "auto or ").
fn millis_or(
    others: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms) if range.contains(&ms) && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Duration::from_millis(ms))
        }
        _ => Err(format!(
            "expected {others}milliseconds from {} to {}, got {value:?}",
            range.start(),
            range.end()
        )),
    }
}

impl Config {
    /// The Sentinels to ask, with the password of `sentinel_password_file` read now.
    pub(crate) fn sentinel_client(&self) -> Result<RedisSentinels, ConfigError> {
        Ok(RedisSentinels {
            timeout: self.timeout,
            credentials: credentials(self.sentinel_auth.as_ref(), "Sentinel")?,
            // Only the foreseen promotion asks replicas, and it waits for the failover
            // leader's choice without them: an unreadable Redis password (which `redis-ha
            // status` reports) costs no sync.
            replicas: self.redis_client().ok(),
            deadline: Deadline::NONE,
        })
    }

    /// The Redis servers themselves (status, backup), with `redis_password_file`'s password.
    pub(crate) fn redis_client(&self) -> Result<RedisClients, ConfigError> {
        Ok(RedisClients {
            timeout: self.timeout,
            credentials: credentials(self.redis_auth.as_ref(), "Redis")?,
            deadline: Deadline::NONE,
        })
    }
}

fn credentials(
    auth: Option<&AuthFile>,
    whose: &'static str,
) -> Result<Option<Credentials>, ConfigError> {
    auth.map(|a| {
        let password = read_password(&a.password_file).map_err(|e| ConfigError::Password {
            whose,
            path: a.password_file.clone(),
            reason: e.to_string(),
        })?;
        Ok(Credentials {
            user: a.user.clone(),
            password,
        })
    })
    .transpose()
}

/// `$REDIS_HA_CONFIG`, else the default path.
pub(crate) fn path_from_env(p: &Process) -> PathBuf {
    PathBuf::from(p.var("REDIS_HA_CONFIG").unwrap_or(DEFAULT_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let text = "# redis-ha\n\
            master_name = redis-ha\n\
            sentinel = 10.213.0.11:26379\n\
            sentinel = [fd00::0012]:26380   # v6\n\
            sentinel = node3\n\
            sentinel_password_file = /etc/redis-ha/sentinel.pass\n\
            node node1 = 10.213.0.11\n\
            node node2 = 10.213.0.12 FD00::0012\n\
            timeout_ms = 500\n\
            block_wait_ms = 3000\n";
        let c = Config::parse(text, "x.conf").unwrap();
        assert_eq!(c.master_name, "redis-ha");
        let sentinels: Vec<String> = c.sentinels.iter().map(ToString::to_string).collect();
        assert_eq!(
            sentinels,
            ["10.213.0.11:26379", "[fd00::12]:26380", "node3:26379"]
        );
        assert_eq!(c.nodes["node2"], ["10.213.0.12", "fd00::12"]);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.block_wait, Duration::from_secs(3));
        assert_eq!(
            c.sentinel_auth,
            Some(AuthFile {
                user: None,
                password_file: PathBuf::from("/etc/redis-ha/sentinel.pass")
            })
        );
        assert_eq!(c.redis_auth, None);
    }

    #[test]
    fn acl_users_come_with_their_password_files() {
        let text = "master_name = m\n\
                    sentinel_user = rha-observer\n\
                    sentinel_password_file = /etc/redis-ha/sentinel.pass\n\
                    redis_user = redis-ha\n\
                    redis_password_file = /etc/redis-ha/redis.pass\n";
        let c = Config::parse(text, "x").unwrap();
        let user = |u: &str| Some(AclUser::parse("u", u).unwrap());
        assert_eq!(
            c.sentinel_auth,
            Some(AuthFile {
                user: user("rha-observer"),
                password_file: PathBuf::from("/etc/redis-ha/sentinel.pass"),
            })
        );
        assert_eq!(
            c.redis_auth,
            Some(AuthFile {
                user: user("redis-ha"),
                password_file: PathBuf::from("/etc/redis-ha/redis.pass"),
            })
        );
        // A password file alone: the default user (`requirepass`).
        let c = Config::parse("master_name = m\nredis_password_file = /p\n", "x").unwrap();
        assert_eq!(c.redis_auth.unwrap().user, None);
        assert_eq!(c.sentinel_auth, None);
    }

    #[test]
    fn the_password_file_is_read_into_credentials_with_the_user() {
        let dir = std::env::temp_dir().join(format!("rha-config-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("redis.pass");
        std::fs::write(&file, "s3cret  \nsecond line\n").unwrap();
        let text = format!(
            "master_name = m\nredis_user = redis-ha\nredis_password_file = {}\n\
             sentinel_password_file = {}\n",
            file.display(),
            dir.join("absent").display()
        );
        let c = Config::parse(&text, "x").unwrap();
        let creds = c.redis_client().unwrap().credentials.unwrap();
        assert_eq!(creds.auth_args(), ["AUTH", "redis-ha", "s3cret"]);
        let e = c.sentinel_client().unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read the Sentinel password file") && e.contains("absent"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn guard_settings_parse_with_defaults() {
        let c = Config::parse("master_name = m\n", "x").unwrap();
        assert_eq!(c.guard, GuardSettings::default());
        assert!(c.guard.enabled);
        assert_eq!(c.guard.react, Duration::from_secs(1));
        let text = "master_name = m\nguard = off\nguard_react_ms = 400\nread_port = 7380\n\
                    write_port = 7381\nguard_family = both\nguard_match = mark\nlocal_node = n1\n\
                    guard_read_drain_ms = 0\n";
        let g = Config::parse(text, "x").unwrap().guard;
        assert_eq!(
            g,
            GuardSettings {
                enabled: false,
                react: Duration::from_millis(400),
                read_drain: Duration::ZERO,
                read_port: Port::new(7380),
                write_port: Port::new(7381),
                families: Families::Both,
                match_by: MatchBy::Mark,
                local_node: Some("n1".into()),
                record_file: PathBuf::from("/run/redis-ha/guard"),
            }
        );
    }

    #[test]
    fn a_hash_inside_a_value_is_part_of_it_and_sentinels_repeat() {
        let text = "# comment\n  # indented comment\nmaster_name = m\n\
                    sentinel = 10.0.0.1\nsentinel = 10.0.0.2\n\
                    sentinel_password_file = /etc/redis-ha/pass#1\n";
        let c = Config::parse(text, "x").unwrap();
        assert_eq!(c.sentinels.len(), 2);
        assert_eq!(
            c.sentinel_auth.unwrap().password_file,
            PathBuf::from("/etc/redis-ha/pass#1")
        );
    }

    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = std::env::temp_dir().join(format!("rha-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, "# x\n".repeat(20_000)).unwrap();
        let good = dir.join("good");
        let absent = dir.join("absent");
        std::fs::write(&good, "master_name = m\n").unwrap();
        // (path, what the error says); a FIFO without a writer would block a plain open.
        let table = [
            (fifo.as_path(), "not a regular file"),
            (Path::new("/dev/zero"), "not a regular file"),
            (dir.as_path(), "not a regular file"),
            (big.as_path(), "larger than 65536 bytes"),
            (absent.as_path(), "cannot read"),
        ];
        for (path, says) in table {
            let e = Config::load(path).unwrap_err().to_string();
            assert!(e.contains(says), "{}: {e}", path.display());
        }
        assert_eq!(Config::load(&good).unwrap().master_name, "m");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_failover_policy_parses_with_defaults() {
        let c = Config::parse("master_name = m\n", "x").unwrap();
        assert_eq!(c.policy.read_bound, ReadBound::Auto);
        assert_eq!(c.policy.promote_at, PromoteAt::Foreseen);
        let text = "master_name = m\nread_max_stale_ms = 0\npromote_at = switch-master\n";
        let c = Config::parse(text, "x").unwrap();
        assert_eq!(c.policy.read_bound, ReadBound::Fixed(Duration::ZERO));
        assert_eq!(c.policy.promote_at, PromoteAt::SwitchMaster);
        let c = Config::parse("master_name = m\npromote_at = promoted-slave\n", "x").unwrap();
        assert_eq!(c.policy.promote_at, PromoteAt::PromotedSlave);
        let c = Config::parse("master_name = m\npromote_at = selected-slave\n", "x").unwrap();
        assert_eq!(c.policy.promote_at, PromoteAt::SelectedSlave);
        let c = Config::parse("master_name = m\npromote_at = foreseen\n", "x").unwrap();
        assert_eq!(c.policy.promote_at, PromoteAt::Foreseen);
    }

    #[test]
    fn an_address_of_only_dots_names_no_host() {
        // Found by `make fuzz` (target config): `.` was canonicalised to an empty host
        // and accepted, as a node's address and as a Sentinel.
        let table = [
            (
                "master_name=d\nnode e=.",
                2,
                "node e: \".\" is not a host name or address",
            ),
            (
                "master_name=d\nnode e = 10.0.0.5 ...",
                2,
                "\"...\" is not a host",
            ),
            ("master_name=d\nsentinel = .", 2, "expected HOST:PORT"),
            (
                "master_name=d\nsentinel = ..:26379",
                2,
                "expected HOST:PORT",
            ),
        ];
        for (text, line, want) in table {
            match Config::parse(text, "x") {
                Err(ConfigError::Line {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(message.contains(want), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // A fully qualified name keeps working: only its final dot goes.
        let c = Config::parse("master_name=d\nnode e = Node1.Example.\n", "x").unwrap();
        assert_eq!(c.nodes["e"], ["node1.example"]);
    }

    #[test]
    fn defaults_ask_the_local_sentinel() {
        let c = Config::parse("master_name = m\n", "x").unwrap();
        assert_eq!(c.sentinels[0].to_string(), "127.0.0.1:26379");
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert!(c.nodes.is_empty());
        let c = Config::parse("master_name = m\ntimeout_ms = 5000\n", "x").unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5), "the longest timeout_ms");
        assert_eq!(c.sync_socket, Path::new("/run/redis-ha/sync.sock"));
        let c = Config::parse("master_name = m\nsync_socket = /tmp/s.sock\n", "x").unwrap();
        assert_eq!(c.sync_socket, Path::new("/tmp/s.sock"));
    }

    #[test]
    fn errors_name_the_line_and_what_is_expected() {
        let table = [
            (
                "master_name = m\nsentinels = a:1\n",
                "x:2: unknown key \"sentinels\"",
            ),
            (
                "master_name = m\nsentinel = a:b\n",
                "x:2: expected HOST:PORT",
            ),
            (
                "master_name = m\nnode = 10.0.0.1\n",
                "x:2: expected `node NAME = ADDRESS",
            ),
            (
                "master_name = m\ntimeout_ms = 0\n",
                "x:2: expected milliseconds from 1 to 5000, got \"0\"",
            ),
            // One exchange must end long before Sentinel kills the script at 60 s.
            (
                "master_name = m\ntimeout_ms = 60000\n",
                "x:2: expected milliseconds from 1 to 5000, got \"60000\"",
            ),
            (
                "master_name = m\nblock_wait_ms = 60001\n",
                "x:2: expected milliseconds from 1 to 60000",
            ),
            ("master_name = m\nguard = yes\n", "x:2: expected on or off"),
            (
                "master_name = m\ntimeout_ms = 500\ntimeout_ms = 900\n",
                "x:3: timeout_ms is given twice (first on line 2)",
            ),
            (
                "master_name = m\nmaster_name = n\n",
                "x:2: master_name is given twice (first on line 1)",
            ),
            (
                "master_name = x/../../elsewhere/pwn\n",
                "x:1: master_name \"x/../../elsewhere/pwn\": expected letters",
            ),
            ("master_name = ..\n", "x:1: master_name \"..\": expected"),
            (
                "master_name = m\ntimeout_ms = 500#half a second\n",
                "x:2: expected milliseconds",
            ),
            (
                "master_name = m\npromote_at = role\n",
                "x:2: expected foreseen, selected-slave, promoted-slave or switch-master",
            ),
            (
                "master_name = m\nread_max_stale_ms = 600001\n",
                "x:2: expected auto or milliseconds from 0 to 600000",
            ),
            (
                "master_name = m\nguard_react_ms = 100\n",
                "x:2: expected milliseconds from 200 to 10000",
            ),
            (
                "master_name = m\nguard_read_drain_ms = 5001\n",
                "x:2: expected milliseconds from 0 to 5000, got \"5001\"",
            ),
            (
                "master_name = m\nguard_read_drain_ms = +50\n",
                "x:2: expected milliseconds from 0 to 5000, got \"+50\"",
            ),
            (
                "master_name = m\nwrite_port = 0\n",
                "x:2: invalid write_port \"0\"",
            ),
            (
                "master_name = m\nguard_family = inet\n",
                "x:2: invalid family",
            ),
            ("master_name\n", "x:1: expected `key = value`"),
            (
                "master_name = m\nredis_user = redis-ha\n",
                "x:2: redis_user = redis-ha needs redis_password_file",
            ),
            (
                "master_name = m\nsentinel_user = obs\nredis_password_file = /p\n",
                "x:2: sentinel_user = obs needs sentinel_password_file",
            ),
            (
                "master_name = m\nredis_user = two words\nredis_password_file = /p\n",
                "x:2: redis_user \"two words\": expected a Redis ACL user name",
            ),
            (
                "master_name = m\nsentinel_user = caf\u{e9}\n",
                "x:2: sentinel_user \"caf\u{e9}\": expected a Redis ACL user name",
            ),
            (
                "master_name = m\nredis_user = a\nredis_user = b\n",
                "x:3: redis_user is given twice (first on line 2)",
            ),
            ("master_name =\n", "x:1: master_name has no value"),
            ("sentinel = a:1\n", "x: master_name is missing"),
            (
                "master_name = m\nnode a = 10.0.0.1\nnode b = 10.0.0.1\n",
                "x: address 10.0.0.1 is mapped to both a and b",
            ),
            (
                "master_name = m\nnode a = 1.2.3.4\nnode a = 1.2.3.5\n",
                "x:3: node a is mapped twice",
            ),
        ];
        for (text, want) in table {
            let e = Config::parse(text, "x").unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
