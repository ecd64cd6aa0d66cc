//! The Sentinel helper's reconciliation: read the truth from Sentinel, map it to
//! Pacemaker nodes, write `redis_role` so that at no instant two nodes are primary.

mod nodes;
mod plan;
mod run;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod truth;

pub(crate) use run::{Assignment, Sync, SyncError, views, views_at_once};
pub(crate) use truth::decide;
