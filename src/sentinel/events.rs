//! Sentinel's events as it publishes them (every event, NOTICE level included, on its own
//! pub/sub, at once): one subscription to one Sentinel, bounded in every step.

use std::time::Duration;

use redis::{IntoConnectionInfo, RedisConnectionInfo, RedisError, Value};

use super::{Addr, Credentials, SentinelError};

/// One event: its name (`+switch-master`, `+odown`...) and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) description: String,
}

impl Event {
    /// Whether this is one Sentinel finding the master subjectively down: no verdict
    /// yet (a majority of them, each reaching `+odown` ~0.1 s later, is), and a sync and
    /// a guard check at it on every node load the machine while the Sentinels elect their
    /// leader. In bench-failover (2026-12-04) two Sentinels began a failover each in 4 or
    /// 5 of 10 rounds in four runs that synced at it, and in 0 of 10 in one that did not;
    /// when all three begin, the election splits and the failover waits 20 s.
    pub(crate) fn is_masters_sdown(&self) -> bool {
        self.name == "+sdown" && self.description.starts_with("master ")
    }
}

/// As Sentinel gives it to a notification script and publishes it: `+odown master m
/// 10.0.0.1 6379 #quorum 2/2`.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.description)
    }
}

/// How a subscription is made and kept.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    /// For connecting, authenticating and subscribing, and for each PING.
    pub(crate) timeout: Duration,
    /// Silence this long is checked with a PING: a Sentinel host that went away without
    /// a reset is noticed, and the subscription made again.
    pub(crate) idle: Duration,
    pub(crate) credentials: Option<Credentials>,
}

impl Subscription {
    /// Subscribes to every event of the Sentinel at `addr` and hands each to `on_event`;
    /// returns only when the connection fails (the caller subscribes again).
    pub(crate) fn follow(
        &self,
        addr: &Addr,
        mut on_event: impl FnMut(Event),
    ) -> Result<(), SentinelError> {
        let unreachable = |e: redis::RedisError| SentinelError::Unreachable {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let mut con = connect(addr, self.timeout).map_err(unreachable)?;
        con.set_read_timeout(Some(self.timeout))
            .and_then(|()| con.set_write_timeout(Some(self.timeout)))
            .map_err(unreachable)?;
        if let Some(credentials) = &self.credentials {
            credentials
                .auth_command()
                .query::<()>(&mut con)
                .map_err(|e| SentinelError::Auth {
                    addr: addr.clone(),
                    reason: format!("as {}: {e}", credentials.who()),
                })?;
        }
        // PSUBSCRIBE on the plain connection, its reply checked: the crate's
        // `PubSub::psubscribe` drops an error reply (a user without `+psubscribe` or the
        // channel), and the watcher would then wait for events that never come.
        redis::cmd("PSUBSCRIBE")
            .arg("*")
            .query::<Value>(&mut con)
            .map_err(|e| match (e.code(), e.detail()) {
                (Some(code), detail) => refused(
                    addr,
                    "PSUBSCRIBE *",
                    &format!("{code} {}", detail.unwrap_or("")),
                ),
                _ => unreachable(e),
            })?;
        let mut pubsub = con.as_pubsub();
        pubsub
            .set_read_timeout(Some(self.idle))
            .map_err(unreachable)?;
        loop {
            match pubsub.get_message() {
                Ok(msg) => on_event(Event {
                    name: msg.get_channel_name().to_string(),
                    description: msg.get_payload::<String>().unwrap_or_default(),
                }),
                Err(e) if e.is_timeout() => {
                    pubsub
                        .set_read_timeout(Some(self.timeout))
                        .map_err(unreachable)?;
                    // An error reply (`NOPERM` without `+ping`) is a value here, not an
                    // error: check it, or a dead subscription would look alive.
                    match pubsub.ping::<Value>().map_err(unreachable)? {
                        Value::ServerError(e) => {
                            let said = format!("{} {}", e.code(), e.details().unwrap_or(""));
                            return Err(refused(addr, "PING", &said));
                        }
                        _ => pubsub
                            .set_read_timeout(Some(self.idle))
                            .map_err(unreachable)?,
                    }
                }
                Err(e) => return Err(unreachable(e)),
            }
        }
    }
}

/// A command of the subscription that the Sentinel refused (`NOPERM`: the user lacks a
/// rule the README's "Redis ACL users" lists): retried like a lost connection, but said as
/// what it is.
fn refused(addr: &Addr, command: &str, said: &str) -> SentinelError {
    SentinelError::Auth {
        addr: addr.clone(),
        reason: format!("{command}: {}", said.trim_end()),
    }
}

/// A connection to `addr` within `timeout`, sending nothing before our own commands (no
/// `CLIENT SETINFO`, Redis 7.2+).
fn connect(addr: &Addr, timeout: Duration) -> Result<redis::Connection, RedisError> {
    let info = (addr.host.as_str(), addr.port)
        .into_connection_info()?
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
    redis::Client::open(info)?.get_connection_with_timeout(timeout)
}
