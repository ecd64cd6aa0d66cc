//! The hand-off between Sentinel's scripts and the `redis-ha sync --every` service: the
//! scripts, which under Debian's sandboxed Sentinel have no rights on the CIB, ask the
//! service (root) over a unix socket in our run directory to sync, and exit as its sync
//! did. One typed line each way (`wire`), every read, write and connect under a deadline
//! (`line`, `client`), peers checked by their kernel-reported uid (`server`).

mod client;
mod line;
mod server;
mod wire;

use std::time::Duration;

pub(crate) use client::ask;
pub(crate) use server::{Listener, Peers};
pub(crate) use wire::{Answer, Origin, Request};

/// The user Sentinel runs as (Debian's unit: `User=redis`, `Group=redis`): the one caller
/// besides root, and the group the socket belongs to.
pub(crate) const CALLER: &str = "redis";

/// Connecting, and writing the request line.
const CONNECT: Duration = Duration::from_secs(2);
/// The whole request line must arrive this soon after the service accepted.
const REQUEST: Duration = Duration::from_secs(2);
/// The service answers within this, with `retry` when its sync has not finished by then
/// (a sync may queue 20 s for the lock and wait 10 s for a block).
const ANSWER: Duration = Duration::from_secs(40);
/// Writing the answer line.
const WRITE: Duration = Duration::from_secs(2);
/// A script's whole exchange, connect to answer: the service's bound and some slack,
/// well inside the 60 s after which Sentinel kills a script.
const EXCHANGE: Duration = Duration::from_secs(48);
/// Connections served at once; more are closed unanswered (their scripts retry). Sentinel
/// runs at most 16 scripts at once.
const MAX_CONNECTIONS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_exchange_ends_before_sentinel_kills_the_script() {
        const SENTINEL_KILLS_AFTER: Duration = Duration::from_secs(60);
        // The service's answer, however late, reaches the script before its own deadline.
        assert!(
            CONNECT + REQUEST + ANSWER + WRITE <= EXCHANGE,
            "the script gives up first"
        );
        assert!(EXCHANGE + Duration::from_secs(10) <= SENTINEL_KILLS_AFTER);
    }
}
