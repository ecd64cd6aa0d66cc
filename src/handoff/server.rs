//! The service's side: a socket only root and group redis can reach (mode 0660
//! root:redis, in a directory of ours), a thread per connection with a deadline on every
//! read and write, and only root and user redis, by the uid the kernel reports
//! (SO_PEERCRED), may ask.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Group, Uid, User, chown};

use super::line::{self, LineError};
use super::wire::{Answer, MAX_REQUEST, Request};
use super::{CALLER, MAX_CONNECTIONS, REQUEST, WRITE};
use crate::exit::HelperExit;
use crate::ocf::Logger;

/// Who may ask: root, and the user Sentinel runs as. The socket's mode lets group redis
/// reach it; the uid check keeps out every other member of that group (and a peer in a
/// user namespace whose uid does not map to one of these two shows up as `nobody`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peers {
    caller: Option<Uid>,
}

impl Peers {
    /// Root and [`CALLER`], as this host's user database says (root alone without it).
    pub(crate) fn of_host() -> Peers {
        Peers {
            caller: User::from_name(CALLER).ok().flatten().map(|u| u.uid),
        }
    }

    pub(crate) fn allows(&self, uid: Uid) -> bool {
        uid.is_root() || Some(uid) == self.caller
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: already served by another process", path.display())]
    InUse { path: PathBuf },
    #[error("{}: exists and is not a socket (check sync_socket in the config)", path.display())]
    NotSocket { path: PathBuf },
    #[error("cannot give {} to group {CALLER}: {errno}", path.display())]
    Owner { path: PathBuf, errno: nix::Error },
}

/// A bound, listening socket.
pub(crate) struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BindError + '_ {
    move |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Group [`CALLER`]'s id, when the host has that group.
fn caller_group() -> Option<Gid> {
    Group::from_name(CALLER).ok().flatten().map(|g| g.gid)
}

fn give_to_callers(path: &Path, gid: Option<Gid>) -> Result<(), BindError> {
    match gid {
        Some(gid) => chown(path, None, Some(gid)).map_err(|errno| BindError::Owner {
            path: path.to_path_buf(),
            errno,
        }),
        None => Ok(()),
    }
}

impl Listener {
    /// Listens at `path`: makes its directory (0750, group redis) if missing, binds under
    /// a temporary name, gives the socket mode 0660 and group redis, then renames it into
    /// place, so it is never reachable with other rights. A stale socket is replaced; one
    /// another process still serves is not.
    pub(crate) fn bind(path: &Path) -> Result<Listener, BindError> {
        let gid = caller_group();
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::DirBuilder::new()
                .mode(0o750)
                .create(dir)
                .map_err(io(dir))?;
            give_to_callers(dir, gid)?;
        }
        // Only a socket is ever replaced: a mistyped sync_socket must not cost a file.
        match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_socket() => {
                return Err(BindError::NotSocket {
                    path: path.to_path_buf(),
                });
            }
            Ok(_) if UnixStream::connect(path).is_ok() => {
                return Err(BindError::InUse {
                    path: path.to_path_buf(),
                });
            }
            _ => {}
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
            _ => {}
        }
        let listener = UnixListener::bind(&tmp).map_err(io(&tmp))?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
            .map_err(io(&tmp))
            .and_then(|()| give_to_callers(&tmp, gid))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Listener {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Serves forever: each connection on a thread of its own, so a slow peer holds
    /// nothing but its thread; `handle` gets the request and how long it may take.
    pub(crate) fn serve<H>(self, peers: Peers, log: &Logger, handle: H)
    where
        H: Fn(&Request, Duration) -> Answer + Send + Sync + 'static,
    {
        let handle = Arc::new(handle);
        let active = Arc::new(AtomicUsize::new(0));
        for conn in self.listener.incoming() {
            let stream = match conn {
                Ok(stream) => stream,
                Err(e) => {
                    log.warn(&format!("{}: accept: {e}", self.path.display()));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                log.warn(&format!(
                    "{} connections to {} already: closing one unanswered (its script retries)",
                    MAX_CONNECTIONS,
                    self.path.display()
                ));
                continue;
            }
            let (handle, done, log2) = (Arc::clone(&handle), Arc::clone(&active), log.clone());
            let spawned = std::thread::Builder::new()
                .name("handoff".into())
                .spawn(move || {
                    one(stream, peers, &log2, handle.as_ref());
                    done.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                active.fetch_sub(1, Ordering::SeqCst);
                log.warn(&format!("cannot serve a sync request: {e}"));
            }
        }
    }
}

/// One connection: who it is, its request within [`REQUEST`], the answer within
/// [`WRITE`]; anything else closes it.
fn one<H>(mut stream: UnixStream, peers: Peers, log: &Logger, handle: &H)
where
    H: Fn(&Request, Duration) -> Answer,
{
    let who = match getsockopt(&stream, sockopt::PeerCredentials) {
        Ok(c) => (c.pid(), Uid::from_raw(c.uid())),
        Err(e) => {
            log.warn(&format!(
                "a sync request without peer credentials ({e}): closed"
            ));
            return;
        }
    };
    let (pid, uid) = who;
    let answer = if !peers.allows(uid) {
        log.warn(&format!(
            "refused a sync request from pid {pid}, uid {uid}: only root and {CALLER} may ask"
        ));
        Answer::new(
            HelperExit::GiveUp,
            &format!("refused: uid {uid} may not ask for a sync (only root and {CALLER})"),
        )
    } else {
        let parsed = line::read(&mut stream, MAX_REQUEST, REQUEST)
            .map_err(|e| e.to_string())
            .and_then(|l| Request::parse(&l).map_err(|e| e.to_string()));
        match parsed {
            Ok(request) => handle(&request, super::ANSWER),
            Err(e) => {
                log.warn(&format!(
                    "dropped a sync request from pid {pid}, uid {uid}: {e}"
                ));
                Answer::new(HelperExit::GiveUp, &format!("bad request: {e}"))
            }
        }
    };
    // A peer that hung up (an I/O error) is not worth a line; a slow one is.
    if let Err(e @ (LineError::Deadline(_) | LineError::Closed | LineError::TooLong(_))) =
        line::write(&mut stream, &answer.line(), WRITE)
    {
        log.warn(&format!(
            "pid {pid}, uid {uid} did not take its answer: {e}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stale_socket_is_replaced() {
        let dir = std::env::temp_dir().join(format!("rha-bind-{}", std::process::id()));
        let path = dir.join("sub").join("sync.sock");
        std::fs::create_dir_all(&dir).unwrap();
        // The socket's own directory is made, 0750 (not its parents: /run exists).
        let first = Listener::bind(&path).unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        // Served: not taken over.
        assert!(matches!(
            Listener::bind(&path),
            Err(BindError::InUse { .. })
        ));
        // Stale (nobody listens any more): replaced.
        drop(first);
        let second = Listener::bind(&path).unwrap();
        drop(second);
        // Not a socket: left alone.
        let file = dir.join("sub").join("precious");
        std::fs::write(&file, "data").unwrap();
        assert!(matches!(
            Listener::bind(&file),
            Err(BindError::NotSocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn root_and_the_caller_may_ask_nobody_else() {
        let peers = Peers {
            caller: Some(Uid::from_raw(103)),
        };
        let table = [
            (0, true),
            (103, true),
            (65534, false),
            (1000, false),
            (102, false),
        ];
        for (uid, allowed) in table {
            assert_eq!(peers.allows(Uid::from_raw(uid)), allowed, "uid {uid}");
        }
        let root_only = Peers { caller: None };
        assert!(root_only.allows(Uid::from_raw(0)));
        assert!(!root_only.allows(Uid::from_raw(103)));
    }
}
