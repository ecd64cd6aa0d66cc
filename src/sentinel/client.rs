//! The real `Sentinels` and `RedisServers`: one connection and one pipelined round trip
//! per question, resolving, connecting, sending and reading all bounded by one deadline
//! (`wire`); the redis crate encodes the commands and decodes the replies.

use std::time::Duration;

use redis::Value;

use super::wire::{self, WireError};
use super::{
    Addr, Credentials, RedisServers, Replication, SentinelError, SentinelView, Sentinels, parse,
};
use crate::deadline::Deadline;

/// Talks to Sentinels over TCP with the `redis` crate.
#[derive(Debug)]
pub(crate) struct RedisSentinels {
    /// For the whole exchange: connecting, sending, and reading the answers.
    pub(crate) timeout: Duration,
    pub(crate) credentials: Option<Credentials>,
    /// The replicas themselves, for their offsets (None: their credentials unreadable).
    pub(crate) replicas: Option<RedisClients>,
    /// The run's: an exchange gets what is left of it when that is less than `timeout`.
    pub(crate) deadline: Deadline,
}

impl RedisSentinels {
    /// The same clients (the replicas' too), under the run's `deadline`.
    pub(crate) fn within(self, deadline: Deadline) -> Self {
        RedisSentinels {
            replicas: self.replicas.map(|r| r.within(deadline)),
            deadline,
            ..self
        }
    }

    fn exchange(&self, addr: &Addr, pipe: &redis::Pipeline) -> Result<Vec<Value>, SentinelError> {
        let timeout = self.deadline.bound(self.timeout);
        exchange(addr, timeout, self.credentials.as_ref(), pipe)
    }
}

impl Sentinels for RedisSentinels {
    fn view(&self, sentinel: &Addr, master_name: &str) -> Result<SentinelView, SentinelError> {
        let mut pipe = redis::pipe();
        for sub in ["MASTER", "REPLICAS", "SENTINELS"] {
            pipe.cmd("SENTINEL").arg(sub).arg(master_name);
        }
        pipe.cmd("SENTINEL").arg("MYID");
        let replies = self.exchange(sentinel, &pipe)?;
        let [master, replicas, sentinels, myid] = &replies[..] else {
            unreachable!("one reply per command");
        };
        parse::view(sentinel, master_name, master, replicas, sentinels, myid)
    }

    fn failover(&self, sentinel: &Addr, master_name: &str) -> Result<(), SentinelError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SENTINEL").arg("FAILOVER").arg(master_name);
        let replies = self.exchange(sentinel, &pipe)?;
        parse::ok(sentinel, master_name, &replies[0])
    }

    fn replica_offset(&self, redis: &Addr) -> Option<u64> {
        let info = self.replicas.as_ref()?.replication(redis).ok()?;
        (info.role == "slave").then_some(info.offset).flatten()
    }
}

/// Asks Redis servers themselves (the status screen's replication lag).
#[derive(Debug)]
pub(crate) struct RedisClients {
    pub(crate) timeout: Duration,
    pub(crate) credentials: Option<Credentials>,
    /// The run's: an exchange gets what is left of it when that is less than `timeout`.
    pub(crate) deadline: Deadline,
}

impl RedisClients {
    /// The same clients, under the run's `deadline`.
    pub(crate) fn within(self, deadline: Deadline) -> Self {
        RedisClients { deadline, ..self }
    }

    fn exchange(&self, addr: &Addr, pipe: &redis::Pipeline) -> Result<Vec<Value>, SentinelError> {
        let timeout = self.deadline.bound(self.timeout);
        exchange(addr, timeout, self.credentials.as_ref(), pipe)
    }
}

impl RedisServers for RedisClients {
    fn replication(&self, redis: &Addr) -> Result<Replication, SentinelError> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").arg("replication");
        let replies = self.exchange(redis, &pipe)?;
        parse::replication(redis, &replies[0])
    }

    fn priority(&self, redis: &Addr) -> Result<u32, SentinelError> {
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG").arg("GET").arg(PRIORITY);
        let replies = self.exchange(redis, &pipe)?;
        parse::config_number(redis, PRIORITY, &replies[0])
    }

    fn set_priority(&self, redis: &Addr, priority: u32) -> Result<(), SentinelError> {
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG").arg("SET").arg(PRIORITY).arg(priority);
        let replies = self.exchange(redis, &pipe)?;
        parse::ok(redis, "", &replies[0])
    }
}

/// The setting Sentinel's choice of a replica weighs first.
const PRIORITY: &str = "replica-priority";

/// Sends `pipe` (preceded by AUTH when there are credentials) in one round trip and returns
/// its replies, AUTH's checked and dropped. Resolving, connecting, sending and reading
/// are bounded by `timeout` as a whole, the replies by a size cap (`wire`); with no time
/// left, nothing is sent.
fn exchange(
    addr: &Addr,
    timeout: Duration,
    credentials: Option<&Credentials>,
    pipe: &redis::Pipeline,
) -> Result<Vec<Value>, SentinelError> {
    if timeout.is_zero() {
        return Err(SentinelError::Unreachable {
            addr: addr.clone(),
            reason: "not asked: no time left before the deadline".into(),
        });
    }
    // AUTH rides in the same round trip: its own error text survives.
    let mut packed = Vec::new();
    if let Some(credentials) = credentials {
        packed = credentials.auth_command().get_packed_command();
    }
    packed.extend(pipe.get_packed_pipeline());
    let expected = pipe.len() + usize::from(credentials.is_some());
    let mut replies = wire::exchange(addr, timeout, &packed, expected).map_err(|e| match e {
        WireError::Unreachable(reason) => SentinelError::Unreachable {
            addr: addr.clone(),
            reason,
        },
        WireError::Protocol(reason) => SentinelError::Protocol {
            addr: addr.clone(),
            reason,
        },
    })?;
    if let Some(credentials) = credentials {
        parse::auth_reply(addr, credentials, &replies.remove(0))?;
    }
    Ok(replies)
}
