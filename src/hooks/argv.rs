//! The arguments Sentinel passes its scripts, parsed into types before anything else is
//! done. Pure.

use std::ffi::OsString;

use crate::sentinel::{Addr, Event, host_of};

/// `client-reconfig-script`: `<master> <role> <state> <from-ip> <from-port> <to-ip> <to-port>`.
/// The arguments only trigger a sync: the truth is read from the Sentinels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reconfig {
    /// The name Sentinel monitors the master under.
    pub(crate) master: String,
    pub(crate) role: Caller,
    /// `start` in current Redis (`failover` in older docs): any word.
    pub(crate) state: String,
    pub(crate) from: Addr,
    pub(crate) to: Addr,
}

/// The seven words, as Sentinel passed them (canonical hosts).
impl std::fmt::Display for Reconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self.role {
            Caller::Leader => "leader",
            Caller::Observer => "observer",
        };
        write!(
            f,
            "{} {role} {} {} {} {} {}",
            self.master, self.state, self.from.host, self.from.port, self.to.host, self.to.port
        )
    }
}

/// Which Sentinel runs the reconfig script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The failover leader, when the promoted replica reports master.
    Leader,
    /// Every other Sentinel, when a hello brings the new configuration.
    Observer,
}

/// `notification-script`: `<event> <description>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notify {
    pub(crate) event: Event,
}

/// Events of the notification script that can change who should be what.
const SYNC_EVENTS: &[&str] = &["+sdown", "-sdown", "+odown", "-odown", "+switch-master"];

impl Notify {
    /// Whether the event can change roles (the others need no sync; nor does one
    /// Sentinel's `+sdown` of the master: [`Event::is_masters_sdown`]).
    pub(crate) fn syncs(&self) -> bool {
        SYNC_EVENTS.contains(&self.event.name.as_str()) && !self.event.is_masters_sdown()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArgvError {
    #[error("expected {expected} arguments ({usage}), got {got}")]
    Count {
        expected: usize,
        usage: &'static str,
        got: usize,
    },
    #[error("argument {0} is not UTF-8")]
    NotUtf8(usize),
    #[error("argument {n} ({what}) is {value:?}: {expected}")]
    Bad {
        n: usize,
        what: &'static str,
        value: String,
        expected: &'static str,
    },
}

const RECONFIG_USAGE: &str = "<master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>";
const NOTIFY_USAGE: &str = "<event> <description>";

/// The arguments after `argv[0]` as text, exactly `usage`'s count of them.
fn words(
    args: &[OsString],
    expected: usize,
    usage: &'static str,
) -> Result<Vec<String>, ArgvError> {
    if args.len() != expected {
        return Err(ArgvError::Count {
            expected,
            usage,
            got: args.len(),
        });
    }
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            a.to_str()
                .map(String::from)
                .ok_or(ArgvError::NotUtf8(i + 1))
        })
        .collect()
}

impl Reconfig {
    /// From the arguments after `argv[0]`.
    pub(crate) fn parse(args: &[OsString]) -> Result<Self, ArgvError> {
        let w = words(args, 7, RECONFIG_USAGE)?;
        let bad = |n: usize, what, expected| ArgvError::Bad {
            n,
            what,
            value: w[n - 1].clone(),
            expected,
        };
        let nonempty = |n: usize, what| {
            Some(w[n - 1].clone())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(n, what, "not empty"))
        };
        let addr = |n: usize, host, port| -> Result<Addr, ArgvError> {
            let host = host_of(&w[n - 1]).ok_or_else(|| bad(n, host, "a host name or address"))?;
            let port = w[n]
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(n + 1, port, "a TCP port from 1 to 65535"))?;
            Ok(Addr { host, port })
        };
        let role = match w[1].as_str() {
            "leader" => Caller::Leader,
            "observer" => Caller::Observer,
            _ => return Err(bad(2, "role", "leader or observer")),
        };
        Ok(Reconfig {
            master: nonempty(1, "master-name")?,
            role,
            state: nonempty(3, "state")?,
            from: addr(4, "from-ip", "from-port")?,
            to: addr(6, "to-ip", "to-port")?,
        })
    }
}

impl Notify {
    /// From the arguments after `argv[0]`.
    pub(crate) fn parse(args: &[OsString]) -> Result<Self, ArgvError> {
        let mut w = words(args, 2, NOTIFY_USAGE)?;
        let description = w.pop().expect("two words");
        let name = w.pop().expect("two words");
        Ok(Notify {
            event: Event { name, description },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn reconfig_arguments_parse_into_types() {
        let r = Reconfig::parse(&args(&[
            "redis-ha",
            "observer",
            "start",
            "10.0.0.1",
            "6379",
            "FD00::0002",
            "6380",
        ]))
        .unwrap();
        assert_eq!(r.master, "redis-ha");
        assert_eq!(r.role, Caller::Observer);
        assert_eq!(r.state, "start");
        assert_eq!(r.from.to_string(), "10.0.0.1:6379");
        assert_eq!(r.to.to_string(), "[fd00::2]:6380");
        // Host names, with announce-hostnames.
        let r = Reconfig::parse(&args(&[
            "m", "leader", "failover", "Node1", "6379", "node2", "6379",
        ]))
        .unwrap();
        assert_eq!((r.role, r.from.host.as_str()), (Caller::Leader, "node1"));
    }

    #[test]
    fn bad_reconfig_arguments_say_which_and_why() {
        let good = [
            "m", "leader", "start", "10.0.0.1", "6379", "10.0.0.2", "6379",
        ];
        let with = |i: usize, v: &str| {
            let mut a = args(&good);
            a[i] = v.into();
            a
        };
        let table: [(Vec<OsString>, &str); 7] = [
            (
                args(&good[..3]),
                "expected 7 arguments (<master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>), got 3",
            ),
            (args(&[]), "got 0"),
            (
                with(1, "boss"),
                "argument 2 (role) is \"boss\": leader or observer",
            ),
            (
                with(4, "http"),
                "argument 5 (from-port) is \"http\": a TCP port",
            ),
            (with(6, "0"), "argument 7 (to-port) is \"0\": a TCP port"),
            (with(0, ""), "argument 1 (master-name) is \"\": not empty"),
            (
                with(2, "").into_iter().take(7).collect(),
                "argument 3 (state) is \"\": not empty",
            ),
        ];
        for (a, want) in table {
            let e = Reconfig::parse(&a).unwrap_err().to_string();
            assert!(e.contains(want), "{a:?}: {e}");
        }
        let mut a = args(&good);
        a[5] = OsString::from_vec(vec![0xff, b'x']);
        assert_eq!(
            Reconfig::parse(&a).unwrap_err(),
            ArgvError::NotUtf8(6),
            "names the argument, not the count"
        );
    }

    #[test]
    fn a_host_of_only_dots_is_refused() {
        // Found by `make fuzz` (target sentinel_argv), as it fed it: `.` was
        // canonicalised to an empty host and accepted.
        let found = args(&["r", "leader", "9", ".", "6", ".", "6"]);
        assert_eq!(
            Reconfig::parse(&found).unwrap_err().to_string(),
            "argument 4 (from-ip) is \".\": a host name or address"
        );
        let mut to = args(&["m", "observer", "start", "10.0.0.1", "6379", "...", "6379"]);
        assert!(
            Reconfig::parse(&to)
                .unwrap_err()
                .to_string()
                .starts_with("argument 6 (to-ip) is \"...\""),
        );
        to[5] = "Node2.".into();
        assert_eq!(Reconfig::parse(&to).unwrap().to.host, "node2");
    }

    #[test]
    fn notify_takes_two_words_and_knows_which_events_sync() {
        let n = Notify::parse(&args(&["+switch-master", "m 1 2 3 4"])).unwrap();
        assert!(n.syncs());
        let sdown = |d: &str| Notify::parse(&args(&["+sdown", d])).unwrap().syncs();
        assert!(sdown("slave 10.0.0.2:6379 10.0.0.2 6379 @ m 10.0.0.1 6379"));
        assert!(!sdown("master m 10.0.0.1 6379"), "one Sentinel's verdict");
        assert_eq!(n.event.description, "m 1 2 3 4");
        for event in ["+reboot", "+convert-to-slave", "+failover-end"] {
            assert!(
                !Notify::parse(&args(&[event, "x"])).unwrap().syncs(),
                "{event}"
            );
        }
        for bad in [&["+sdown"][..], &["+sdown", "a", "b"]] {
            let e = Notify::parse(&args(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("expected 2 arguments (<event> <description>)"),
                "{e}"
            );
        }
    }
}
