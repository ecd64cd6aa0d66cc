//! The sync: make `redis_role` say what the Sentinels say, so that at no instant two
//! nodes are primary. One sync (`once`), run by Sentinel's scripts (`crate::hooks`), by
//! `redis-ha sync`, and forever by `redis-ha sync --every` (`every`), which also runs the
//! syncs Sentinel's scripts hand over (`asked`).

mod asked;
mod error;
mod every;
mod once;
mod plan;
mod report;
mod run;
#[cfg(test)]
mod tests;
mod watch;

pub(crate) use error::SyncError;
pub(crate) use every::every;
pub(crate) use once::{finish, once};
#[cfg(test)]
pub(crate) use run::Sync;
pub(crate) use run::unix_now;
