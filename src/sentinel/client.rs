//! The real `Sentinels` and `RedisServers`: the redis crate, one connection and one
//! pipelined round trip per question, connecting, sending and reading all bounded by one
//! deadline.

use std::time::{Duration, Instant};

use redis::{IntoConnectionInfo, RedisConnectionInfo, RedisError, Value};

use super::{Addr, RedisServers, Replication, SentinelError, SentinelView, Sentinels, parse};

/// Talks to Sentinels over TCP with the `redis` crate.
pub(crate) struct RedisSentinels {
    /// For the whole exchange: connecting, sending, and reading the answers.
    pub(crate) timeout: Duration,
    pub(crate) password: Option<String>,
}

impl Sentinels for RedisSentinels {
    fn view(&self, sentinel: &Addr, master_name: &str) -> Result<SentinelView, SentinelError> {
        let mut pipe = redis::pipe();
        for sub in ["MASTER", "REPLICAS", "SENTINELS"] {
            pipe.cmd("SENTINEL").arg(sub).arg(master_name);
        }
        let replies = exchange(sentinel, self.timeout, self.password.as_deref(), &pipe)?;
        let [master, replicas, sentinels] = &replies[..] else {
            unreachable!("one reply per command");
        };
        parse::view(sentinel, master_name, master, replicas, sentinels)
    }
}

/// Asks Redis servers themselves (the status screen's replication lag).
pub(crate) struct RedisClients {
    pub(crate) timeout: Duration,
    pub(crate) password: Option<String>,
}

impl RedisServers for RedisClients {
    fn replication(&self, redis: &Addr) -> Result<Replication, SentinelError> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").arg("replication");
        let replies = exchange(redis, self.timeout, self.password.as_deref(), &pipe)?;
        parse::replication(redis, &replies[0])
    }
}

/// A connection to `addr` within `timeout`, sending nothing before our own commands (no
/// `CLIENT SETINFO`, Redis 7.2+).
pub(super) fn connect(addr: &Addr, timeout: Duration) -> Result<redis::Connection, RedisError> {
    let info = (addr.host.as_str(), addr.port)
        .into_connection_info()?
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
    redis::Client::open(info)?.get_connection_with_timeout(timeout)
}

/// Sends `pipe` (preceded by AUTH when there is a password) in one round trip and returns
/// its replies, AUTH's checked and dropped.
fn exchange(
    addr: &Addr,
    timeout: Duration,
    password: Option<&str>,
    pipe: &redis::Pipeline,
) -> Result<Vec<Value>, SentinelError> {
    let deadline = Instant::now() + timeout;
    let unreachable_err = |reason: String| SentinelError::Unreachable {
        addr: addr.clone(),
        reason,
    };
    let failed = |doing: &str, e: RedisError| {
        if e.is_timeout() {
            unreachable_err(format!("no {doing} within {timeout:?}"))
        } else if e.is_io_error() {
            unreachable_err(e.to_string())
        } else {
            SentinelError::Protocol {
                addr: addr.clone(),
                reason: e.to_string(),
            }
        }
    };
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| unreachable_err(format!("no answer within {timeout:?}")))
    };

    let mut con = connect(addr, timeout).map_err(|e| failed("connection", e))?;
    con.set_write_timeout(Some(left()?))
        .map_err(|e| failed("connection", e))?;

    // AUTH rides in the same round trip: its own error text survives (the crate's
    // handshake would replace it with "Password authentication failed").
    let mut packed = Vec::new();
    if let Some(password) = password {
        packed = redis::cmd("AUTH").arg(password).get_packed_command();
    }
    packed.extend(pipe.get_packed_pipeline());
    con.send_packed_command(&packed)
        .map_err(|e| failed("answer", e))?;
    // Read the replies ourselves: the crate's pipeline keeps reading after a timeout,
    // one read timeout per missing reply.
    let expected = pipe.len() + usize::from(password.is_some());
    let mut replies: Vec<Value> = Vec::with_capacity(expected);
    for _ in 0..expected {
        con.set_read_timeout(Some(left()?))
            .map_err(|e| failed("answer", e))?;
        replies.push(con.recv_response().map_err(|e| failed("answer", e))?);
    }
    if password.is_some() {
        parse::auth_reply(addr, &replies.remove(0))?;
    }
    Ok(replies)
}
