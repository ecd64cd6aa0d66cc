//! Our directory under /run and the files in it: the one place their names are spelled
//! (`packaging/tmpfiles.d/redis-ha-ocf.conf` makes them at boot, with these modes).

/// Only root and group [`GROUP`] may enter (root:redis 0750): the locks, the guard's
/// record and the sync service's socket are out of every other local user's reach.
pub(crate) const RUN_DIR: &str = "/run/redis-ha";

/// [`RUN_DIR`]'s mode, when root has to make it (no package: tests, ocf-tester).
pub(crate) const RUN_DIR_MODE: u32 = 0o750;

/// The group Sentinel runs as: it may enter [`RUN_DIR`] and open [`SYNC_LOCK`].
pub(crate) const GROUP: &str = "redis";

/// The agents' lock (also `redis-ha ports` and the guard's), in [`RUN_DIR`]: root's
/// alone (0600).
pub(crate) const HOST_LOCK: &str = "host.lock";
pub(crate) const HOST_LOCK_MODE: u32 = 0o600;

/// The syncs' lock, in [`RUN_DIR`]: root:redis 0640, since Sentinel's scripts sync
/// themselves when the sync service is absent (a read-only descriptor is all flock needs).
pub(crate) const SYNC_LOCK: &str = "sync.lock";
pub(crate) const SYNC_LOCK_MODE: u32 = 0o640;

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's tmpfiles.d makes what the code would make, with the same modes.
    #[test]
    fn tmpfiles_makes_the_directory_and_locks_as_the_code_expects_them() {
        let conf = include_str!("../packaging/tmpfiles.d/redis-ha-ocf.conf");
        let lines: Vec<&str> = conf
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        for want in [
            format!("d {RUN_DIR} {RUN_DIR_MODE:04o} root {GROUP} -"),
            format!("f {RUN_DIR}/{HOST_LOCK} {HOST_LOCK_MODE:04o} root root -"),
            format!("f {RUN_DIR}/{SYNC_LOCK} {SYNC_LOCK_MODE:04o} root {GROUP} -"),
        ] {
            assert!(lines.contains(&want.as_str()), "{want:?} not in {lines:#?}");
        }
    }
}
