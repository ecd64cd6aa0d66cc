//! Logging the way `ocf_log` does it: syslog and/or files as execd's `HA_*` variables say,
//! stderr otherwise, lines tagged `agent(instance)[pid]`.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::process::Process;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }

    fn syslog_severity(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warn => 4,
            Level::Error => 3,
        }
    }
}

/// Where log lines go, decided once from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Logger {
    tag: String,
    facility: Option<u8>,
    logfile: Option<String>,
    debuglog: Option<String>,
    debug: bool,
    /// Also to stderr when syslog or a file is in use (the Sentinel helper: Sentinel
    /// logs its scripts' stderr only on failure, an operator runs `redis-ha sync` by hand).
    also_stderr: bool,
}

impl Logger {
    pub(crate) fn from_process(p: &Process, agent: &str, instance: Option<&str>) -> Self {
        let tag = format!(
            "{agent}({})[{}]",
            instance.unwrap_or(agent),
            std::process::id()
        );
        let nonempty = |name| p.var(name).filter(|v| !v.is_empty()).map(str::to_string);
        Self {
            tag,
            facility: p.var("HA_LOGFACILITY").and_then(facility_code),
            logfile: nonempty("HA_LOGFILE"),
            debuglog: nonempty("HA_DEBUGLOG"),
            debug: p.var("HA_debug").is_some_and(|v| !v.is_empty() && v != "0"),
            also_stderr: false,
        }
    }

    /// The Sentinel helper's logger: syslog (daemon) and stderr, tagged `name[pid]`, and
    /// the file `HA_LOGFILE` names, as for the agents (Sentinel passes its environment).
    pub(crate) fn for_tool(name: &str, p: &Process) -> Self {
        Self {
            tag: format!("{name}[{}]", std::process::id()),
            facility: facility_code("daemon"),
            logfile: p
                .var("HA_LOGFILE")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            debuglog: None,
            debug: false,
            also_stderr: true,
        }
    }

    pub(crate) fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }

    pub(crate) fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    pub(crate) fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }

    pub(crate) fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }

    /// Logs the failure and prints the `ocf-exit-reason:` line Pacemaker shows to operators.
    pub(crate) fn exit_reason(&self, msg: &str) {
        self.error(msg);
        let _ = writeln!(std::io::stderr(), "ocf-exit-reason:{}", one_line(msg));
    }

    fn log(&self, level: Level, msg: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let line = format!("{}: {}", level.word(), one_line(msg));
        if let Some(facility) = self.facility {
            send_syslog(facility, level, &self.tag, &line);
        }
        let file = if level == Level::Debug {
            self.debuglog.as_ref()
        } else {
            self.logfile.as_ref()
        };
        if let Some(path) = file {
            append(path, &format!("{} {}:    {}\n", hadate(), self.tag, line));
        }
        if self.also_stderr || (self.facility.is_none() && file.is_none()) {
            let _ = writeln!(std::io::stderr(), "{}: {}", self.tag, line);
        }
    }
}

/// `msg` as one line: control characters (a newline in an argument Sentinel passed, in
/// a Redis error text) escaped as `\n`, `\u{1b}`..., so nothing can forge a log line.
fn one_line(msg: &str) -> std::borrow::Cow<'_, str> {
    if msg.chars().any(char::is_control) {
        msg.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        msg.into()
    }
}

fn append(path: &str, text: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(text.as_bytes());
    }
}

/// One RFC 3164 datagram to the local syslog socket; a missing socket is not our failure.
fn send_syslog(facility: u8, level: Level, tag: &str, line: &str) {
    if let Ok(sock) = UnixDatagram::unbound() {
        let pri = u16::from(facility) * 8 + u16::from(level.syslog_severity());
        let _ = sock.send_to(format!("<{pri}>{tag}: {line}").as_bytes(), "/dev/log");
    }
}

/// Syslog facility names as `logger -p` knows them; `none` or an unknown name disables syslog.
fn facility_code(name: &str) -> Option<u8> {
    let code = match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code)
}

/// `ocf-shellfuncs`' `hadate` (`%Y/%m/%d_%T`), in UTC, plus milliseconds: failovers
/// are told apart in milliseconds.
fn hadate() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", format_utc(now.as_secs()), now.subsec_millis())
}

fn format_utc(secs: u64) -> String {
    let (year, month, day, h, m, s) = civil_utc(secs);
    format!("{year:04}/{month:02}/{day:02}_{h:02}:{m:02}:{s:02}")
}

/// Seconds since the epoch as (year, month, day, hour, minute, second), UTC.
pub(crate) fn civil_utc(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil conversion.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line_whatever_it_carries() {
        let table = [
            ("plain", "plain"),
            ("+sdown\nERROR: forged", "+sdown\\nERROR: forged"),
            ("tab\tand\rcr", "tab\\tand\\rcr"),
            ("esc \u{1b}[31m", "esc \\u{1b}[31m"),
            ("ünïcode", "ünïcode"),
        ];
        for (msg, want) in table {
            assert_eq!(one_line(msg), want, "{msg:?}");
        }
    }

    #[test]
    fn dates_format_like_hadate() {
        let table = [
            (0, "1970/01/01_00:00:00"),
            (951_782_400, "2000/02/29_00:00:00"),
            (1_795_910_399, "2026/11/28_23:59:59"),
        ];
        for (secs, want) in table {
            assert_eq!(format_utc(secs), want, "{secs}");
        }
    }

    #[test]
    fn facilities_follow_logger_names() {
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("none"), None);
        assert_eq!(facility_code(""), None);
    }
}
