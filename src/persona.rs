//! Which program the binary acts as, decided from the file name of `argv[0]` alone.

use std::ffi::OsStr;
use std::path::Path;

use crate::blocks::AgentKind;

/// The programs this one binary can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persona {
    /// An OCF resource agent, called through its link in the OCF provider directory.
    Agent(AgentKind),
    /// Sentinel's `client-reconfig-script` (`/usr/lib/redis-ha/sentinel-reconfig`).
    SentinelReconfig,
    /// Sentinel's `notification-script` (`/usr/lib/redis-ha/sentinel-notify`).
    SentinelNotify,
    /// The admin command line (`redis-ha`, or any name we do not know).
    Cli,
}

impl Persona {
    /// Exact names only: `RedisLBWriteBlock.bak` or `redislbwriteblock` is the CLI, not an agent.
    /// The link name is what counts, so `current_exe()` (which follows links) is never used.
    pub(crate) fn from_argv0(argv0: &OsStr) -> Self {
        let name = Path::new(argv0).file_name().and_then(OsStr::to_str);
        match name {
            Some("sentinel-reconfig") => Persona::SentinelReconfig,
            Some("sentinel-notify") => Persona::SentinelNotify,
            Some(name) => AgentKind::from_name(name).map_or(Persona::Cli, Persona::Agent),
            None => Persona::Cli,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_comes_from_the_exact_file_name() {
        let table = [
            ("RedisLBWriteBlock", Persona::Agent(AgentKind::Write)),
            ("RedisLBReadBlock", Persona::Agent(AgentKind::Read)),
            (
                "/usr/lib/ocf/resource.d/redis-ha/RedisLBWriteBlock",
                Persona::Agent(AgentKind::Write),
            ),
            ("./RedisLBReadBlock", Persona::Agent(AgentKind::Read)),
            ("redis-ha", Persona::Cli),
            ("/usr/sbin/redis-ha", Persona::Cli),
            ("redislbwriteblock", Persona::Cli),
            ("RedisLBWriteBlock.bak", Persona::Cli),
            ("RedisLBWriteBlock/", Persona::Agent(AgentKind::Write)),
            (
                "/usr/lib/redis-ha/sentinel-reconfig",
                Persona::SentinelReconfig,
            ),
            ("sentinel-notify", Persona::SentinelNotify),
            ("sentinel-notify.sh", Persona::Cli),
            ("", Persona::Cli),
        ];
        for (argv0, want) in table {
            assert_eq!(
                Persona::from_argv0(OsStr::new(argv0)),
                want,
                "argv0 {argv0:?}"
            );
        }
    }
}
