//! Sentinel's replies (flat field/value arrays, or error lines) turned into views and
//! errors, without I/O: the client hands over what the wire gave.

use std::time::Duration;

use redis::Value;

use super::{
    Addr, Candidacy, Credentials, MasterView, Peer, ReplicaView, Replication, SentinelError,
    SentinelView,
};

/// One entry of a `SENTINEL MASTER/REPLICAS/SENTINELS` reply: its fields in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("field {key:?} is missing"))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        number(key, self.required(key)?)
    }

    fn optional_number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.get(key).map(|v| number(key, v)).transpose()
    }

    fn addr(&self) -> Result<Addr, String> {
        let host = self.required("ip")?;
        if host.is_empty() {
            return Err("field \"ip\" is empty".into());
        }
        Ok(Addr {
            host: host.to_string(),
            port: self.number("port")?,
        })
    }

    fn flags(&self) -> Result<Vec<String>, String> {
        Ok(self
            .required("flags")?
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("field {key:?} is not a number: {value:?}"))
}

fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| format!("a field is not UTF-8: {:?}", String::from_utf8_lossy(bytes))),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        Value::Okay => Ok("OK".into()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// One entry: a flat `[field, value, ...]` array (RESP2) or a map (RESP3).
pub(crate) fn record(value: &Value) -> Result<Fields, String> {
    match value {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(format!(
                    "expected field/value pairs, got {} items",
                    items.len()
                ));
            }
            items
                .chunks(2)
                .map(|pair| Ok((text(&pair[0])?, text(&pair[1])?)))
                .collect::<Result<_, String>>()
                .map(Fields)
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect::<Result<_, String>>()
            .map(Fields),
        other => Err(format!("expected field/value pairs, got {other:?}")),
    }
}

/// A list of entries, as `SENTINEL REPLICAS` and `SENTINEL SENTINELS` give.
pub(crate) fn records(value: &Value) -> Result<Vec<Fields>, String> {
    match value {
        Value::Array(items) => items.iter().map(record).collect(),
        other => Err(format!("expected a list of entries, got {other:?}")),
    }
}

pub(crate) fn master(f: &Fields) -> Result<MasterView, String> {
    Ok(MasterView {
        addr: f.addr()?,
        flags: f.flags()?,
        config_epoch: f.number("config-epoch")?,
        num_other_sentinels: f.number("num-other-sentinels")?,
        quorum: f.number("quorum")?,
        // Sentinel's own default when a (very old) Sentinel does not say.
        down_after: Duration::from_millis(
            f.optional_number("down-after-milliseconds")?
                .unwrap_or(30_000),
        ),
        failover_timeout: Duration::from_millis(
            f.optional_number("failover-timeout")?.unwrap_or(180_000),
        ),
        failover_state: f.get("failover-state").map(str::to_string),
        last_ok_ping: Duration::from_millis(f.optional_number("last-ok-ping-reply")?.unwrap_or(0)),
        s_down_for: f.optional_number("s-down-time")?.map(Duration::from_millis),
        master_for: f
            .optional_number("role-reported-time")?
            .map(Duration::from_millis),
    })
}

pub(crate) fn replica(f: &Fields) -> Result<ReplicaView, String> {
    // A replica that never answered INFO (e.g. the old master, dead since the failover)
    // says `master-host ?` and `master-port 0`: it follows nobody we know.
    let master = match (
        f.get("master-host"),
        f.optional_number::<u16>("master-port")?,
    ) {
        (Some(host), Some(port)) if !host.is_empty() && host != "?" && port != 0 => Some(Addr {
            host: host.to_string(),
            port,
        }),
        _ => None,
    };
    Ok(ReplicaView {
        addr: f.addr()?,
        flags: f.flags()?,
        link_ok: f.get("master-link-status") == Some("ok"),
        master,
        repl_offset: f.optional_number("slave-repl-offset")?,
        // Redis says `master_link_down_since_seconds:-1` while the link has never been up
        // since it started (a restarted replica mid-sync), and Sentinel passes on -1000:
        // down since forever, never recent.
        link_down: match f.optional_number::<i64>("master-link-down-time")? {
            Some(ms) if ms < 0 => Duration::MAX,
            Some(ms) => Duration::from_millis(ms.unsigned_abs()),
            None => Duration::ZERO,
        },
        candidacy: Candidacy {
            priority: f.optional_number("slave-priority")?,
            run_id: f
                .get("runid")
                .filter(|id| !id.is_empty() && *id != "?")
                .map(str::to_string),
            info_age: f
                .optional_number("info-refresh")?
                .map(Duration::from_millis),
            last_ok_ping: f
                .optional_number("last-ok-ping-reply")?
                .map(Duration::from_millis),
        },
    })
}

pub(crate) fn sentinel(f: &Fields) -> Result<Peer, String> {
    Ok(Peer {
        addr: f.addr()?,
        id: f
            .get("runid")
            .filter(|id| !id.is_empty())
            .map(str::to_string),
    })
}

/// What the reply to `AUTH` means: any error there is about our credentials, and says
/// whom we tried to be (a wrong user and a wrong password look alike: `WRONGPASS`).
pub(crate) fn auth_reply(
    sentinel: &Addr,
    credentials: &Credentials,
    reply: &Value,
) -> Result<(), SentinelError> {
    match reply {
        Value::ServerError(e) => Err(SentinelError::Auth {
            addr: sentinel.clone(),
            reason: format!(
                "as {}: {}",
                credentials.who(),
                server_text(e.code(), e.details())
            ),
        }),
        _ => Ok(()),
    }
}

/// The replies to `SENTINEL MASTER`, `SENTINEL REPLICAS`, `SENTINEL SENTINELS` and
/// `SENTINEL MYID`, in that order, as one view.
pub(crate) fn view(
    sentinel: &Addr,
    master_name: &str,
    master_reply: &Value,
    replicas_reply: &Value,
    sentinels_reply: &Value,
    myid_reply: &Value,
) -> Result<SentinelView, SentinelError> {
    for reply in [master_reply, replicas_reply, sentinels_reply, myid_reply] {
        if let Value::ServerError(e) = reply {
            return Err(server_error(sentinel, master_name, e.code(), e.details()));
        }
    }
    let protocol = |what: &str, reason: String| SentinelError::Protocol {
        addr: sentinel.clone(),
        reason: format!("{what} {master_name}: {reason}"),
    };
    let master = record(master_reply)
        .and_then(|f| master(&f))
        .map_err(|r| protocol("SENTINEL MASTER", r))?;
    let replicas = records(replicas_reply)
        .and_then(|list| list.iter().map(replica).collect())
        .map_err(|r| protocol("SENTINEL REPLICAS", r))?;
    let sentinels = records(sentinels_reply)
        .and_then(|list| list.iter().map(self::sentinel).collect())
        .map_err(|r| protocol("SENTINEL SENTINELS", r))?;
    let id = text(myid_reply).ok().filter(|id| !id.is_empty());
    Ok(SentinelView {
        sentinel: sentinel.clone(),
        id,
        master,
        replicas,
        sentinels,
    })
}

/// The reply to `INFO replication` (a bulk string of `key:value` lines).
pub(crate) fn replication(redis: &Addr, reply: &Value) -> Result<Replication, SentinelError> {
    let protocol = |reason: String| SentinelError::Protocol {
        addr: redis.clone(),
        reason,
    };
    let text = match reply {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::ServerError(e) => return Err(protocol(server_text(e.code(), e.details()))),
        other => return Err(protocol(format!("INFO replication: unexpected {other:?}"))),
    };
    let field = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim_end().split_once(':'))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    // -1 ("never") and absent both read as unknown.
    let number = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok());
    let role = field("role").ok_or_else(|| protocol("INFO replication has no role".into()))?;
    let is_replica = role == "slave";
    Ok(Replication {
        offset: number(if is_replica {
            "slave_repl_offset"
        } else {
            "master_repl_offset"
        }),
        master: match (field("master_host"), number("master_port")) {
            (Some(host), Some(port)) => u16::try_from(port).ok().map(|port| Addr { host, port }),
            _ => None,
        },
        link_up: field("master_link_status").map(|v| v == "up"),
        backlog: number("repl_backlog_histlen"),
        role,
    })
}

/// A command's `+OK`, or the error it got instead.
pub(crate) fn ok(addr: &Addr, master_name: &str, reply: &Value) -> Result<(), SentinelError> {
    match reply {
        Value::Okay => Ok(()),
        Value::SimpleString(s) if s == "OK" => Ok(()),
        Value::ServerError(e) => Err(server_error(addr, master_name, e.code(), e.details())),
        other => Err(SentinelError::Protocol {
            addr: addr.clone(),
            reason: format!("expected OK, got {other:?}"),
        }),
    }
}

/// The value of `CONFIG GET <name>` (a `[name, value]` pair), as a number.
pub(crate) fn config_number(addr: &Addr, name: &str, reply: &Value) -> Result<u32, SentinelError> {
    let protocol = |reason: String| SentinelError::Protocol {
        addr: addr.clone(),
        reason,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match reply {
        Value::Array(pair) | Value::Set(pair) if pair.len() == 2 => {
            let value = text(&pair[1]).filter(|_| text(&pair[0]).as_deref() == Some(name));
            value
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| protocol(format!("CONFIG GET {name}: unexpected {reply:?}")))
        }
        Value::Map(pairs) if pairs.len() == 1 => text(&pairs[0].1)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| protocol(format!("CONFIG GET {name}: unexpected {reply:?}"))),
        Value::ServerError(e) => Err(server_error(addr, "", e.code(), e.details())),
        other => Err(protocol(format!("CONFIG GET {name}: unexpected {other:?}"))),
    }
}

/// An error line from a `SENTINEL` command, by its code and text.
pub(crate) fn server_error(
    sentinel: &Addr,
    master_name: &str,
    code: &str,
    details: Option<&str>,
) -> SentinelError {
    let addr = sentinel.clone();
    let reason = server_text(code, details);
    match code {
        // `-NOAUTH Authentication required.`, `-WRONGPASS ...`, `-NOPERM this user has
        // no permissions to run the 'sentinel|master' command`.
        "NOAUTH" | "WRONGPASS" | "NOPERM" => SentinelError::Auth { addr, reason },
        // `-ERR No such master with that name` (Redis 7.0 sentinel.c).
        "ERR" if details.is_some_and(|d| d.starts_with("No such master")) => {
            SentinelError::UnknownMaster {
                addr,
                name: master_name.to_string(),
            }
        }
        _ => SentinelError::Protocol { addr, reason },
    }
}

/// The error line as Redis wrote it.
fn server_text(code: &str, details: Option<&str>) -> String {
    match details {
        Some(d) => format!("{code} {d}"),
        None => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! Fed with replies captured byte for byte from Redis 7.0.15 Sentinels in `testdata/`:
    //! `SENTINEL MASTER|REPLICAS|SENTINELS redis-ha` sent to Sentinel 10.213.1.11 of the
    //! tests/it fixture (`RedisSet`) and its answer read off the socket, at each state.

    use super::*;

    fn resp(bytes: &[u8]) -> Value {
        redis::parse_redis_value(bytes).unwrap()
    }

    fn addr(host: &str, port: u16) -> Addr {
        Addr {
            host: host.into(),
            port,
        }
    }

    fn s1() -> Addr {
        addr("10.213.1.11", 26379)
    }

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| f.to_string()).collect()
    }

    /// A captured state: the three replies one Sentinel gave at one moment.
    struct Capture {
        name: &'static str,
        master: &'static [u8],
        replicas: &'static [u8],
        sentinels: &'static [u8],
    }

    macro_rules! capture {
        ($name:literal) => {
            Capture {
                name: $name,
                master: include_bytes!(concat!("testdata/", $name, ".master.resp")),
                replicas: include_bytes!(concat!("testdata/", $name, ".replicas.resp")),
                sentinels: include_bytes!(concat!("testdata/", $name, ".sentinels.resp")),
            }
        };
    }

    fn parse(c: &Capture) -> SentinelView {
        view(
            &s1(),
            "redis-ha",
            &resp(c.master),
            &resp(c.replicas),
            &resp(c.sentinels),
            &myid(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.name))
    }

    /// `SENTINEL MYID`'s answer.
    fn myid() -> Value {
        Value::BulkString(b"d3b8cc1e6b1f4d9e0a5e9c1f8c2b7a6e5d4c3b2a".to_vec())
    }

    struct ReplicaWant {
        addr: Addr,
        flags: &'static [&'static str],
        link_ok: bool,
        master: Option<Addr>,
        link_down_ms: u64,
    }

    /// Replica 10.213.1.`node`:6379 following 10.213.1.`master` (0: nobody known).
    fn rw(
        node: u8,
        flags: &'static [&'static str],
        link_ok: bool,
        master: u8,
        link_down_ms: u64,
    ) -> ReplicaWant {
        let n = |i: u8| addr(&format!("10.213.1.{i}"), 6379);
        ReplicaWant {
            addr: n(node),
            flags,
            link_ok,
            master: (master != 0).then(|| n(master)),
            link_down_ms,
        }
    }

    struct Want {
        capture: Capture,
        master: Addr,
        master_flags: &'static [&'static str],
        epoch: u64,
        replicas: Vec<ReplicaWant>,
    }

    #[test]
    fn captured_views_parse() {
        let n = |i: u8| addr(&format!("10.213.1.{i}"), 6379);
        let table = [
            Want {
                capture: capture!("healthy"),
                master: n(11),
                master_flags: &["master"],
                epoch: 0,
                replicas: vec![
                    rw(12, &["slave"], true, 11, 0),
                    rw(13, &["slave"], true, 11, 0),
                ],
            },
            // Sentinel 10.213.1.11 leads the failover after the master's SIGKILL.
            Want {
                capture: capture!("odown_failover_in_progress"),
                master: n(11),
                master_flags: &[
                    "s_down",
                    "o_down",
                    "master",
                    "disconnected",
                    "failover_in_progress",
                ],
                epoch: 0,
                replicas: vec![
                    rw(12, &["slave", "promoted"], false, 11, 2000),
                    rw(13, &["slave"], false, 11, 2000),
                ],
            },
            // The dead old master is listed as a replica nobody has heard from.
            Want {
                capture: capture!("after_failover_old_master_dead"),
                master: n(12),
                master_flags: &["master"],
                epoch: 1,
                replicas: vec![
                    rw(13, &["slave"], true, 12, 0),
                    rw(11, &["s_down", "slave", "disconnected"], false, 0, 0),
                ],
            },
            // Restarted, it says it is master (`role-reported master`) until a Sentinel
            // converts it, 8 to 10 s later.
            Want {
                capture: capture!("old_master_back_as_master"),
                master: n(12),
                master_flags: &["master"],
                epoch: 1,
                replicas: vec![
                    rw(13, &["slave"], true, 12, 0),
                    rw(11, &["slave"], false, 0, 0),
                ],
            },
        ];
        for want in table {
            let name = want.capture.name;
            let got = parse(&want.capture);
            assert_eq!(got.sentinel, s1(), "{name}");
            assert_eq!(got.master.addr, want.master, "{name}");
            assert_eq!(got.master.flags, flags(want.master_flags), "{name}");
            assert_eq!(got.master.config_epoch, want.epoch, "{name}");
            assert_eq!(got.master.num_other_sentinels, 2, "{name}");
            assert_eq!(got.master.quorum, 2, "{name}");
            // As the captures were made: down-after 1000, failover-timeout 10000.
            assert_eq!(got.master.down_after, Duration::from_secs(1), "{name}");
            assert_eq!(
                got.master.failover_timeout,
                Duration::from_secs(10),
                "{name}"
            );
            assert_eq!(got.replicas.len(), want.replicas.len(), "{name}: {got:?}");
            for w in &want.replicas {
                let r = got
                    .replicas
                    .iter()
                    .find(|r| r.addr == w.addr)
                    .unwrap_or_else(|| panic!("{name}: no replica {}: {got:?}", w.addr));
                assert_eq!(r.flags, flags(w.flags), "{name} {}", w.addr);
                assert_eq!(r.link_ok, w.link_ok, "{name} {}", w.addr);
                assert_eq!(r.master, w.master, "{name} {}", w.addr);
                assert_eq!(r.link_down.as_millis(), w.link_down_ms.into(), "{name}");
                assert!(r.repl_offset.is_some(), "{name} {}", w.addr);
            }
            assert_eq!(
                got.id.as_deref(),
                Some("d3b8cc1e6b1f4d9e0a5e9c1f8c2b7a6e5d4c3b2a"),
                "{name}"
            );
            let mut peers = got.sentinels.clone();
            peers.sort();
            assert_eq!(
                peers,
                [
                    Peer {
                        addr: addr("10.213.1.12", 26379),
                        id: Some("149a614cc53ad894edd3fefb5a5d3735af632e8a".into())
                    },
                    Peer {
                        addr: addr("10.213.1.13", 26379),
                        id: Some("56b22858243c9af478c482c545ba0ee534942290".into())
                    }
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn a_dead_replica_keeps_its_last_link_status_only_its_flags_change() {
        // Sentinel keeps the last INFO a replica gave: dead for 3 s, it still says
        // `master-link-status ok`. Only `s_down`/`disconnected` tell.
        let got = parse(&capture!("replica_dead"));
        let dead = got
            .replicas
            .iter()
            .find(|r| r.addr.host == "10.213.1.13")
            .unwrap();
        assert!(dead.has_flag("s_down"), "{dead:?}");
        assert!(dead.has_flag("disconnected"), "{dead:?}");
        assert!(dead.link_ok, "{dead:?}");
        assert_eq!(dead.link_down, Duration::ZERO);
        let alive = got
            .replicas
            .iter()
            .find(|r| r.addr.host == "10.213.1.11")
            .unwrap();
        assert_eq!(alive.flags, ["slave"]);
        assert!(alive.link_ok);
        assert_eq!(
            alive.master.as_ref().map(|m| m.host.as_str()),
            Some("10.213.1.12")
        );
    }

    #[test]
    fn a_link_never_up_since_a_restart_is_down_since_forever() {
        // Seen at a restarted old master's first sync: Sentinel passes on INFO's
        // `master_link_down_since_seconds:-1` as -1000. Refusing it made the whole view
        // unreadable, and three such views cost the cluster its majority for a second.
        let fields = |down: &str| {
            let pairs = [
                ("ip", "10.213.1.12"),
                ("port", "6379"),
                ("flags", "slave"),
                ("master-link-status", "err"),
                ("master-host", "10.213.1.13"),
                ("master-port", "6379"),
                ("master-link-down-time", down),
            ];
            let items = pairs
                .iter()
                .flat_map(|(k, v)| [k, v])
                .map(|t| Value::BulkString(t.as_bytes().to_vec()))
                .collect();
            record(&Value::Array(items)).unwrap()
        };
        assert_eq!(replica(&fields("-1000")).unwrap().link_down, Duration::MAX);
        assert_eq!(
            replica(&fields("2500")).unwrap().link_down,
            Duration::from_millis(2500)
        );
        assert!(replica(&fields("soon")).is_err());
    }

    #[test]
    fn error_lines_map_to_error_kinds() {
        let table: [(&[u8], &str); 6] = [
            (b"-ERR No such master with that name\r\n", "unknown master"),
            (b"-NOAUTH Authentication required.\r\n", "auth"),
            (
                b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                "auth",
            ),
            (
                b"-NOPERM this user has no permissions to run the 'sentinel|master' command\r\n",
                "auth",
            ),
            (
                b"-ERR unknown command 'SENTINEL', with args beginning with: 'MASTER' 'x' \r\n",
                "protocol",
            ),
            (
                b"-LOADING Redis is loading the dataset in memory\r\n",
                "protocol",
            ),
        ];
        let ok = resp(include_bytes!("testdata/healthy.master.resp"));
        for (line, want) in table {
            let reply = resp(line);
            let err = view(&s1(), "redis-ha", &reply, &reply, &reply, &reply).unwrap_err();
            let got = match &err {
                SentinelError::UnknownMaster { name, .. } => {
                    assert_eq!(name, "redis-ha");
                    "unknown master"
                }
                SentinelError::Auth { .. } => "auth",
                SentinelError::Protocol { .. } => "protocol",
                SentinelError::Unreachable { .. } => "unreachable",
            };
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
            // The first error wins even when an earlier reply was fine.
            let err2 = view(&s1(), "redis-ha", &ok, &reply, &reply, &reply).unwrap_err();
            assert_eq!(err2.to_string(), err.to_string());
        }
    }

    #[test]
    fn an_error_to_auth_is_an_auth_error_whatever_its_code() {
        let default_user = Credentials {
            user: None,
            password: "pw".into(),
        };
        let acl_user = Credentials {
            user: Some(crate::sentinel::AclUser::parse("u", "rha-observer").unwrap()),
            password: "pw".into(),
        };
        for line in [
            &b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"[..],
            b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
        ] {
            let err = auth_reply(&s1(), &default_user, &resp(line)).unwrap_err();
            assert!(matches!(err, SentinelError::Auth { .. }), "{err}");
            let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
            assert!(err.to_string().ends_with(&text), "{err}");
            assert!(err.to_string().contains("as the default user: "), "{err}");
            let err = auth_reply(&s1(), &acl_user, &resp(line)).unwrap_err();
            assert!(err.to_string().contains("as user rha-observer: "), "{err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        assert!(auth_reply(&s1(), &acl_user, &resp(b"+OK\r\n")).is_ok());
    }

    #[test]
    fn info_replication_of_a_master_and_of_a_replica_still_syncing() {
        // `INFO replication` from Redis 7.0.15, captured with redis-cli during the
        // replica's first sync (its link still down).
        let bulk = |text: &str| Value::BulkString(text.replace('\n', "\r\n").into_bytes());
        let r = addr("127.0.0.1", 6379);
        let master = replication(&r, &bulk(include_str!("testdata/master.info"))).unwrap();
        assert_eq!(
            master,
            Replication {
                role: "master".into(),
                offset: Some(50),
                master: None,
                link_up: None,
                backlog: Some(50),
            }
        );
        let replica = replication(&r, &bulk(include_str!("testdata/replica.info"))).unwrap();
        assert_eq!(
            replica,
            Replication {
                role: "slave".into(),
                offset: Some(1),
                master: Some(r.clone()),
                link_up: Some(false),
                backlog: Some(0),
            }
        );
        assert!(replication(&r, &bulk("# Replication\n")).is_err());
        let noauth = resp(b"-NOAUTH Authentication required.\r\n");
        let err = replication(&r, &noauth).unwrap_err();
        assert!(
            err.to_string().ends_with("NOAUTH Authentication required."),
            "{err}"
        );
    }

    #[test]
    fn unreadable_answers_are_protocol_errors_naming_the_field() {
        let ok = resp(include_bytes!("testdata/healthy.master.resp"));
        let empty = resp(b"*0\r\n");
        let table: [(&[u8], &str); 5] = [
            (
                b"*2\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n",
                "\"port\" is missing",
            ),
            (
                b"*4\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n$4\r\nport\r\n$3\r\nabc\r\n",
                "\"port\" is not a number",
            ),
            (b"*3\r\n$2\r\nip\r\n$1\r\nx\r\n$4\r\nport\r\n", "pairs"),
            (b"$2\r\nhi\r\n", "pairs"),
            (b":5\r\n", "pairs"),
        ];
        for (bytes, want) in table {
            let err = view(&s1(), "redis-ha", &resp(bytes), &empty, &empty, &myid()).unwrap_err();
            assert!(
                matches!(err, SentinelError::Protocol { .. }) && err.to_string().contains(want),
                "{err}"
            );
        }
        // A replica list that is not a list.
        let err = view(&s1(), "redis-ha", &ok, &resp(b"+OK\r\n"), &empty, &myid()).unwrap_err();
        assert!(err.to_string().contains("SENTINEL REPLICAS"), "{err}");
    }

    #[test]
    fn resp3_maps_read_like_flat_arrays() {
        let flat = record(&resp(
            b"*4\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n$4\r\nport\r\n$5\r\n26379\r\n",
        ))
        .unwrap();
        let map = record(&resp(
            b"%2\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n$4\r\nport\r\n:26379\r\n",
        ))
        .unwrap();
        assert_eq!(flat, map);
        assert_eq!(sentinel(&map).unwrap().addr, addr("10.0.0.1", 26379));
    }

    #[test]
    fn ipv6_hosts_stay_without_brackets() {
        let f = record(&resp(
            b"*4\r\n$2\r\nip\r\n$13\r\nfd00:213:1::1\r\n$4\r\nport\r\n$4\r\n6379\r\n",
        ))
        .unwrap();
        let a = sentinel(&f).unwrap().addr;
        assert_eq!(a.host, "fd00:213:1::1");
        assert_eq!(a.to_string(), "[fd00:213:1::1]:6379");
    }
}
