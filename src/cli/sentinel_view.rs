//! `redis-ha sentinel-view` (hidden): one Sentinel's view printed as stable `key: value`
//! lines, so tests and people can check what `RedisSentinels` reads from a live Sentinel.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::exit::HelperExit;
use crate::sentinel::{
    AclUser, Addr, Credentials, RedisSentinels, SENTINEL_PORT, SentinelView, Sentinels, parse_addr,
    read_password,
};

/// The arguments of `redis-ha sentinel-view`.
#[derive(Debug, clap::Args)]
pub(crate) struct ViewArgs {
    /// The Sentinel to ask: HOST:PORT or [IPV6]:PORT.
    #[arg(long, value_parser = parse_sentinel)]
    sentinel: Addr,
    /// The name the Sentinel monitors the master under.
    #[arg(long)]
    master: String,
    /// A file whose first line is the Sentinel's password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The Sentinel's ACL user to authenticate as (Redis 6.2+); needs --password-file.
    #[arg(long, requires = "password_file", value_parser = parse_user)]
    user: Option<AclUser>,
    /// For the whole exchange with the Sentinel.
    #[arg(long, default_value = "1000")]
    timeout_ms: u64,
}

fn parse_sentinel(v: &str) -> Result<Addr, String> {
    parse_addr(v, SENTINEL_PORT)
}

fn parse_user(v: &str) -> Result<AclUser, String> {
    AclUser::parse("--user", v)
}

/// Prints the view on stdout; Sentinel's contract for the rest: retry when unreachable
/// or unreadable, give up on an unknown master, refused credentials, an unreadable
/// password file.
pub(crate) fn run(args: &ViewArgs) -> HelperExit {
    let credentials = match &args.password_file {
        Some(file) => match read_password(file) {
            Ok(password) => Some(Credentials {
                user: args.user.clone(),
                password,
            }),
            Err(e) => {
                eprintln!(
                    "redis-ha sentinel-view: cannot read the password file {}: {e}",
                    file.display()
                );
                return HelperExit::GiveUp;
            }
        },
        None => None,
    };
    let client = RedisSentinels {
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        credentials,
        replicas: None,
        deadline: Deadline::NONE,
    };
    match client.view(&args.sentinel, &args.master) {
        Ok(view) => {
            print!("{}", render(&view));
            HelperExit::Done
        }
        Err(e) => {
            eprintln!("redis-ha sentinel-view: {e}");
            (&e).into()
        }
    }
}

/// One `key: value` line per field; replicas and peers sorted by address, each replica's
/// lines keyed by its address.
pub(crate) fn render(v: &SentinelView) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{key}: {value}");
    };
    line("sentinel", &v.sentinel);
    line("master", &v.master.addr);
    line("master flags", &v.master.flags.join(","));
    line("master config-epoch", &v.master.config_epoch);
    line("master num-other-sentinels", &v.master.num_other_sentinels);
    line("master quorum", &v.master.quorum);
    let mut replicas: Vec<_> = v.replicas.iter().collect();
    replicas.sort_by(|a, b| a.addr.cmp(&b.addr));
    for r in replicas {
        let key = |field: &str| format!("replica {} {field}", r.addr);
        line(&key("flags"), &r.flags.join(","));
        line(&key("link"), &if r.link_ok { "ok" } else { "err" });
        let master = r
            .master
            .as_ref()
            .map_or("none".to_string(), Addr::to_string);
        line(&key("master"), &master);
        let offset = r.repl_offset.map_or("none".to_string(), |o| o.to_string());
        line(&key("offset"), &offset);
        // Never up since it started: Sentinel's -1000.
        let down = if r.link_down == Duration::MAX {
            "never up".to_string()
        } else {
            r.link_down.as_millis().to_string()
        };
        line(&key("link-down-ms"), &down);
    }
    let mut peers: Vec<_> = v.sentinels.iter().map(|p| &p.addr).collect();
    peers.sort();
    for p in peers {
        line("peer", p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentinel::{MasterView, Peer, ReplicaView, SentinelError};

    fn addr(host: &str, port: u16) -> Addr {
        Addr {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_view_prints_one_sorted_line_per_field() {
        let replica = |host: &str, flags: &[&str], master: Option<Addr>| ReplicaView {
            addr: addr(host, 6379),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            link_ok: master.is_some(),
            master,
            repl_offset: Some(42),
            link_down: Duration::ZERO,
            candidacy: Default::default(),
        };
        let view = SentinelView {
            sentinel: addr("fd00::1", 26379),
            id: Some("s1".into()),
            master: MasterView {
                addr: addr("10.0.0.2", 6379),
                flags: vec!["master".into()],
                config_epoch: 3,
                num_other_sentinels: 2,
                quorum: 2,
                down_after: Duration::from_secs(2),
                failover_timeout: Duration::from_secs(10),
                failover_state: None,
                last_ok_ping: Duration::ZERO,
                s_down_for: None,
                master_for: None,
            },
            replicas: vec![
                replica("10.0.0.3", &["slave"], Some(addr("10.0.0.2", 6379))),
                replica("10.0.0.1", &["s_down", "slave", "disconnected"], None),
            ],
            sentinels: ["10.0.0.3", "10.0.0.1"]
                .map(|host| Peer {
                    addr: addr(host, 26379),
                    id: None,
                })
                .into(),
        };
        assert_eq!(
            render(&view),
            "sentinel: [fd00::1]:26379\n\
             master: 10.0.0.2:6379\n\
             master flags: master\n\
             master config-epoch: 3\n\
             master num-other-sentinels: 2\n\
             master quorum: 2\n\
             replica 10.0.0.1:6379 flags: s_down,slave,disconnected\n\
             replica 10.0.0.1:6379 link: err\n\
             replica 10.0.0.1:6379 master: none\n\
             replica 10.0.0.1:6379 offset: 42\n\
             replica 10.0.0.1:6379 link-down-ms: 0\n\
             replica 10.0.0.3:6379 flags: slave\n\
             replica 10.0.0.3:6379 link: ok\n\
             replica 10.0.0.3:6379 master: 10.0.0.2:6379\n\
             replica 10.0.0.3:6379 offset: 42\n\
             replica 10.0.0.3:6379 link-down-ms: 0\n\
             peer: 10.0.0.1:26379\n\
             peer: 10.0.0.3:26379\n"
        );
    }

    #[test]
    fn sentinel_errors_follow_the_helper_contract() {
        let a = addr("h", 1);
        let r = String::new;
        let table = [
            (
                SentinelError::Unreachable {
                    addr: a.clone(),
                    reason: r(),
                },
                1,
            ),
            (
                SentinelError::Protocol {
                    addr: a.clone(),
                    reason: r(),
                },
                1,
            ),
            (
                SentinelError::UnknownMaster {
                    addr: a.clone(),
                    name: r(),
                },
                2,
            ),
            (
                SentinelError::Auth {
                    addr: a.clone(),
                    reason: r(),
                },
                2,
            ),
        ];
        for (e, code) in table {
            assert_eq!(crate::exit::Exit::code(HelperExit::from(&e)), code, "{e}");
        }
    }
}
