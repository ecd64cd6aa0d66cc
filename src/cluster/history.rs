//! Whether a resource runs on a node, read from the node's operation history in the CIB's
//! status section: the same records `crm_resource --locate` reads, without starting a
//! second tool (each costs ~25 ms). Conservative: anything we do not recognise as a
//! successful start that nothing failed since counts as not running, which only makes
//! the helper wait longer before it promotes.

/// One `lrm_rsc_op` of the resource on one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Op {
    /// The record's id ends in `_last_0`: the last non-recurring operation.
    pub(crate) last: bool,
    pub(crate) operation: String,
    pub(crate) rc: Option<i64>,
    /// `op-status`: 0 done, -1 pending, others cancelled / timed out / error.
    pub(crate) status: Option<i64>,
    pub(crate) call_id: Option<i64>,
}

impl Op {
    fn succeeded(&self) -> bool {
        self.rc == Some(0) && self.status == Some(0)
    }
}

/// Running: the node's controller is online, the last non-recurring operation is a
/// start or a probe that found it running, done with success, and every operation recorded
/// after it (recurring monitors, failures) succeeded too.
pub(crate) fn running(node_online: bool, ops: &[Op]) -> bool {
    if !node_online {
        return false;
    }
    let lasts: Vec<&Op> = ops.iter().filter(|o| o.last).collect();
    let [last] = lasts.as_slice() else {
        return false;
    };
    let Some(call) = last.call_id.filter(|&c| c >= 0) else {
        return false;
    };
    let started = matches!(last.operation.as_str(), "start" | "monitor") && last.succeeded();
    started
        && ops
            .iter()
            .filter(|o| !std::ptr::eq(*o, *last))
            .all(|o| o.call_id.is_some_and(|c| c >= 0 && c < call) || o.succeeded())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(last: bool, operation: &str, rc: i64, status: i64, call: i64) -> Op {
        Op {
            last,
            operation: operation.into(),
            rc: Some(rc),
            status: Some(status),
            call_id: Some(call),
        }
    }

    #[test]
    fn started_and_monitored_is_running() {
        let start = op(true, "start", 0, 0, 2);
        let monitor = op(false, "monitor", 0, 0, 3);
        assert!(running(true, &[start.clone(), monitor.clone()]));
        // A probe that found it running (after a controller restart).
        assert!(running(true, &[op(true, "monitor", 0, 0, 5)]));
        // Not if the node's controller is not online: the history may be stale.
        assert!(!running(false, &[start, monitor]));
    }

    #[test]
    fn everything_else_is_not_running() {
        let table: [(&str, Vec<Op>); 9] = [
            ("no history", vec![]),
            ("probe: not running", vec![op(true, "monitor", 7, 0, 1)]),
            ("stopped", vec![op(true, "stop", 0, 0, 4)]),
            ("start failed", vec![op(true, "start", 1, 0, 2)]),
            ("start pending", vec![op(true, "start", 0, -1, 2)]),
            ("start timed out", vec![op(true, "start", 1, 2, 2)]),
            (
                "monitor failed since",
                vec![op(true, "start", 0, 0, 2), op(false, "monitor", 7, 0, 3)],
            ),
            (
                "a failure recorded after the start",
                vec![op(true, "start", 0, 0, 2), op(false, "start", 1, 0, 9)],
            ),
            (
                "two last records",
                vec![op(true, "start", 0, 0, 2), op(true, "stop", 0, 0, 3)],
            ),
        ];
        for (what, ops) in table {
            assert!(!running(true, &ops), "{what}");
        }
    }

    #[test]
    fn an_old_failure_before_a_good_start_does_not_count() {
        let ops = [
            op(false, "start", 1, 0, 2), // the _last_failure_0 of an earlier attempt
            op(true, "start", 0, 0, 5),
            op(false, "monitor", 0, 0, 6),
        ];
        assert!(running(true, &ops));
    }
}
