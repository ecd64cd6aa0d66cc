//! Runs a child process until it exits or a deadline passes, whichever comes first: stdin
//! is /dev/null or a given text, stdout and stderr are captured, and a child that overruns
//! is SIGKILLed.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

/// How long to wait for the output pipes after the child is gone: a descendant that
/// inherited them may keep them open, and it must not hold us much longer.
const PIPE_GRACE: Duration = Duration::from_millis(100);

/// How long past the grace to wait while a pipe still has something to read (the child's
/// last words, or its end): on a loaded host the reading thread may not have run yet, and
/// an iptables whose stderr was lost reads as a failure without a reason.
const PIPE_LATE: Duration = Duration::from_millis(500);

/// What a finished (or killed) child did.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) end: End,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Code(i32),
    /// Killed by a signal that was not ours.
    Signal(i32),
    /// Still running at the deadline, so we killed it.
    TimedOut(Duration),
}

impl Finished {
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }

    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` for at most `timeout` (plus [`PIPE_GRACE`], or [`PIPE_LATE`] at most, to
/// collect its output).
/// Only a failure to start it (e.g. `NotFound`) or to reap it is an `Err`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> io::Result<Finished> {
    run_inner(cmd.stdin(Stdio::null()), None, timeout)
}

/// [`run`] with `input` on the child's stdin (then closed), e.g. a script for
/// `iptables-restore`.
pub(crate) fn run_with_input(
    cmd: &mut Command,
    input: &[u8],
    timeout: Duration,
) -> io::Result<Finished> {
    run_inner(cmd.stdin(Stdio::piped()), Some(input.to_vec()), timeout)
}

fn run_inner(cmd: &mut Command, input: Option<Vec<u8>>, timeout: Duration) -> io::Result<Finished> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let started = (|| {
        if let Some(input) = input {
            feed(child.stdin.take(), input)?;
        }
        let stdout = Capture::start(child.stdout.take())?;
        let stderr = Capture::start(child.stderr.take())?;
        let exited = exit_signal(&child)?;
        Ok::<_, io::Error>((stdout, stderr, exited))
    })();
    let (stdout, stderr, exited) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let end = match exited.recv_timeout(timeout) {
        // Disconnected: the waiter could not wait; reaping below blocks instead.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => status_end(child.wait()?),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Not reaped yet, so the PID is still this child's.
            let _ = child.kill();
            child.wait()?;
            End::TimedOut(timeout)
        }
    };
    // Whatever the child wrote before it ended is in the pipes by now.
    let pipes_deadline = Instant::now() + PIPE_GRACE;
    Ok(Finished {
        end,
        stdout: stdout.collect(pipes_deadline),
        stderr: stderr.collect(pipes_deadline),
    })
}

fn status_end(status: ExitStatus) -> End {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => End::Code(code),
        (None, Some(signal)) => End::Signal(signal),
        (None, None) => End::Code(-1),
    }
}

/// A message when the child has exited, without reaping it (`WNOWAIT`): the `Child` stays
/// the only one that reaps, so killing it after a timeout can never hit a reused PID.
fn exit_signal(child: &Child) -> io::Result<Receiver<()>> {
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("child-wait".into())
        .spawn(move || {
            loop {
                match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(_) => {
                        let _ = tx.send(());
                        break;
                    }
                    // ECHILD: already reaped by the `Child` after a kill: nobody listens.
                    Err(_) => break,
                }
            }
        })?;
    Ok(rx)
}

/// Writes `input` to the child's stdin on a thread of its own, then closes it: a child that
/// does not read cannot block us past the deadline (once it is killed, the write fails).
/// A child that exits without reading it all is not our error; its exit status says more.
fn feed(pipe: Option<impl Write + Send + 'static>, input: Vec<u8>) -> io::Result<()> {
    if let Some(mut pipe) = pipe {
        thread::Builder::new()
            .name("child-stdin".into())
            .spawn(move || {
                let _ = pipe.write_all(&input);
            })?;
    }
    Ok(())
}

/// One output pipe read on its own thread, so neither pipe can fill up and stall the child.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
    /// Our own handle on the pipe, to ask whether anything is left to read in it.
    probe: Option<OwnedFd>,
}

impl Capture {
    fn start(pipe: Option<impl Read + AsFd + Send + 'static>) -> io::Result<Capture> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let mut probe = None;
        if let Some(mut pipe) = pipe {
            probe = Some(pipe.as_fd().try_clone_to_owned()?);
            let shared = Arc::clone(&buf);
            thread::Builder::new()
                .name("child-pipe".into())
                .spawn(move || {
                    let mut chunk = [0u8; 8192];
                    loop {
                        match pipe.read(&mut chunk) {
                            Ok(0) => break,
                            Ok(n) => shared.lock().unwrap().extend_from_slice(&chunk[..n]),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => break,
                        }
                    }
                    let _ = tx.send(());
                })?;
        } else {
            let _ = tx.send(());
        }
        Ok(Capture { buf, done, probe })
    }

    /// What was read by the time the pipe closed, or by `deadline` if it stays open and
    /// empty (a descendant holding it); while it still has data or its end to deliver,
    /// up to [`PIPE_LATE`] more.
    fn collect(self, deadline: Instant) -> Vec<u8> {
        let late = deadline + PIPE_LATE;
        let mut until = deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if !matches!(
                self.done.recv_timeout(left),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                break;
            }
            let now = Instant::now();
            if now >= late || !self.probe.as_ref().is_some_and(pending) {
                break;
            }
            until = (now + Duration::from_millis(10)).min(late);
        }
        std::mem::take(&mut *self.buf.lock().unwrap())
    }
}

/// Whether a read of the pipe would return at once: data, or the end of it.
fn pending(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let done = run(
            &mut sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(done.end, End::Code(3));
        assert_eq!(done.stdout_text(), "out\n");
        assert_eq!(done.stderr_text(), "err");
    }

    #[test]
    fn stdin_is_empty() {
        let done = run(&mut sh("cat; echo end"), Duration::from_secs(5)).unwrap();
        assert_eq!(done.stdout_text(), "end\n");
    }

    #[test]
    fn input_reaches_stdin_and_is_closed() {
        let done = run_with_input(
            &mut sh("cat; echo end"),
            b"line 1\nline 2\n",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(done.end, End::Code(0));
        assert_eq!(done.stdout_text(), "line 1\nline 2\nend\n");
    }

    #[test]
    fn a_child_that_never_reads_its_input_is_still_killed_at_the_deadline() {
        // More than a pipe holds: the writer blocks until the kill breaks the pipe.
        let input = vec![b'x'; 1 << 20];
        let started = Instant::now();
        let done =
            run_with_input(&mut sh("exec sleep 10"), &input, Duration::from_millis(200)).unwrap();
        assert_eq!(done.end, End::TimedOut(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn an_overrunning_child_is_killed_at_the_deadline() {
        let started = Instant::now();
        let done = run(
            &mut sh("echo before; exec sleep 10"),
            Duration::from_millis(200),
        )
        .unwrap();
        let took = started.elapsed();
        assert_eq!(done.end, End::TimedOut(Duration::from_millis(200)));
        assert_eq!(done.stdout_text(), "before\n");
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn a_descendant_holding_the_pipes_does_not_hold_us() {
        let started = Instant::now();
        let done = run(&mut sh("sleep 3 & echo parent"), Duration::from_secs(5)).unwrap();
        assert_eq!(done.end, End::Code(0));
        assert_eq!(done.stdout_text(), "parent\n");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_signal_is_reported_as_such() {
        let done = run(&mut sh("kill -TERM $$"), Duration::from_secs(5)).unwrap();
        assert_eq!(done.end, End::Signal(15));
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let err = run(
            &mut Command::new("/nonexistent/redis-ha-no-such-tool"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
