//! What a script's own sync means when it ran because the sync service was not there.
//! Pure. Under Debian's sandboxed Sentinel the scripts have no rights on the CIB, so
//! their own sync fails there: the error must say that the service is what is missing.

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
}

impl Unserved {
    pub(crate) fn exit(&self) -> HelperExit {
        match self {
            Unserved::Sync(e) => e.exit(),
            // The service may be starting (or restarting): Sentinel's retries reach it.
            Unserved::NoService { .. } => HelperExit::Retry,
        }
    }
}

/// The outcome of the script's own sync after the service was found absent (`service`
/// says how): failures to reach the CIB or the lock (not there yet, or not ours to
/// open) are the missing service's; a lock refused as unsafe is a problem of its own.
pub(crate) fn without_service(
    service: &str,
    result: Result<(), SyncError>,
) -> Result<(), Unserved> {
    match result {
        Ok(()) => Ok(()),
        Err(
            e @ (SyncError::Cluster(_)
            | SyncError::Lock(
                LockError::Open { .. } | LockError::OpenDir { .. } | LockError::Missing { .. },
            )),
        ) => Err(Unserved::NoService {
            service: service.to_string(),
            sync: e,
        }),
        Err(e) => Err(Unserved::Sync(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterError;
    use crate::lock::Problem;

    #[test]
    fn without_the_service_a_sync_that_cannot_reach_the_cib_retries_and_says_why() {
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
        // (case, the script's own sync, its exit, whether the message names the service)
        type Row = (
            &'static str,
            Result<(), SyncError>,
            Option<HelperExit>,
            bool,
        );
        let table: [Row; 9] = [
            ("done", Ok(()), None, false),
            (
                "not allowed to run cibadmin",
                Err(cluster(true)),
                Some(HelperExit::Retry),
                true,
            ),
            (
                "not connected to the CIB",
                Err(cluster(false)),
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock not openable",
                Err(lock),
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock directory not enterable",
                Err(lock_dir),
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock not made yet",
                Err(lock_missing),
                Some(HelperExit::Retry),
                true,
            ),
            (
                "lock refused as unsafe",
                Err(lock_unsafe),
                Some(HelperExit::Retry),
                false,
            ),
            (
                "no quorum",
                Err(SyncError::NoQuorum),
                Some(HelperExit::Retry),
                false,
            ),
            (
                "unmapped",
                Err(SyncError::Unmapped),
                Some(HelperExit::GiveUp),
                false,
            ),
        ];
        for (name, result, want, names_service) in table {
            let got = without_service(service, result);
            assert_eq!(got.as_ref().err().map(Unserved::exit), want, "{name}");
            if let Err(e) = got {
                let text = e.to_string();
                assert_eq!(
                    text.contains("redis-ha-sync service does not answer here (cannot connect"),
                    names_service,
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
