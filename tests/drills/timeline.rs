//! One drill's timeline: its own actions, the clients' observations and the lines of the
//! nodes' logs (Sentinel, Redis, Sentinel's scripts and the periodic sync, the block
//! agents), merged by time and printed as offsets from the drill's start.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the epoch (UTC): the clients' clock and the logs' (TZ=UTC).
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) t: i64,
    pub(crate) who: String,
    pub(crate) what: String,
}

pub(crate) struct Timeline {
    pub(crate) t0: i64,
    events: Vec<Event>,
    /// Whether `act` prints its line at once (a drill's running commentary).
    echo: bool,
}

/// Sentinel events worth a line (the WARNING-level ones and the failover's steps).
const SENTINEL_EVENTS: &[&str] = &[
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+try-failover",
    "+elected-leader",
    "+selected-slave",
    "+promoted-slave",
    "+switch-master",
    "+failover-end",
    "+convert-to-slave",
    "-failover-abort",
    "-script-error",
];

/// Redis log lines worth a line: start, role changes, the replica's full sync.
const REDIS_EVENTS: &[&str] = &[
    "Ready to accept connections",
    "MASTER MODE enabled",
    "Connecting to MASTER",
    "MASTER <-> REPLICA sync: Finished with success",
    "Connection with master lost",
];

impl Timeline {
    pub(crate) fn new() -> Self {
        Timeline {
            t0: now_us(),
            events: Vec::new(),
            echo: true,
        }
    }

    /// A timeline whose actions are only recorded, not printed as they happen: make
    /// chaos prints one line per step, and the whole timeline when a step fails.
    pub(crate) fn quiet() -> Self {
        Timeline {
            echo: false,
            ..Timeline::new()
        }
    }

    /// The drill's own action, now.
    pub(crate) fn act(&mut self, what: &str) -> i64 {
        let t = now_us();
        self.add_at(t, "drill", what);
        if self.echo {
            println!("  [{:>+7} ms] {what}", (t - self.t0) / 1000);
        }
        t
    }

    pub(crate) fn add_at(&mut self, t: i64, who: &str, what: &str) {
        self.events.push(Event {
            t,
            who: who.to_string(),
            what: what.to_string(),
        });
    }

    /// The nodes' log lines between t0 and now.
    pub(crate) fn add_logs(&mut self, state: &Path, nodes: usize) {
        let until = now_us();
        for n in 1..=nodes {
            let dir = state.join(format!("node{n}"));
            let who = |w: &str| format!("node{n} {w}");
            for (t, msg) in redis_log(&dir.join("sentinel.log")) {
                if SENTINEL_EVENTS.iter().any(|e| msg.starts_with(e)) {
                    self.window(t, until, &who("sentinel"), &shorten(&msg));
                }
            }
            for (t, msg) in redis_log(&dir.join("redis.log")) {
                if REDIS_EVENTS.iter().any(|e| msg.contains(e)) {
                    self.window(t, until, &who("redis"), &shorten(&msg));
                }
            }
            for (t, tag, msg) in ha_log(&dir.join("log-pacemaker/redis-ha.log")) {
                // The periodic sync's rounds that changed nothing are noise.
                if tag.starts_with("redis-ha-sync") && msg.contains("no change [ok") {
                    continue;
                }
                let tag = tag
                    .trim_start_matches("redis-ha-")
                    .trim_start_matches("sentinel-");
                self.window(t, until, &who(tag), &msg);
            }
            for (t, tag, msg) in ha_log(&dir.join("log-pacemaker/pacemaker.log")) {
                if tag.starts_with("RedisLB") {
                    let agent = tag.split('(').next().unwrap_or(&tag);
                    self.window(t, until, &who(agent), &msg);
                }
            }
        }
    }

    fn window(&mut self, t: i64, until: i64, who: &str, what: &str) {
        if t >= self.t0 - 1000 && t <= until {
            self.add_at(t, who, what);
        }
    }

    pub(crate) fn print(&mut self) {
        self.events.sort_by_key(|e| e.t);
        println!("  --- timeline (ms from the drill's start)");
        for e in &self.events {
            println!("  {:>+8}  {:<26} {}", (e.t - self.t0) / 1000, e.who, e.what);
        }
    }

    /// Every event so far (after `add_logs`: the logs' lines too).
    pub(crate) fn events(&self) -> &[Event] {
        &self.events
    }

    /// When the first Sentinel of `nodes` logged `+switch-master` at or after `t` (after
    /// `add_logs`): the moment a failover is done for the first Sentinel.
    pub(crate) fn first_switch_master(&self, t: i64, nodes: &[usize]) -> Option<i64> {
        self.first_sentinel_event(t, nodes, "+switch-master")
    }

    /// The first `+sdown master` at or after `t` from a Sentinel of `nodes`.
    pub(crate) fn first_master_sdown(&self, t: i64, nodes: &[usize]) -> Option<i64> {
        self.first_sentinel_event(t, nodes, "+sdown master")
    }

    /// When a majority of the Sentinels of `nodes` have each logged `+sdown master` at or
    /// after `t`: from then on the sync may foresee the promotion.
    pub(crate) fn majority_master_sdown(&self, t: i64, nodes: &[usize]) -> Option<i64> {
        let mut at: Vec<i64> = nodes
            .iter()
            .filter_map(|&n| self.first_sentinel_event(t, &[n], "+sdown master"))
            .collect();
        at.sort_unstable();
        at.get(nodes.len() / 2).copied()
    }

    /// When node `n`'s Redis logged `MASTER MODE enabled` at or after `t`: it executed
    /// `REPLICAOF NO ONE`.
    pub(crate) fn master_mode(&self, t: i64, n: usize) -> Option<i64> {
        self.first_event(t, &[n], "redis", "MASTER MODE enabled")
    }

    /// The first event starting with `what` at or after `t` from a Sentinel of `nodes`.
    fn first_sentinel_event(&self, t: i64, nodes: &[usize], what: &str) -> Option<i64> {
        self.first_event(t, nodes, "sentinel", what)
    }

    /// The first event starting with `what` at or after `t` in the log of `daemon`
    /// (`sentinel`, `redis`) of one of `nodes`.
    fn first_event(&self, t: i64, nodes: &[usize], daemon: &str, what: &str) -> Option<i64> {
        self.events
            .iter()
            .filter(|e| e.t >= t && e.what.starts_with(what))
            .filter(|e| nodes.iter().any(|n| e.who == format!("node{n} {daemon}")))
            .map(|e| e.t)
            .min()
    }

    pub(crate) fn ms(&self, t: i64) -> i64 {
        (t - self.t0) / 1000
    }
}

fn shorten(msg: &str) -> String {
    // Redis names the client behind a role change in one long line: keep the start.
    let msg = match msg.split_once(" (user request from") {
        Some((head, _)) => head,
        None => msg,
    };
    msg.replace(" @ redis-ha ", " @ ")
}

/// Redis and Sentinel logs: `PID:R 28 Nov 2026 04:27:15.188 # message`.
fn redis_log(path: &Path) -> Vec<(i64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(' ')?;
            let f: Vec<&str> = rest.splitn(6, ' ').collect();
            if f.len() < 6 {
                return None;
            }
            let month = MONTHS.iter().position(|m| *m == f[1])? as i64 + 1;
            let t = civil_us(f[2].parse().ok()?, month, f[0].parse().ok()?, f[3])?;
            Some((t, f[5].to_string()))
        })
        .collect()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// HA_LOGFILE lines: `2026/11/28_04:30:00.123 TAG[PID]:    LEVEL: message` → (t, TAG, "LEVEL: message").
fn ha_log(path: &Path) -> Vec<(i64, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("20") && l.as_bytes().get(10) == Some(&b'_'))
        .filter_map(|l| {
            let (stamp, rest) = l.split_once(' ')?;
            let (date, time) = stamp.split_once('_')?;
            let d: Vec<i64> = date.split('/').filter_map(|x| x.parse().ok()).collect();
            if d.len() != 3 {
                return None;
            }
            let t = civil_us(d[0], d[1], d[2], time)?;
            let (tag, msg) = rest.split_once(": ")?;
            let msg = msg.trim_start().replace("INFO: ", "");
            Some((t, tag.to_string(), msg))
        })
        .collect()
}

/// `HH:MM:SS.mmm` on a civil date (UTC) in µs since the epoch.
fn civil_us(y: i64, m: i64, d: i64, hms: &str) -> Option<i64> {
    let (hms, frac) = hms.split_once('.').unwrap_or((hms, "0"));
    let p: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if p.len() != 3 {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + p[0] * 3600 + p[1] * 60 + p[2]) * 1000 + ms) * 1000)
}
