//! The host-wide locks: ReadBlock and WriteBlock (and `redis-ha ports`, the guard) run in
//! parallel on a node and each checks iptables before changing it; syncs queue on a lock
//! of their own. Both live in our run directory, which only root and group redis can
//! reach, so no other local user can hold them (stalling a stop into fencing) or plant a
//! link that steers where root creates them.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, open, openat};
use nix::sys::stat::{Mode, fchmod, fstat};
use nix::unistd::{Gid, Group, Uid, fchown, geteuid};

use crate::run_dir::{
    GROUP, HOST_LOCK, HOST_LOCK_MODE, RUN_DIR, RUN_DIR_MODE, SYNC_LOCK, SYNC_LOCK_MODE,
};

/// Held until dropped.
pub(crate) struct HostLock {
    _lock: Flock<File>,
}

/// What makes a lock's directory or file unfit to lock through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    #[error("it is a symbolic link, which is never followed (remove it)")]
    Symlink,
    #[error("it is not a directory (remove it)")]
    NotDirectory,
    #[error("it is not a regular file (remove it)")]
    NotRegular,
    #[error("it is owned by uid {uid}, not {want} (remove it)")]
    Owner { uid: u32, want: u32 },
    #[error("its mode {mode:04o} lets users other than its owner write to it (chmod go-w)")]
    Writable { mode: u32 },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("cannot create {}, the directory of our locks: {source}", dir.display())]
    MakeDir { dir: PathBuf, source: io::Error },
    #[error(
        "{} does not exist, and only root creates it: the package's tmpfiles.d does \
         (systemd-tmpfiles --create redis-ha-ocf.conf), so does the redis-ha-sync service",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot open lock {}: its directory {}: {source}", path.display(), dir.display())]
    OpenDir {
        path: PathBuf,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("cannot open lock {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "refusing {}: {problem}; only root may control our locks, or any user could hold \
         or redirect them",
        path.display()
    )]
    Unsafe { path: PathBuf, problem: Problem },
    #[error("cannot give {} mode {mode:04o} or its group: {errno}", path.display())]
    Settle {
        path: PathBuf,
        mode: u32,
        errno: Errno,
    },
    #[error("lock {} still held by another redis-ha process after {waited:?}", path.display())]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot lock {}: {errno}", path.display())]
    Flock { path: PathBuf, errno: Errno },
}

/// One of our lock files: where it is, who owns it (the owner alone creates it and its
/// directory; anyone else only opens them), its mode, and the group that may open it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockFile {
    dir: PathBuf,
    name: &'static str,
    owner: Uid,
    mode: u32,
    group: Option<&'static str>,
}

impl LockFile {
    /// The agents' lock: root's alone.
    pub(crate) fn host() -> Self {
        Self::roots(HOST_LOCK, HOST_LOCK_MODE, None)
    }

    /// The syncs' own lock: a sync may wait seconds for a block, and the agents must not
    /// queue behind it. Sentinel's scripts (group redis) open it when they sync themselves.
    pub(crate) fn sync() -> Self {
        Self::roots(SYNC_LOCK, SYNC_LOCK_MODE, Some(GROUP))
    }

    fn roots(name: &'static str, mode: u32, group: Option<&'static str>) -> Self {
        LockFile {
            dir: PathBuf::from(RUN_DIR),
            name,
            owner: Uid::from_raw(0),
            mode,
            group,
        }
    }

    /// A lock in a test's own directory, owned by whoever runs the test.
    #[cfg(test)]
    pub(crate) fn scratch(dir: &Path, name: &'static str) -> Self {
        LockFile {
            dir: dir.to_path_buf(),
            name,
            owner: geteuid(),
            mode: 0o600,
            group: None,
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(self.name)
    }

    fn unsafe_(path: &Path, problem: Problem) -> LockError {
        LockError::Unsafe {
            path: path.to_path_buf(),
            problem,
        }
    }

    /// The directory, made by its owner when missing (with [`RUN_DIR_MODE`] and group
    /// [`GROUP`], as tmpfiles.d would), opened without following a link, and checked:
    /// a directory of the owner's that no one else may write to.
    fn open_dir(&self, creator: bool) -> Result<File, LockError> {
        let dir = &self.dir;
        let made = creator
            && match DirBuilder::new().mode(RUN_DIR_MODE).create(dir) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(source) => {
                    return Err(LockError::MakeDir {
                        dir: dir.clone(),
                        source,
                    });
                }
            };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let file = File::from(
            open(dir, flags, Mode::empty()).map_err(|errno| match errno {
                // O_DIRECTORY wins over O_NOFOLLOW: a link to anything fails with ENOTDIR.
                Errno::ELOOP | Errno::ENOTDIR => match std::fs::symlink_metadata(dir) {
                    Ok(m) if m.file_type().is_symlink() => Self::unsafe_(dir, Problem::Symlink),
                    _ => Self::unsafe_(dir, Problem::NotDirectory),
                },
                Errno::ENOENT => LockError::Missing { path: dir.clone() },
                errno => LockError::OpenDir {
                    path: self.path(),
                    dir: dir.clone(),
                    source: errno.into(),
                },
            })?,
        );
        if made {
            // The umask may have narrowed the mode; the group lets Sentinel in.
            self.settle(&file, dir, RUN_DIR_MODE, Some(GROUP))?;
        }
        let meta = file.metadata().map_err(|source| LockError::OpenDir {
            path: self.path(),
            dir: dir.clone(),
            source,
        })?;
        self.check_owner(dir, &meta)?;
        if meta.mode() & 0o022 != 0 {
            return Err(Self::unsafe_(
                dir,
                Problem::Writable {
                    mode: meta.mode() & 0o7777,
                },
            ));
        }
        Ok(file)
    }

    fn check_owner(&self, path: &Path, meta: &std::fs::Metadata) -> Result<(), LockError> {
        if meta.uid() == self.owner.as_raw() {
            return Ok(());
        }
        Err(Self::unsafe_(
            path,
            Problem::Owner {
                uid: meta.uid(),
                want: self.owner.as_raw(),
            },
        ))
    }

    /// Gives `file` `mode` and `group` (when the host has that group), if it has not both.
    fn settle(
        &self,
        file: &File,
        path: &Path,
        mode: u32,
        group: Option<&str>,
    ) -> Result<(), LockError> {
        let failed = |errno| LockError::Settle {
            path: path.to_path_buf(),
            mode,
            errno,
        };
        let stat = fstat(file.as_fd()).map_err(failed)?;
        if stat.st_mode & 0o7777 != mode {
            fchmod(file.as_fd(), Mode::from_bits_truncate(mode)).map_err(failed)?;
        }
        if let Some(gid) = group.and_then(group_id)
            && stat.st_gid != gid.as_raw()
        {
            fchown(file.as_fd(), None, Some(gid)).map_err(failed)?;
        }
        Ok(())
    }

    /// Opens the lock read-only (flock needs no more) inside its checked directory,
    /// never through a link; only its owner creates it. It must be a regular file of the
    /// owner's; the owner gives it its mode and group.
    fn open(&self) -> Result<File, LockError> {
        let creator = geteuid() == self.owner;
        let dir = self.open_dir(creator)?;
        let path = self.path();
        // O_NONBLOCK: a FIFO put in its place must not hang us at open.
        let mut flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK;
        if creator {
            flags |= OFlag::O_CREAT;
        }
        let fd = openat(&dir, self.name, flags, Mode::from_bits_truncate(self.mode)).map_err(
            |errno| match errno {
                Errno::ELOOP => Self::unsafe_(&path, Problem::Symlink),
                Errno::ENOENT => LockError::Missing { path: path.clone() },
                errno => LockError::Open {
                    path: path.clone(),
                    source: errno.into(),
                },
            },
        )?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(Self::unsafe_(&path, Problem::NotRegular));
        }
        self.check_owner(&path, &meta)?;
        if creator {
            self.settle(&file, &path, self.mode, self.group)?;
        }
        Ok(file)
    }
}

/// The group's id, when the host has that group.
fn group_id(name: &str) -> Option<Gid> {
    Group::from_name(name).ok().flatten().map(|g| g.gid)
}

impl HostLock {
    /// Waits for the lock until `timeout` has passed, polling with a short backoff.
    pub(crate) fn acquire(lock: &LockFile, timeout: Duration) -> Result<Self, LockError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut file = lock.open()?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(Self { _lock: held }),
                Err((back, Errno::EWOULDBLOCK)) => file = back,
                Err((back, Errno::EINTR)) => {
                    file = back;
                    continue;
                }
                Err((_, errno)) => {
                    return Err(LockError::Flock {
                        path: lock.path(),
                        errno,
                    });
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::Busy {
                    path: lock.path(),
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
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A directory of the test's own (0700: as root's temp files would be), removed at
    /// the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("redis-ha-lock-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            DirBuilder::new().mode(0o700).create(&dir).unwrap();
            Scratch(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refused(lock: &LockFile) -> (PathBuf, Problem) {
        match HostLock::acquire(lock, Duration::from_millis(10)) {
            Err(LockError::Unsafe { path, problem }) => (path, problem),
            Err(e) => panic!("{}: refused for another reason: {e}", lock.path().display()),
            Ok(_) => panic!("{}: locked", lock.path().display()),
        }
    }

    fn assert_root() {
        assert!(
            geteuid().is_root(),
            "this test gives files to another user: run it as root (make test does)"
        );
    }

    #[test]
    fn second_holder_times_out_then_gets_it_after_release() {
        let dir = Scratch::new("busy");
        let lock = LockFile::scratch(&dir.join("locks"), "test.lock");
        let first = HostLock::acquire(&lock, Duration::from_millis(10)).unwrap();
        let started = Instant::now();
        let busy = HostLock::acquire(&lock, Duration::from_millis(50));
        assert!(
            matches!(busy, Err(LockError::Busy { .. })),
            "{:?}",
            busy.err()
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(first);
        assert!(HostLock::acquire(&lock, Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn the_owner_makes_a_missing_directory_and_lock_with_their_modes() {
        let dir = Scratch::new("make");
        let lock = LockFile::scratch(&dir.join("locks"), "test.lock");
        drop(HostLock::acquire(&lock, Duration::from_millis(10)).unwrap());
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode();
        assert_eq!(mode(&dir.join("locks")), 0o040000 | RUN_DIR_MODE);
        assert_eq!(mode(&lock.path()), 0o100600);
    }

    #[test]
    fn links_are_never_followed_and_nothing_is_made_where_they_point() {
        let dir = Scratch::new("link");
        let target = dir.join("target");
        // The lock file a dangling link.
        let locks = dir.join("locks");
        DirBuilder::new().mode(0o750).create(&locks).unwrap();
        symlink(&target, locks.join("test.lock")).unwrap();
        let lock = LockFile::scratch(&locks, "test.lock");
        assert_eq!(refused(&lock), (lock.path(), Problem::Symlink));
        assert!(std::fs::symlink_metadata(&target).is_err());
        // The directory a link: to nowhere, then to a directory fit for locks.
        for pointed in [target.clone(), locks.clone()] {
            let linked = dir.join("linked");
            let _ = std::fs::remove_file(&linked);
            symlink(&pointed, &linked).unwrap();
            let lock = LockFile::scratch(&linked, "other.lock");
            assert_eq!(refused(&lock), (linked.clone(), Problem::Symlink));
        }
        assert!(std::fs::symlink_metadata(&target).is_err());
        assert!(std::fs::symlink_metadata(locks.join("other.lock")).is_err());
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        for mode in [0o770, 0o757, 0o1777] {
            let dir = Scratch::new(&format!("writable-{mode:o}"));
            let locks = dir.join("locks");
            std::fs::create_dir(&locks).unwrap();
            std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(mode)).unwrap();
            let lock = LockFile::scratch(&locks, "test.lock");
            assert_eq!(refused(&lock), (locks.clone(), Problem::Writable { mode }));
            assert!(!lock.path().exists(), "{mode:o}");
        }
    }

    #[test]
    fn a_directory_or_lock_of_another_user_is_refused() {
        assert_root();
        let other = 65534;
        let dir = Scratch::new("owner");
        let locks = dir.join("locks");
        std::fs::create_dir(&locks).unwrap();
        std::os::unix::fs::chown(&locks, Some(other), None).unwrap();
        let lock = LockFile::scratch(&locks, "test.lock");
        let want = Problem::Owner {
            uid: other,
            want: geteuid().as_raw(),
        };
        assert_eq!(refused(&lock), (locks.clone(), want));
        assert!(!lock.path().exists());
        std::os::unix::fs::chown(&locks, Some(geteuid().as_raw()), None).unwrap();
        File::create(lock.path()).unwrap();
        std::os::unix::fs::chown(lock.path(), Some(other), None).unwrap();
        assert_eq!(refused(&lock), (lock.path(), want));
    }

    #[test]
    fn a_lock_that_is_not_a_regular_file_is_refused() {
        let dir = Scratch::new("fifo");
        let lock = LockFile::scratch(&dir.0, "test.lock");
        nix::unistd::mkfifo(&lock.path(), Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(refused(&lock), (lock.path(), Problem::NotRegular));
        std::fs::remove_file(lock.path()).unwrap();
        std::fs::create_dir(lock.path()).unwrap();
        assert!(matches!(
            HostLock::acquire(&lock, Duration::from_millis(10)),
            Err(LockError::Open { .. } | LockError::Unsafe { .. })
        ));
    }

    #[test]
    fn only_the_owner_creates_others_only_open() {
        assert_root();
        let dir = Scratch::new("others");
        let mut lock = LockFile::scratch(&dir.join("locks"), "test.lock");
        lock.owner = Uid::from_raw(65534);
        assert!(matches!(
            HostLock::acquire(&lock, Duration::from_millis(10)),
            Err(LockError::Missing { path }) if path == dir.join("locks")
        ));
        assert!(!dir.join("locks").exists());
        std::fs::create_dir(dir.join("locks")).unwrap();
        std::os::unix::fs::chown(dir.join("locks"), Some(65534), None).unwrap();
        assert!(matches!(
            HostLock::acquire(&lock, Duration::from_millis(10)),
            Err(LockError::Missing { path }) if path == lock.path()
        ));
        File::create(lock.path()).unwrap();
        std::os::unix::fs::chown(lock.path(), Some(65534), None).unwrap();
        assert!(HostLock::acquire(&lock, Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn the_errors_name_the_path_and_the_cause() {
        let e = LockError::Unsafe {
            path: PathBuf::from("/run/redis-ha/host.lock"),
            problem: Problem::Symlink,
        };
        assert_eq!(
            e.to_string(),
            "refusing /run/redis-ha/host.lock: it is a symbolic link, which is never followed \
             (remove it); only root may control our locks, or any user could hold or \
             redirect them"
        );
        assert_eq!(
            LockFile::host().path(),
            Path::new("/run/redis-ha/host.lock")
        );
        assert_eq!(
            LockFile::sync().path(),
            Path::new("/run/redis-ha/sync.lock")
        );
    }
}
