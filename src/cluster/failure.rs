//! Which failures of a Pacemaker tool are worth retrying: its exit code (Pacemaker's
//! `crm_exit_t`, see `crm_error -X --list`), its stderr, or how it failed to run.

use std::io::ErrorKind;
use std::time::Duration;

use super::ClusterError;

/// How a tool run went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'a> {
    /// It could not be started.
    Spawn(ErrorKind),
    /// It exited non-zero; its stderr.
    Exit(i32, &'a str),
    /// A signal that was not ours ended it.
    Signal(i32),
    /// We killed it at the deadline.
    TimedOut(Duration),
    /// Not started: the run's deadline had passed.
    OutOfTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Transient,
    Permanent,
}

/// The class of a failure and what it means. When in doubt: transient. A retry of a
/// permanent failure costs a few futile runs; giving up on a transient one leaves the
/// roles wrong until the next reconciliation.
pub(crate) fn classify(failure: Failure<'_>) -> (Class, String) {
    use Class::{Permanent, Transient};
    match failure {
        Failure::Spawn(ErrorKind::NotFound) => (
            Permanent,
            "not found on PATH (install pacemaker-cli-utils)".into(),
        ),
        Failure::Spawn(ErrorKind::PermissionDenied) => (
            Permanent,
            "not allowed to run it (file mode, or systemd ExecPaths/NoExecPaths of the calling service)"
                .into(),
        ),
        Failure::Spawn(kind) => (Transient, format!("cannot start it: {kind}")),
        Failure::TimedOut(limit) => (
            Transient,
            format!("no answer within {limit:?} (cluster busy?); killed it"),
        ),
        Failure::Signal(signal) => (Transient, format!("killed by signal {signal}")),
        Failure::OutOfTime => (Transient, "not run: no time left before the deadline".into()),
        Failure::Exit(code, stderr) => {
            let (class, meaning) = exit_class(code, stderr);
            let told = if stderr.is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(stderr))
            };
            (class, format!("exit {code} ({meaning}){told}"))
        }
    }
}

fn exit_class(code: i32, stderr: &str) -> (Class, &'static str) {
    use Class::{Permanent, Transient};
    let cannot_load = stderr.contains("Could not connect to the CIB");
    match code {
        102 => (
            Transient,
            "not connected to the CIB: is Pacemaker running here?",
        ),
        124 => (Transient, "timed out"),
        75 => (Transient, "temporary failure"),
        106 => (Transient, "quorum required"),
        113 => (Transient, "busy"),
        69 => (Transient, "a service it needs is unavailable"),
        71 => (Transient, "operating system error"),
        103 | 104 => (Transient, "raced with another CIB update"),
        105 if stderr.contains("Could not map name=") => (
            Permanent,
            "no such node in the CIB: compare with `crm_node --list`",
        ),
        105 if cannot_load => (Permanent, "no CIB: the file CIB_file names does not exist"),
        105 => (Permanent, "no such object"),
        // Only a CIB_file gives this: a file being rewritten in place by another tool
        // (crm_attribute truncates, then writes), unreadable, or corrupt.
        78 if cannot_load => (Transient, "cannot load the CIB file"),
        78 => (Permanent, "invalid configuration"),
        4 | 77 => (
            Permanent,
            "insufficient privileges: run as root or hacluster, add the user to haclient, or grant a Pacemaker ACL",
        ),
        2 | 64 => (Permanent, "invalid arguments"),
        5 => (Permanent, "not installed"),
        3 | 6 | 65..=68 | 70 | 72 | 73 | 76 | 100 | 101 | 107..=109 => {
            (Permanent, "refused (see crm_error -X)")
        }
        _ if is_busy(stderr) => (Transient, "busy or not connected"),
        _ => (Transient, "unknown failure"),
    }
}

/// The errno texts Pacemaker prints for a busy or unreachable cluster.
fn is_busy(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    [
        "not connected",
        "connection refused",
        "resource temporarily unavailable",
        "device or resource busy",
        "timed out",
        "timer expired",
        "try again",
    ]
    .iter()
    .any(|pattern| stderr.contains(pattern))
}

fn one_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The error for `command`'s failure.
pub(crate) fn error(command: &str, failure: Failure<'_>) -> ClusterError {
    let (class, reason) = classify(failure);
    let command = command.to_string();
    match class {
        Class::Transient => ClusterError::Transient { command, reason },
        Class::Permanent => ClusterError::Permanent { command, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::Class::{Permanent, Transient};
    use super::*;

    #[test]
    fn exit_codes_and_stderr() {
        // stderr texts as Pacemaker 2.1.5 prints them (no daemons, CIB files).
        let table = [
            (
                102,
                "crm_attribute: Could not connect to the CIB: Transport endpoint is not connected",
                Transient,
            ),
            (
                102,
                "Could not connect to the CIB: Transport endpoint is not connected\nInit failed, could not perform requested operations",
                Transient,
            ),
            (124, "", Transient),
            (75, "", Transient),
            (106, "", Transient),
            (113, "", Transient),
            (103, "", Transient),
            (
                105,
                "crm_attribute: Could not map name=nodeX to a UUID",
                Permanent,
            ),
            (
                105,
                "Could not connect to the CIB: No such device or address\nInit failed, could not perform requested operations",
                Permanent,
            ),
            (
                105,
                "crm_resource: Resource 'RedisLBWriteBlock-clone' not found\nError performing operation: No such object",
                Permanent,
            ),
            (
                78,
                "crm_attribute: Could not connect to the CIB: Update does not conform to the configured schema",
                Transient,
            ),
            (
                78,
                "Call failed: Update does not conform to the configured schema",
                Permanent,
            ),
            (4, "", Permanent),
            (77, "", Permanent),
            (64, "crm_attribute: unknown option", Permanent),
            (2, "", Permanent),
            (108, "", Permanent),
            (
                1,
                "Error performing operation: Device or resource busy",
                Transient,
            ),
            (1, "Connection refused", Transient),
            (1, "Error performing operation: Error occurred", Transient),
            (200, "", Transient),
        ];
        for (code, stderr, want) in table {
            let (class, reason) = classify(Failure::Exit(code, stderr));
            assert_eq!(class, want, "exit {code} {stderr:?}: {reason}");
            assert!(reason.starts_with(&format!("exit {code} (")), "{reason}");
            if let Some(first) = stderr.lines().next() {
                assert!(reason.contains(first), "{reason} lacks stderr");
            }
        }
    }

    #[test]
    fn ways_of_not_running() {
        let table = [
            (Failure::Spawn(ErrorKind::NotFound), Permanent, "PATH"),
            (
                Failure::Spawn(ErrorKind::PermissionDenied),
                Permanent,
                "ExecPaths",
            ),
            (
                Failure::Spawn(ErrorKind::WouldBlock),
                Transient,
                "cannot start",
            ),
            (Failure::TimedOut(Duration::from_secs(3)), Transient, "3s"),
            (Failure::Signal(9), Transient, "signal 9"),
            (Failure::OutOfTime, Transient, "deadline"),
        ];
        for (failure, want, says) in table {
            let (class, reason) = classify(failure);
            assert_eq!(class, want, "{failure:?}");
            assert!(reason.contains(says), "{failure:?}: {reason}");
        }
    }

    #[test]
    fn the_error_names_the_command() {
        let err = error(
            "crm_attribute --node nodeX --name redis_role --update primary",
            Failure::Exit(105, "crm_attribute: Could not map name=nodeX to a UUID\n"),
        );
        assert!(matches!(err, ClusterError::Permanent { .. }));
        assert_eq!(
            err.to_string(),
            "crm_attribute --node nodeX --name redis_role --update primary failed: exit 105 \
             (no such node in the CIB: compare with `crm_node --list`): \
             crm_attribute: Could not map name=nodeX to a UUID"
        );
    }
}
