//! The real `Sentinels`: the redis crate, with bounded timeouts.

use std::time::Duration;

use super::{Addr, SentinelError, SentinelView, Sentinels};

/// Talks to Sentinels over TCP with the `redis` crate.
pub(crate) struct RedisSentinels {
    pub(crate) timeout: Duration,
    pub(crate) password: Option<String>,
}

impl Sentinels for RedisSentinels {
    fn view(&self, sentinel: &Addr, _master_name: &str) -> Result<SentinelView, SentinelError> {
        let _ = (&self.timeout, &self.password);
        Err(SentinelError::Unreachable {
            addr: sentinel.clone(),
            reason: "not implemented yet".into(),
        })
    }
}
