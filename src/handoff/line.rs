//! One line in or out of a unix stream, bounded in size and by a deadline for the whole
//! line: a peer that stalls or trickles a byte at a time gets no more time than one that
//! sends nothing.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    #[error("nothing whole within {0:?}")]
    Deadline(Duration),
    #[error("closed before a whole line")]
    Closed,
    #[error("more than {0} bytes without a newline")]
    TooLong(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What is left of `budget` since `start`, or the deadline error.
fn left(start: Instant, budget: Duration) -> Result<Duration, LineError> {
    budget
        .checked_sub(start.elapsed())
        .filter(|d| !d.is_zero())
        .ok_or(LineError::Deadline(budget))
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Reads up to and including the first newline: at most `max` bytes, all of them within
/// `budget`. Whatever follows the newline in the same read is kept, so the parser sees it
/// and refuses the line.
pub(crate) fn read(
    stream: &mut UnixStream,
    max: usize,
    budget: Duration,
) -> Result<Vec<u8>, LineError> {
    let start = Instant::now();
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        stream.set_read_timeout(Some(left(start, budget)?))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(LineError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => return Err(LineError::Deadline(budget)),
            Err(e) => return Err(e.into()),
        };
        line.extend_from_slice(&chunk[..n]);
        if line.len() > max {
            return Err(LineError::TooLong(max));
        }
        if chunk[..n].contains(&b'\n') {
            return Ok(line);
        }
    }
}

/// Writes `line` whole within `budget`.
pub(crate) fn write(
    stream: &mut UnixStream,
    line: &str,
    budget: Duration,
) -> Result<(), LineError> {
    let start = Instant::now();
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        stream.set_write_timeout(Some(left(start, budget)?))?;
        match stream.write(rest) {
            Ok(0) => return Err(LineError::Closed),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Err(LineError::Deadline(budget)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickling_peer_gets_the_same_deadline_as_a_silent_one() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let trickle = std::thread::spawn(move || {
            // One byte every 20 ms, never a newline, until we hang up.
            while theirs.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let got = read(&mut ours, 512, Duration::from_millis(300));
        assert!(matches!(got, Err(LineError::Deadline(_))), "{got:?}");
        drop(ours);
        trickle.join().unwrap();
    }

    #[test]
    fn lines_are_bounded_and_whole() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"hello\n").unwrap();
        assert_eq!(
            read(&mut ours, 512, Duration::from_secs(5)).unwrap(),
            b"hello\n"
        );
        theirs.write_all(&[b'y'; 600]).unwrap();
        assert!(matches!(
            read(&mut ours, 512, Duration::from_secs(5)),
            Err(LineError::TooLong(512))
        ));
        drop(theirs);
        assert!(matches!(
            read(&mut ours, 512, Duration::from_secs(5)),
            Err(LineError::Closed)
        ));
    }
}
