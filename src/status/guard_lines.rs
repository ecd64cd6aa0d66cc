//! The status screen's guard lines: what the isolation guard on this node refuses and
//! why, from its record. Pure.

use std::fmt::Write as _;

use super::SentinelSummary;
use crate::cluster::{NodeName, Role};
use crate::guard::record::Record;
use crate::ocf::civil_utc;

/// What `redis-ha status` knows of this node's guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GuardView {
    /// `guard = off` in the config.
    Off,
    /// No record (the periodic sync does not run here), with why.
    NoRecord(String),
    Record {
        record: Record,
        /// When the screen was made, Unix ms.
        now_ms: u64,
        /// How old a record may be before the guard counts as stalled.
        stale_after_ms: u64,
    },
}

fn utc(ms: u64) -> String {
    let (_, _, _, h, m, s) = civil_utc(ms / 1000);
    format!("{h:02}:{m:02}:{s:02}.{:03} UTC", ms % 1000)
}

/// The lines, and the disagreements they show.
pub(crate) fn lines(
    g: &GuardView,
    t: Option<&SentinelSummary>,
    problems: &mut Vec<String>,
) -> String {
    let mut out = String::new();
    let (record, now_ms, stale_after_ms) = match g {
        GuardView::Off => return "guard: off (guard = off in the config)\n".into(),
        GuardView::NoRecord(why) => {
            return format!("guard: not running on this node ({why})\n");
        }
        GuardView::Record {
            record,
            now_ms,
            stale_after_ms,
        } => (record, *now_ms, *stale_after_ms),
    };
    let age = now_ms.saturating_sub(record.checked_ms);
    let _ = writeln!(
        out,
        "guard on {} (this node), last check {} ms ago:",
        record.node, age
    );
    if age > stale_after_ms {
        problems.push(format!(
            "the guard on {} last checked {:.1} s ago: is `redis-ha sync --every` running?",
            record.node,
            age as f64 / 1000.0
        ));
    }
    let node = NodeName(record.node.clone());
    let desired = t.and_then(|t| t.assignment.desired.get(&node)).copied();
    for p in &record.ports {
        match &p.refused {
            Some(why) => {
                let _ = writeln!(
                    out,
                    "  {:<5} {}  REFUSED since {}: {why}",
                    p.kind,
                    p.port,
                    utc(p.since_ms)
                );
                let should_serve = matches!(
                    (p.kind.as_str(), desired),
                    ("write", Some(Role::Primary)) | ("read", Some(Role::Primary | Role::Replica))
                );
                if should_serve {
                    problems.push(format!(
                        "{node}: the guard refuses its {} port {} though the Sentinels say {}: {why}",
                        p.kind,
                        p.port,
                        desired.map_or("?".into(), |r| r.to_string())
                    ));
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {:<5} {}  left to the block clones since {}",
                    p.kind,
                    p.port,
                    utc(p.since_ms)
                );
            }
        }
    }
    out
}
