//! The real `Sentinels`: the redis crate, one connection and one pipelined round trip per
//! view, connecting, sending and reading all bounded by one deadline.

use std::time::{Duration, Instant};

use redis::{IntoConnectionInfo, RedisConnectionInfo, RedisError, Value};

use super::{Addr, SentinelError, SentinelView, Sentinels, parse};

/// Talks to Sentinels over TCP with the `redis` crate.
pub(crate) struct RedisSentinels {
    /// For the whole exchange: connecting, sending, and reading the answers.
    pub(crate) timeout: Duration,
    pub(crate) password: Option<String>,
}

impl Sentinels for RedisSentinels {
    fn view(&self, sentinel: &Addr, master_name: &str) -> Result<SentinelView, SentinelError> {
        let deadline = Instant::now() + self.timeout;
        let unreachable_err = |reason: String| SentinelError::Unreachable {
            addr: sentinel.clone(),
            reason,
        };
        let failed = |doing: &str, e: RedisError| {
            if e.is_timeout() {
                unreachable_err(format!("no {doing} within {:?}", self.timeout))
            } else if e.is_io_error() {
                unreachable_err(e.to_string())
            } else {
                SentinelError::Protocol {
                    addr: sentinel.clone(),
                    reason: e.to_string(),
                }
            }
        };
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| unreachable_err(format!("no answer within {:?}", self.timeout)))
        };

        // No `CLIENT SETINFO` (Redis 7.2+) on connect: nothing before our own pipeline.
        let info = (sentinel.host.as_str(), sentinel.port)
            .into_connection_info()
            .map_err(|e| unreachable_err(e.to_string()))?
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let mut con = redis::Client::open(info)
            .and_then(|client| client.get_connection_with_timeout(self.timeout))
            .map_err(|e| failed("connection", e))?;
        con.set_write_timeout(Some(left()?))
            .map_err(|e| failed("connection", e))?;

        // One round trip. AUTH rides in it: its own error text survives (the crate's
        // handshake would replace it with "Password authentication failed").
        let mut pipe = redis::pipe();
        if let Some(password) = &self.password {
            pipe.cmd("AUTH").arg(password);
        }
        for sub in ["MASTER", "REPLICAS", "SENTINELS"] {
            pipe.cmd("SENTINEL").arg(sub).arg(master_name);
        }
        con.send_packed_command(&pipe.get_packed_pipeline())
            .map_err(|e| failed("answer", e))?;
        // Read the replies ourselves: the crate's pipeline keeps reading after a timeout,
        // one read timeout per missing reply.
        let mut replies: Vec<Value> = Vec::with_capacity(pipe.len());
        for _ in 0..pipe.len() {
            con.set_read_timeout(Some(left()?))
                .map_err(|e| failed("answer", e))?;
            replies.push(con.recv_response().map_err(|e| failed("answer", e))?);
        }
        let replies = match self.password {
            Some(_) => {
                parse::auth_reply(sentinel, &replies[0])?;
                &replies[1..]
            }
            None => &replies[..],
        };
        let [master, replicas, sentinels] = replies else {
            unreachable!("one reply per command");
        };
        parse::view(sentinel, master_name, master, replicas, sentinels)
    }
}
