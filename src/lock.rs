//! A host-wide lock: ReadBlock and WriteBlock (and `redis-ha ports`) run in parallel on a
//! node, and each checks iptables before changing it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Held until dropped.
pub(crate) struct HostLock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("cannot open lock file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lock {path} still held by another redis-ha process after {waited:?}")]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot lock {path}: {errno}")]
    Flock { path: PathBuf, errno: Errno },
}

/// Where the lock lives: `/run/lock` when it exists (Debian), else `/run`.
pub(crate) fn default_path() -> PathBuf {
    let dir = Path::new("/run/lock");
    if dir.is_dir() {
        dir.join("redis-ha.lock")
    } else {
        PathBuf::from("/run/redis-ha.lock")
    }
}

/// The Sentinel helper's own lock, next to the agents': a sync may wait seconds for a
/// block, and the agents must not queue behind it.
pub(crate) fn sync_path() -> PathBuf {
    default_path().with_file_name("redis-ha-sync.lock")
}

/// Opens the lock file read-only (flock needs no more), creating it if missing: a file
/// root created (0644) must still lock for the Sentinel helper running as `redis`.
fn open(path: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path),
        other => other,
    }
}

impl HostLock {
    /// Waits for the lock until `timeout` has passed, polling with a short backoff.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, LockError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let file = open(path).map_err(|source| LockError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((_, Errno::EWOULDBLOCK)) => {}
                Err((_, Errno::EINTR)) => continue,
                Err((_, errno)) => {
                    return Err(LockError::Flock {
                        path: path.to_path_buf(),
                        errno,
                    });
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::Busy {
                    path: path.to_path_buf(),
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_times_out_then_gets_it_after_release() {
        let path = std::env::temp_dir().join(format!("redis-ha-lock-test-{}", std::process::id()));
        let first = HostLock::acquire(&path, Duration::from_millis(10)).unwrap();
        let started = Instant::now();
        let busy = HostLock::acquire(&path, Duration::from_millis(50));
        assert!(
            matches!(busy, Err(LockError::Busy { .. })),
            "{:?}",
            busy.err()
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(first);
        assert!(HostLock::acquire(&path, Duration::from_millis(10)).is_ok());
        std::fs::remove_file(&path).unwrap();
    }
}
