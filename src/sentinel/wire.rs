//! One exchange with a Sentinel or a Redis over TCP, bounded as a whole: resolving,
//! connecting, sending and reading every reply share one deadline, and the replies one
//! size cap, so a peer that stalls, trickles a byte at a time or announces a huge reply
//! costs at most the timeout. The redis crate bounds each `read()` only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use redis::Value;

use super::Addr;
use crate::resolve::{self, Resolved};

/// The most all the replies of one exchange may take: `SENTINEL REPLICAS` of a master
/// with a hundred replicas is ~100 KiB.
pub(crate) const MAX_REPLY_BYTES: usize = 1 << 20;

/// Arrays nest this deep at most (Sentinel's replies: two).
const MAX_DEPTH: usize = 4;

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// Unreachable, reset, or not done by the deadline: worth trying again.
    #[error("{0}")]
    Unreachable(String),
    /// It answered something that is not a bounded RESP2 reply.
    #[error("{0}")]
    Protocol(String),
}

/// Sends `request` (already RESP-encoded) to `addr` and reads `expected` replies, all
/// within `timeout`.
pub(crate) fn exchange(
    addr: &Addr,
    timeout: Duration,
    request: &[u8],
    expected: usize,
) -> Result<Vec<Value>, WireError> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| WireError::Unreachable(format!("no answer within {timeout:?}")))
    };
    let mut stream = connect(addr, timeout, left()?)?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            WireError::Unreachable(format!("no answer within {timeout:?}"))
        }
        _ => WireError::Unreachable(e.to_string()),
    };
    stream.set_nodelay(true).map_err(io)?;
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    stream.write_all(request).map_err(io)?;

    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut replies = Vec::with_capacity(expected);
    let mut start = 0;
    let mut chunk = [0u8; 8192];
    while replies.len() < expected {
        if let Some((value, len)) = next_reply(&buf[start..])? {
            replies.push(value);
            start += len;
            continue;
        }
        stream.set_read_timeout(Some(left()?)).map_err(io)?;
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Err(WireError::Unreachable(
                "the connection was closed before the answer was complete".into(),
            ));
        }
        if buf.len() + n > MAX_REPLY_BYTES {
            return Err(WireError::Protocol(format!(
                "the answer is larger than {MAX_REPLY_BYTES} bytes"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(replies)
}

/// A TCP connection to `addr` within `left` (what remains of `timeout`, which the errors
/// name); a host name is resolved within it too (`crate::resolve`), then each of its
/// addresses tried in turn.
pub(crate) fn connect(
    addr: &Addr,
    timeout: Duration,
    left: Duration,
) -> Result<TcpStream, WireError> {
    let started = Instant::now();
    let late = || WireError::Unreachable(format!("no connection within {timeout:?}"));
    let targets: Vec<SocketAddr> = match resolve::one(&addr.host, left) {
        Resolved::Addrs(ips) if !ips.is_empty() => ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, addr.port))
            .collect(),
        Resolved::Addrs(_) => {
            return Err(WireError::Unreachable(format!(
                "{} resolves to no address",
                addr.host
            )));
        }
        Resolved::Late => {
            return Err(WireError::Unreachable(format!(
                "{} not resolved within {timeout:?}",
                addr.host
            )));
        }
    };
    let mut last = None;
    for target in targets {
        let remaining = left.checked_sub(started.elapsed()).filter(|d| !d.is_zero());
        let Some(remaining) = remaining else {
            return Err(late());
        };
        match TcpStream::connect_timeout(&target, remaining) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => last = Some(late()),
            Err(e) => last = Some(WireError::Unreachable(e.to_string())),
        }
    }
    Err(last.unwrap_or_else(late))
}

/// The first complete reply in `buf` and how many bytes it took, `None` while it is
/// incomplete: framed here (bounded), then decoded by the redis crate.
pub(crate) fn next_reply(buf: &[u8]) -> Result<Option<(Value, usize)>, WireError> {
    let Some(len) = frame(buf)? else {
        return Ok(None);
    };
    let value =
        redis::parse_redis_value(&buf[..len]).map_err(|e| WireError::Protocol(e.to_string()))?;
    Ok(Some((value, len)))
}

/// The length of the first complete RESP2 value in `buf`, `None` while it is incomplete.
/// Refuses at once what no complete reply could make right: an unknown type, a length
/// past the cap, arrays nested too deep.
pub(crate) fn frame(buf: &[u8]) -> Result<Option<usize>, WireError> {
    value_end(buf, 0, 0)
}

fn value_end(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, WireError> {
    let Some(line_end) = line_end(buf, at)? else {
        return Ok(None);
    };
    let after_line = line_end + 2;
    match buf[at] {
        b'+' | b'-' | b':' => Ok(Some(after_line)),
        b'$' => {
            let Some(len) = length(&buf[at + 1..line_end])? else {
                return Ok(Some(after_line)); // $-1: nil
            };
            let end = after_line + len + 2;
            if end > buf.len() {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(WireError::Protocol(
                    "a bulk string does not end where its length says".into(),
                ));
            }
            Ok(Some(end))
        }
        b'*' => {
            if depth >= MAX_DEPTH {
                return Err(WireError::Protocol(format!(
                    "arrays nested deeper than {MAX_DEPTH}"
                )));
            }
            let Some(count) = length(&buf[at + 1..line_end])? else {
                return Ok(Some(after_line)); // *-1: nil
            };
            let mut next = after_line;
            for _ in 0..count {
                match value_end(buf, next, depth + 1)? {
                    Some(end) => next = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(next))
        }
        other => Err(WireError::Protocol(format!(
            "not a RESP2 reply (type byte {:?})",
            char::from(other)
        ))),
    }
}

/// Where the line starting at `at` ends (its `\r`), `None` while it is incomplete. A line
/// is short: a type byte and a number, or a status or error text.
fn line_end(buf: &[u8], at: usize) -> Result<Option<usize>, WireError> {
    const MAX_LINE: usize = 64 * 1024;
    let rest = &buf[at.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(at + i)),
        None if rest.len() > MAX_LINE => Err(WireError::Protocol(format!(
            "a reply line longer than {MAX_LINE} bytes"
        ))),
        None => Ok(None),
    }
}

/// A length or count: `-1` is nil (`None`); anything past the cap is refused before a
/// byte of it is read.
fn length(digits: &[u8]) -> Result<Option<usize>, WireError> {
    let text = std::str::from_utf8(digits).unwrap_or("");
    if text == "-1" {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_REPLY_BYTES => Ok(Some(n)),
        Ok(n) => Err(WireError::Protocol(format!(
            "a reply announces {n} bytes or elements, more than {MAX_REPLY_BYTES}"
        ))),
        Err(_) => Err(WireError::Protocol(format!(
            "not a length: {:?}",
            String::from_utf8_lossy(digits)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whole_or_not_at_all() {
        // (bytes, the first value's length or None while incomplete)
        let table: &[(&[u8], Option<usize>)] = &[
            (b"+OK\r\n", Some(5)),
            (b"+OK\r", None),
            (b"-ERR no\r\n:1\r\n", Some(9)),
            (b":12\r\n", Some(5)),
            (b"$3\r\nabc\r\n", Some(9)),
            (b"$3\r\nab", None),
            (b"$-1\r\n", Some(5)),
            (b"*-1\r\n", Some(5)),
            (b"*0\r\n", Some(4)),
            (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n+x", Some(19)),
            (b"*2\r\n$1\r\na\r\n", None),
            (b"", None),
        ];
        for (bytes, want) in table {
            assert_eq!(
                frame(bytes).unwrap(),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn what_no_reply_could_make_right_is_refused_at_once() {
        let table: &[(&[u8], &str)] = &[
            (b"$1000000000\r\n", "announces 1000000000 bytes"),
            (b"*99999999\r\n", "announces 99999999"),
            (b"$3\r\nabcd\r\n", "does not end where"),
            (b"%1\r\n", "not a RESP2 reply"),
            (b"$x\r\n", "not a length"),
            (b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "nested deeper"),
        ];
        for (bytes, reason) in table {
            let e = frame(bytes).unwrap_err();
            assert!(e.to_string().contains(reason), "{e} for {bytes:?}");
        }
        let long = vec![b'+'; 70 * 1024];
        assert!(
            frame(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
    }

    /// A peer on loopback that answers every connection with `script` (bytes, then the
    /// pause before the next): a stalled or trickling Sentinel.
    fn peer(script: Vec<(Vec<u8>, Duration)>) -> Addr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let script = script.clone();
                std::thread::spawn(move || {
                    for (bytes, pause) in script {
                        if stream.write_all(&bytes).is_err() {
                            return;
                        }
                        std::thread::sleep(pause);
                    }
                    // Closed with our request unread, the socket would send a reset,
                    // which can discard the replies before the client has read them.
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let _ = std::io::copy(&mut stream, &mut std::io::sink());
                });
            }
        });
        Addr {
            host: "127.0.0.1".into(),
            port,
        }
    }

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

    #[test]
    fn a_trickling_or_stalled_peer_costs_the_timeout_not_more() {
        let timeout = Duration::from_millis(300);
        let trickle: Vec<(Vec<u8>, Duration)> =
            std::iter::once((b"$100000\r\n".to_vec(), Duration::from_millis(50)))
                .chain((0..200).map(|_| (b"x".to_vec(), Duration::from_millis(50))))
                .collect();
        let stalled = vec![(b"+".to_vec(), Duration::from_secs(30))];
        for (case, script) in [("trickling", trickle), ("stalled", stalled)] {
            let addr = peer(script);
            let started = Instant::now();
            let e = exchange(&addr, timeout, PING, 1).unwrap_err();
            let took = started.elapsed();
            assert!(
                matches!(&e, WireError::Unreachable(r) if r.contains("no answer within")),
                "{case}: {e:?}"
            );
            // The deadline, not the per-read timeout: a trickle of 10 s is cut at 0.3 s.
            assert!(took < Duration::from_secs(2), "{case}: took {took:?}");
        }
    }

    #[test]
    fn a_huge_announced_reply_is_refused_before_it_is_read() {
        let addr = peer(vec![(b"$900000000\r\n".to_vec(), Duration::from_secs(30))]);
        let e = exchange(&addr, Duration::from_secs(5), PING, 1).unwrap_err();
        assert!(
            matches!(&e, WireError::Protocol(r) if r.contains("announces 900000000")),
            "{e:?}"
        );
        // Many small values adding up past the cap: refused once the cap is reached.
        let mut big = format!("*{}\r\n", 100_000).into_bytes();
        for _ in 0..100_000 {
            big.extend_from_slice(b"$20\r\nxxxxxxxxxxxxxxxxxxxx\r\n");
        }
        let addr = peer(vec![(big, Duration::from_secs(30))]);
        let e = exchange(&addr, Duration::from_secs(5), PING, 1).unwrap_err();
        assert!(
            matches!(&e, WireError::Protocol(r) if r.contains("larger than")),
            "{e:?}"
        );
    }

    #[test]
    fn replies_split_anywhere_are_read_whole() {
        let reply = b"+OK\r\n*2\r\n$5\r\nhello\r\n:42\r\n".to_vec();
        let script = reply
            .iter()
            .map(|b| (vec![*b], Duration::from_millis(1)))
            .collect();
        let addr = peer(script);
        let replies = exchange(&addr, Duration::from_secs(5), PING, 2).unwrap();
        assert_eq!(
            replies,
            [
                Value::Okay,
                Value::Array(vec![Value::BulkString(b"hello".to_vec()), Value::Int(42)])
            ]
        );
    }

    #[test]
    fn a_name_that_does_not_resolve_is_unreachable() {
        let addr = Addr {
            host: "no-such-host.invalid".into(),
            port: 26379,
        };
        let e = exchange(&addr, Duration::from_secs(5), PING, 1).unwrap_err();
        assert!(matches!(e, WireError::Unreachable(_)), "{e:?}");
    }
}
