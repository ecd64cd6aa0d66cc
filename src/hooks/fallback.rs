//! What a script's own sync means when it ran because the sync service was not there.
//! Pure. Under Debian's sandboxed Sentinel the scripts have no rights on the CIB, so
//! their own sync fails there: the error must say that the service is what is missing.
//! A sync that failed once the script's deadline had passed failed for want of time,
//! whatever step it was cut short in: Sentinel retries it.

use std::time::Duration;

use crate::exit::HelperExit;
use crate::lock::LockError;
use crate::sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Unserved {
    #[error("{0}")]
    Sync(SyncError),
    /// Neither the service nor this process could do it.
    #[error(
        "the redis-ha-sync service does not answer here ({service}) and this process cannot \
         sync itself ({sync}). Sentinel's scripts hand their events to that service, which \
         runs as root: start it (systemctl enable --now redis-ha-sync.service). Syncing \
         without it needs rights on the CIB, which Debian's sandboxed redis-sentinel does \
         not give its scripts"
    )]
    NoService { service: String, sync: SyncError },
    /// The script's deadline passed before the sync was done.
    #[error(
        "this script's own sync did not end within {} s, the most a script may take here \
         (Sentinel kills a script at 60 s): {sync}",
        budget.as_secs()
    )]
    OutOfTime { budget: Duration, sync: SyncError },
}

impl Unserved {
    pub(crate) fn exit(&self) -> HelperExit {
        match self {
            Unserved::Sync(e) => e.exit(),
            // The service may be starting (or restarting): Sentinel's retries reach it.
            Unserved::NoService { .. } => HelperExit::Retry,
            // Another run may find the lock free, the block started, the CIB less busy.
            Unserved::OutOfTime { .. } => HelperExit::Retry,
        }
    }
}

/// The outcome of the script's own sync after the service was found absent (`service`
/// says how): failures to reach the CIB or the lock (not there yet, or not ours to
/// open) are the missing service's; a lock refused as unsafe is a problem of its own.
/// With `late` (the script's budget, once its deadline has passed) any failure is the
/// deadline's.
pub(crate) fn without_service(
    service: &str,
    result: Result<(), SyncError>,
    late: Option<Duration>,
) -> Result<(), Unserved> {
    let e = match (result, late) {
        (Ok(()), _) => return Ok(()),
        (Err(sync), Some(budget)) => return Err(Unserved::OutOfTime { budget, sync }),
        (Err(e), None) => e,
    };
    match e {
        SyncError::Cluster(_)
        | SyncError::Lock(
            LockError::Open { .. } | LockError::OpenDir { .. } | LockError::Missing { .. },
        ) => Err(Unserved::NoService {
            service: service.to_string(),
            sync: e,
        }),
        e => Err(Unserved::Sync(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterError;
    use crate::lock::Problem;

    #[test]
    fn without_the_service_a_sync_that_cannot_reach_the_cib_or_end_in_time_retries_and_says_why() {
        let service = "cannot connect to /run/redis-ha/sync.sock: ENOENT";
        let cluster = |permanent: bool| {
            let (command, reason) = ("cibadmin --query".into(), "exit 102".into());
            SyncError::Cluster(if permanent {
                ClusterError::Permanent { command, reason }
            } else {
                ClusterError::Transient { command, reason }
            })
        };
        let path = || std::path::PathBuf::from("/run/redis-ha/sync.lock");
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let lock = SyncError::Lock(LockError::Open {
            path: path(),
            source: denied(),
        });
        let lock_dir = SyncError::Lock(LockError::OpenDir {
            path: path(),
            dir: "/run/redis-ha".into(),
            source: denied(),
        });
        let lock_missing = SyncError::Lock(LockError::Missing { path: path() });
        let lock_unsafe = SyncError::Lock(LockError::Unsafe {
            path: path(),
            problem: Problem::Symlink,
        });
        let block = || SyncError::BlockNotRunning {
            open: vec![crate::cluster::NodeName("node1".into())],
            reads_open: vec![],
            waited: std::time::Duration::from_secs(49),
            promotion: crate::cluster::NodeName("node2".into()),
        };
        const IN_TIME: Option<Duration> = None;
        const LATE: Option<Duration> = Some(Duration::from_secs(50));
        // (case, the script's own sync, the budget once its deadline passed, its exit,
        // whether the message names the service)
        type Row = (
            &'static str,
            Result<(), SyncError>,
            Option<Duration>,
            Option<HelperExit>,
            bool,
        );
        let table: [Row; 13] = [
            ("done", Ok(()), IN_TIME, None, false),
            (
                "not allowed to run cibadmin",
                Err(cluster(true)),
                IN_TIME,
                Some(HelperExit::Retry),
                true,
            ),
            (
                "not connected to the CIB",
                Err(cluster(false)),
                IN_TIME,
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock not openable",
                Err(lock),
                IN_TIME,
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock directory not enterable",
                Err(lock_dir),
                IN_TIME,
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock not made yet",
                Err(lock_missing),
                IN_TIME,
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock refused as unsafe",
                Err(lock_unsafe),
                IN_TIME,
                Some(HelperExit::Retry),
                false,
            ),
            (
                "no quorum",
                Err(SyncError::NoQuorum),
                IN_TIME,
                Some(HelperExit::Retry),
                false,
            ),
            (
                "unmapped",
                Err(SyncError::Unmapped),
                IN_TIME,
                Some(HelperExit::GiveUp),
                false,
            ),
            ("done just before the deadline", Ok(()), LATE, None, false),
            (
                "a block still not running at the deadline",
                Err(block()),
                LATE,
                Some(HelperExit::Retry),
                false,
            ),
            (
                "a Pacemaker tool killed at the deadline",
                Err(cluster(false)),
                LATE,
                Some(HelperExit::Retry),
                false,
            ),
            (
                "node names not resolved by the deadline",
                Err(SyncError::Unmapped),
                LATE,
                Some(HelperExit::Retry),
                false,
            ),
        ];
        for (name, result, late, want, names_service) in table {
            let got = without_service(service, result, late);
            assert_eq!(got.as_ref().err().map(Unserved::exit), want, "{name}");
            if let Err(e) = got {
                let text = e.to_string();
                assert_eq!(
                    text.contains("redis-ha-sync service does not answer here (cannot connect"),
                    names_service,
                    "{name}: {text}"
                );
                assert_eq!(
                    text.starts_with("this script's own sync did not end within 50 s"),
                    late.is_some(),
                    "{name}: {text}"
                );
                if names_service {
                    assert!(
                        text.contains("systemctl enable --now redis-ha-sync.service"),
                        "{text}"
                    );
                }
            }
        }
    }
}
