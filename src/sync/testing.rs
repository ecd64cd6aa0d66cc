//! Addresses for the sync unit tests: Redis and Sentinel `n` live on 10.0.0.n.

use crate::sentinel::Addr;

pub(super) fn addr(host: &str, port: u16) -> Addr {
    Addr {
        host: host.into(),
        port,
    }
}

pub(super) fn redis(n: u8) -> Addr {
    addr(&format!("10.0.0.{n}"), 6379)
}

pub(super) fn sentinel(n: u8) -> Addr {
    addr(&format!("10.0.0.{n}"), 26379)
}
