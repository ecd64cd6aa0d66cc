//! The environment Pacemaker's execd hands an agent, read into a typed value without any I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::Process;

/// Timeout assumed when the agent runs without one (by hand, or `crm_resource --force-*`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// What execd tells every agent, besides the resource parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OcfEnv {
    /// Resource name with any clone suffix (`:N`) stripped: stable across clone instances.
    pub(crate) instance: Option<String>,
    /// Monitor interval; absent means 0, which makes a monitor a probe.
    pub(crate) interval: Duration,
    /// The operation's timeout: every wait of ours must end well before it.
    pub(crate) timeout: Duration,
    /// `OCF_CHECK_LEVEL` (0 unless given).
    pub(crate) check_level: u32,
    /// Where state files live (`HA_RSCTMP`).
    pub(crate) rsctmp: PathBuf,
    /// ocf-tester's way of saying "pretend every binary is missing".
    pub(crate) fail_have_binary: bool,
}

impl OcfEnv {
    pub(crate) fn from_process(p: &Process) -> Self {
        let millis = |name| p.var(name).and_then(|v| v.trim().parse::<u64>().ok());
        Self {
            instance: p
                .var("OCF_RESOURCE_INSTANCE")
                .map(strip_clone_suffix)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            interval: Duration::from_millis(millis("OCF_RESKEY_CRM_meta_interval").unwrap_or(0)),
            timeout: millis("OCF_RESKEY_CRM_meta_timeout")
                .filter(|&ms| ms > 0)
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
            check_level: p
                .var("OCF_CHECK_LEVEL")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            rsctmp: PathBuf::from(p.var("HA_RSCTMP").unwrap_or("/run/resource-agents")),
            fail_have_binary: p.var("OCF_TESTER_FAIL_HAVE_BINARY") == Some("1"),
        }
    }

    pub(crate) fn is_probe(&self) -> bool {
        self.interval.is_zero()
    }

    /// How long this operation may spend on waits: the timeout less a margin for
    /// starting and exiting, so execd never has to SIGKILL us halfway through a change.
    pub(crate) fn budget(&self) -> Duration {
        let margin = (self.timeout / 10).max(Duration::from_secs(1));
        self.timeout
            .saturating_sub(margin)
            .max(Duration::from_millis(500))
    }
}

/// `RedisLBWriteBlock:2` → `RedisLBWriteBlock`: anonymous clone instances share one state.
fn strip_clone_suffix(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_process(&Process::new(["agent"], vars.iter().copied()))
    }

    #[test]
    fn clone_suffix_is_stripped_from_the_instance() {
        let table = [
            ("RedisLBWriteBlock:2", "RedisLBWriteBlock"),
            ("RedisLBWriteBlock", "RedisLBWriteBlock"),
            ("odd:name", "odd:name"),
            ("x:", "x:"),
        ];
        for (raw, want) in table {
            let e = env(&[("OCF_RESOURCE_INSTANCE", raw)]);
            assert_eq!(e.instance.as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn absent_interval_is_a_probe() {
        assert!(env(&[]).is_probe());
        assert!(env(&[("OCF_RESKEY_CRM_meta_interval", "0")]).is_probe());
        assert!(!env(&[("OCF_RESKEY_CRM_meta_interval", "10000")]).is_probe());
    }

    #[test]
    fn budget_leaves_a_margin_before_the_timeout() {
        let table = [
            (None, Duration::from_secs(18)),
            (Some("20000"), Duration::from_secs(18)),
            (Some("60000"), Duration::from_secs(54)),
            (Some("5000"), Duration::from_secs(4)),
            (Some("1000"), Duration::from_millis(500)),
            (Some("0"), Duration::from_secs(18)),
            (Some("junk"), Duration::from_secs(18)),
        ];
        for (timeout, want) in table {
            let e = match timeout {
                Some(t) => env(&[("OCF_RESKEY_CRM_meta_timeout", t)]),
                None => env(&[]),
            };
            assert_eq!(e.budget(), want, "timeout {timeout:?}");
        }
    }
}
