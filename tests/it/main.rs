//! Integration tests: the built binary driven the way Pacemaker, Sentinel and people drive
//! it, against real iptables in network namespaces, real Redis, and real Pacemaker tools.
//! Run as root (`make test`, which `.ci/run` calls).

mod fixture;
mod util;

mod acl;
mod agent_chains;
mod agent_cli;
mod agent_traffic;
mod agent_transaction;
mod backup;
mod cluster;
mod dns;
mod handoff;
mod helper_cli;
mod install;
mod locks;
mod peer_tools;
mod ports;
mod sentinels;
mod snippets;
mod sync;
