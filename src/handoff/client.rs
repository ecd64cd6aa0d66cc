//! A script's side: connect (bounded), send the request, wait (bounded) for the answer.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;

use super::line::{self, LineError};
use super::wire::{Answer, MAX_ANSWER, Request, WireError};
use super::{CONNECT, EXCHANGE};

#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    /// Nobody listens there (no socket, or a stale one), or this process may not reach it.
    #[error("cannot connect to {}: {errno}", path.display())]
    Unreachable { path: PathBuf, errno: Errno },
    /// The service was there, but the exchange did not complete.
    #[error("{} {what}: {source}", path.display())]
    Exchange {
        path: PathBuf,
        what: &'static str,
        source: LineError,
    },
    #[error("{}: the answer is not understood: {source}", path.display())]
    Answer { path: PathBuf, source: WireError },
}

impl AskError {
    /// Whether the service is not there for us (so the script may sync itself): no
    /// socket, a socket nobody listens on, or one this process may not open.
    pub(crate) fn service_absent(&self) -> bool {
        matches!(
            self,
            AskError::Unreachable {
                errno: Errno::ENOENT | Errno::ECONNREFUSED | Errno::EACCES | Errno::ENOTDIR,
                ..
            }
        )
    }
}

/// Connects with [`CONNECT`] as the bound (a full backlog makes a unix connect wait for
/// as long as the socket's send timeout).
fn connect(path: &Path) -> Result<UnixStream, Errno> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let bound = TimeVal::new(CONNECT.as_secs() as i64, CONNECT.subsec_micros() as i64);
    socket::setsockopt(&fd, sockopt::SendTimeout, &bound)?;
    let addr = UnixAddr::new(path)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Err(Errno::ETIMEDOUT),
            other => break other?,
        }
    }
    Ok(UnixStream::from(fd))
}

/// Asks the service at `path` for a sync; its answer, within [`EXCHANGE`].
pub(crate) fn ask(path: &Path, request: &Request) -> Result<Answer, AskError> {
    let start = Instant::now();
    let mut stream = connect(path).map_err(|errno| AskError::Unreachable {
        path: path.to_path_buf(),
        errno,
    })?;
    let exchange = |what, source| AskError::Exchange {
        path: path.to_path_buf(),
        what,
        source,
    };
    // A service that refuses us answers and closes without reading: our write then
    // fails, and its answer is what counts.
    let sent = line::write(&mut stream, &request.line(), CONNECT);
    if let Err(e @ LineError::Deadline(_)) = sent {
        return Err(exchange("sending the request", e));
    }
    let left = EXCHANGE.saturating_sub(start.elapsed());
    let answer = match (line::read(&mut stream, MAX_ANSWER, left), sent) {
        (Ok(answer), _) => answer,
        (Err(_), Err(e)) => return Err(exchange("sending the request", e)),
        (Err(e), Ok(())) => return Err(exchange("waiting for the answer", e)),
    };
    Answer::parse(&answer).map_err(|source| AskError::Answer {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::HelperExit;
    use crate::handoff::Origin;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_refusal_sent_before_our_request_is_still_the_answer() {
        let dir = std::env::temp_dir().join(format!("rha-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let refusing = std::thread::spawn(move || {
            // Answers at once and hangs up, whether our request came yet or not.
            for _ in 0..50 {
                let (mut peer, _) = listener.accept().unwrap();
                let refusal = Answer::new(HelperExit::GiveUp, "refused: uid 65534");
                peer.write_all(refusal.line().as_bytes()).unwrap();
            }
        });
        for _ in 0..50 {
            let answer = ask(&path, &Request::new(Origin::Notify, "+sdown x")).unwrap();
            assert_eq!(answer.exit, HelperExit::GiveUp);
        }
        refusing.join().unwrap();
        // Nobody listens any more: the service is absent, not failing.
        let gone = ask(&path, &Request::new(Origin::Notify, "+sdown x")).unwrap_err();
        assert!(gone.service_absent(), "{gone}");
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = ask(&path, &Request::new(Origin::Notify, "+sdown x")).unwrap_err();
        assert!(missing.service_absent(), "{missing}");
    }
}
