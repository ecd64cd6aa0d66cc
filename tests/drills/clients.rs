//! The drills' clients, each a loop on a thread in the client namespace (or the host's
//! for HAProxy's stats socket): the writer through HAProxy, the readers, the port
//! prober, the ROLE sampler and the HAProxy state watcher, and what their records say.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{self, NODES};
use crate::netns::Background;
use crate::resp::{Conn, Failure, Reply};
use crate::timeline::{Event, Timeline, now_us};

/// Short timeouts: a request that takes longer than this has failed for the drill.
const TIMEOUT: Duration = Duration::from_millis(200);

/// The node (1..) whose Redis answered on this connection: after the REDIRECT, Redis's
/// local address is the node's own, `laddr=10.213.0.1N:6379`.
pub(crate) fn whoami(conn: &mut Conn) -> std::io::Result<Option<usize>> {
    let reply = conn.cmd(&["CLIENT", "INFO"])?;
    Ok(reply.text().and_then(|info| {
        info.split_whitespace()
            .find_map(|f| f.strip_prefix("laddr="))
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(ip, _)| cluster::node_of_ip(ip))
    }))
}

// ---- the writer -----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `+OK` from this node.
    Ack(usize),
    /// `-READONLY` from this node: HAProxy routed a write to a replica.
    ReadOnly(usize),
    /// Another error reply.
    Refused(Option<usize>, String),
    /// No reply.
    Failed(Failure),
}

impl Outcome {
    /// The outcome without its detail, for "what changed" lines.
    pub(crate) fn kind(&self) -> String {
        match self {
            Outcome::Ack(n) => format!("acked by node{n}"),
            Outcome::ReadOnly(n) => format!("READONLY from node{n}"),
            Outcome::Refused(n, e) => format!(
                "error reply {:?} from {}",
                e.split_whitespace().next().unwrap_or(""),
                n.map_or("?".to_string(), |n| format!("node{n}"))
            ),
            Outcome::Failed(f) => format!("no reply ({})", f.word()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) sent: i64,
    pub(crate) done: i64,
    pub(crate) seq: u64,
    pub(crate) outcome: Outcome,
}

struct Writer {
    conn: Option<(Conn, Option<usize>)>,
    /// A new connection for every write (HAProxy balances connections, not requests).
    fresh: bool,
    seq: u64,
    prefix: String,
    /// Also set this key to the seq, in the same command (`MSET`): what the stale-read
    /// check reads.
    last: Option<String>,
    attempts: Vec<Attempt>,
}

/// Every 10 ms `SET <prefix><seq> <seq>` through HAProxy's write frontend, on one
/// connection while it lasts, or (`fresh`) on a new connection every time.
pub(crate) fn start_writer(prefix: &str, fresh: bool) -> Background<Vec<Attempt>> {
    writer(prefix, fresh, None)
}

/// [`start_writer`] on a new connection every time, each write also setting
/// `<prefix>last` to its seq (`MSET`, one acknowledgement for both).
pub(crate) fn start_writer_with_last(prefix: &str) -> Background<Vec<Attempt>> {
    writer(prefix, true, Some(format!("{prefix}last")))
}

fn writer(prefix: &str, fresh: bool, last: Option<String>) -> Background<Vec<Attempt>> {
    let w = Writer {
        conn: None,
        fresh,
        seq: 0,
        prefix: prefix.to_string(),
        last,
        attempts: Vec::new(),
    };
    Background::start(true, Duration::from_millis(10), w, write_once, |w| {
        w.attempts
    })
}

fn write_once(w: &mut Writer) {
    w.seq += 1;
    let sent = now_us();
    let outcome = write_attempt(w);
    if w.fresh {
        w.conn = None;
    }
    w.attempts.push(Attempt {
        sent,
        done: now_us(),
        seq: w.seq,
        outcome,
    });
}

fn write_attempt(w: &mut Writer) -> Outcome {
    if w.conn.is_none() {
        let mut conn = match Conn::connect(cluster::write_frontend(), TIMEOUT) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(Failure::of(&e)),
        };
        match whoami(&mut conn) {
            Ok(node) => w.conn = Some((conn, node)),
            Err(e) => return Outcome::Failed(Failure::of(&e)),
        }
    }
    let (conn, node) = w.conn.as_mut().expect("connected above");
    let node = *node;
    let key = format!("{}{}", w.prefix, w.seq);
    let seq = w.seq.to_string();
    let command: Vec<&str> = match &w.last {
        Some(last) => vec!["MSET", &key, &seq, last, &seq],
        None => vec!["SET", &key, &seq],
    };
    match conn.cmd(&command) {
        Ok(Reply::Status(s)) if s == "OK" => match node {
            Some(n) => Outcome::Ack(n),
            None => Outcome::Refused(None, "OK from an unknown node".into()),
        },
        Ok(Reply::Error(e)) if e.starts_with("READONLY") => match node {
            Some(n) => Outcome::ReadOnly(n),
            None => Outcome::Refused(None, e),
        },
        Ok(other) => Outcome::Refused(node, format!("{other:?}")),
        Err(e) => {
            w.conn = None;
            Outcome::Failed(Failure::of(&e))
        }
    }
}

/// Timeline lines for the stretches of what the writer got: where each kind of outcome
/// starts and ends.
pub(crate) fn writer_changes(tl: &mut Timeline, who: &str, attempts: &[Attempt]) {
    let steps: Vec<(i64, u64, String)> = attempts
        .iter()
        .map(|a| (a.sent, a.seq, a.outcome.kind()))
        .collect();
    stretches(tl, who, "seq", &steps);
}

/// Where each kind of outcome, `(sent, number, kind)`, starts and ends: a stretch ends
/// after 0.5 s without it, so that interleaved outcomes (round robin over two servers)
/// stay two stretches. `unit` names the numbers in the lines ("seq 12").
fn stretches(tl: &mut Timeline, who: &str, unit: &str, steps: &[(i64, u64, String)]) {
    const GAP: i64 = 500_000;
    // kind -> (first index, last index, count)
    let mut open: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let close = |tl: &mut Timeline, kind: &str, (first, last, count): (usize, usize, usize)| {
        let ((ta, a, _), (tb, b, _)) = (&steps[first], &steps[last]);
        if count == 1 {
            tl.add_at(*ta, who, &format!("{kind} once ({unit} {a})"));
        } else {
            tl.add_at(*ta, who, &format!("{kind} from {unit} {a}"));
            tl.add_at(
                *tb,
                who,
                &format!("last {kind} ({unit} {b}, {count} since {unit} {a})"),
            );
        }
    };
    for (i, (t, _, kind)) in steps.iter().enumerate() {
        let ended: Vec<String> = open
            .iter()
            .filter(|(_, s)| t - steps[s.1].0 > GAP)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            let s = open.remove(&k).expect("listed");
            close(tl, &k, s);
        }
        match open.get_mut(kind) {
            Some(s) => {
                s.1 = i;
                s.2 += 1;
            }
            None => {
                open.insert(kind.clone(), (i, i, 1));
            }
        }
    }
    for (k, s) in open {
        close(tl, &k, s);
    }
}

// ---- Redis ROLE of every node, straight to 6379 ----------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Master,
    /// A replica, and whether its link to its master is up (`connected`).
    Replica {
        connected: bool,
    },
    Down,
}

#[derive(Debug, Clone)]
pub(crate) struct RoleSample {
    pub(crate) t: i64,
    pub(crate) node: usize,
    pub(crate) role: Role,
}

/// Every 10 ms each node's `ROLE` from its own 6379 (one thread per node).
pub(crate) struct RoleSampler(Vec<Background<Vec<RoleSample>>>);

impl RoleSampler {
    pub(crate) fn start() -> Self {
        RoleSampler(
            (1..=NODES)
                .map(|node| {
                    let addr = cluster::redis_addr(node);
                    Background::start(
                        true,
                        Duration::from_millis(10),
                        (None::<Conn>, Vec::new()),
                        move |(conn, samples): &mut (Option<Conn>, Vec<RoleSample>)| {
                            let role = sample_role(conn, addr);
                            samples.push(RoleSample {
                                t: now_us(),
                                node,
                                role,
                            });
                        },
                        |(_, samples)| samples,
                    )
                })
                .collect(),
        )
    }

    pub(crate) fn stop(self) -> Vec<RoleSample> {
        let mut all: Vec<RoleSample> = self.0.into_iter().flat_map(|b| b.stop()).collect();
        all.sort_by_key(|s| s.t);
        all
    }
}

fn sample_role(conn: &mut Option<Conn>, addr: SocketAddr) -> Role {
    if conn.is_none() {
        *conn = Conn::connect(addr, Duration::from_millis(100)).ok();
    }
    let Some(c) = conn.as_mut() else {
        return Role::Down;
    };
    match c.cmd(&["ROLE"]) {
        Ok(reply) => {
            let items = reply.items();
            match items.first().and_then(Reply::text) {
                Some("master") => Role::Master,
                Some("slave") => Role::Replica {
                    connected: items.get(3).and_then(Reply::text) == Some("connected"),
                },
                _ => Role::Down,
            }
        }
        Err(_) => {
            *conn = None;
            Role::Down
        }
    }
}

/// Timeline lines for every change of a node's ROLE.
pub(crate) fn role_changes(tl: &mut Timeline, samples: &[RoleSample]) {
    let mut last: BTreeMap<usize, &Role> = BTreeMap::new();
    for s in samples {
        if last.get(&s.node) != Some(&&s.role) {
            let what = match &s.role {
                Role::Master => "ROLE master".to_string(),
                Role::Replica { connected: true } => "ROLE replica, link up".to_string(),
                Role::Replica { connected: false } => "ROLE replica, link not up".to_string(),
                Role::Down => "ROLE: no answer on 6379".to_string(),
            };
            tl.add_at(s.t, &format!("node{} redis", s.node), &what);
            last.insert(s.node, &s.role);
        }
    }
}

/// A stretch of consecutive `master` samples of one node.
#[derive(Debug, Clone, Copy)]
struct MasterRun {
    node: usize,
    start: i64,
    end: i64,
}

/// The master runs of every node. With `across_down`, samples without an answer do not end
/// a run: a Redis killed and restarted that answers `master` again continues its old run,
/// so a replica promoted meanwhile is newer than it (a restarted old master has no data
/// and was never made primary by anyone).
fn master_runs(samples: &[RoleSample], across_down: bool) -> Vec<MasterRun> {
    let mut runs: Vec<MasterRun> = Vec::new();
    let mut open: BTreeMap<usize, usize> = BTreeMap::new();
    for s in samples {
        if across_down && s.role == Role::Down {
            continue;
        }
        if s.role == Role::Master {
            match open.get(&s.node) {
                Some(&i) => runs[i].end = s.t,
                None => {
                    open.insert(s.node, runs.len());
                    runs.push(MasterRun {
                        node: s.node,
                        start: s.t,
                        end: s.t,
                    });
                }
            }
        } else {
            open.remove(&s.node);
        }
    }
    runs
}

/// Acks by a node that was not the primary when the write ran: its ROLE was not master
/// anywhere near [sent, done] (with `slack` for the sampling), or another node had been
/// promoted after it before the write was sent (the old master after the new one's
/// promotion, also when it was killed and came back as an empty master).
pub(crate) fn ack_violations(attempts: &[Attempt], samples: &[RoleSample]) -> Vec<String> {
    non_primary_acks(attempts, samples)
        .into_iter()
        .map(|(_, why)| why)
        .collect()
}

/// [`ack_violations`] with the attempt each is about, for a judge that excuses some.
pub(crate) fn non_primary_acks<'a>(
    attempts: &'a [Attempt],
    samples: &[RoleSample],
) -> Vec<(&'a Attempt, String)> {
    const SLACK: i64 = 30_000;
    let runs = master_runs(samples, true);
    let mut bad = Vec::new();
    for a in attempts {
        let Outcome::Ack(x) = a.outcome else { continue };
        let (from, to) = (a.sent - SLACK, a.done + SLACK);
        let mine = runs
            .iter()
            .filter(|r| r.node == x && r.start <= to && r.end >= from)
            .max_by_key(|r| r.start);
        let Some(mine) = mine else {
            bad.push((
                a,
                format!(
                    "seq {} acked by node{x}, whose ROLE was not master then",
                    a.seq
                ),
            ));
            continue;
        };
        if let Some(newer) = runs
            .iter()
            .find(|r| r.node != x && r.start > mine.start && r.start <= from && r.end >= from)
        {
            bad.push((
                a,
                format!(
                    "seq {} acked by node{x} after node{} had been promoted",
                    a.seq, newer.node
                ),
            ));
        }
    }
    bad
}

/// Promotions of a node whose Redis was not master then, nor the next to become one:
/// every helper summary line that wrote `nodeN=primary` must fall inside one of nodeN's
/// master runs (±`SLACK`: the sampling is every 10 ms), or be the foreseen promotion of
/// the replica Sentinel makes master next, within `FORESEEN`. A dead old master made
/// primary again is the case this catches: it takes no writes, but the real primary
/// stays blocked meanwhile.
pub(crate) fn promotion_violations(events: &[Event], samples: &[RoleSample]) -> Vec<String> {
    const SLACK: i64 = 30_000;
    const FORESEEN: i64 = 3_000_000;
    let runs = master_runs(samples, false);
    let next_master = |t: i64| {
        runs.iter()
            .filter(|r| r.start > t - SLACK)
            .min_by_key(|r| r.start)
            .filter(|r| r.start <= t + FORESEEN)
            .map(|r| r.node)
    };
    let mut bad = Vec::new();
    for e in events {
        let Some(wrote) = e.what.split(": wrote ").nth(1) else {
            continue;
        };
        let promoted = wrote
            .split([',', ';', ' '])
            .filter_map(|w| w.strip_suffix("=primary"))
            .filter_map(|n| n.strip_prefix("node")?.parse::<usize>().ok());
        for n in promoted {
            let master = runs
                .iter()
                .any(|r| r.node == n && r.start - SLACK <= e.t && e.t <= r.end + SLACK);
            if !master && next_master(e.t) != Some(n) {
                bad.push(format!(
                    "{} wrote node{n}=primary while node{n}'s Redis was not master: {}",
                    e.who, e.what
                ));
            }
        }
    }
    bad
}

// ---- the port prober --------------------------------------------------------------------

/// A node's public port (6380 reads, 6381 writes), as a client reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NodePort {
    pub(crate) node: usize,
    pub(crate) port: u16,
}

impl NodePort {
    pub(crate) fn new(node: usize, port: u16) -> Self {
        NodePort { node, port }
    }

    /// The same port on every node.
    pub(crate) fn every_node(port: u16) -> Vec<Self> {
        (1..=NODES).map(|n| NodePort::new(n, port)).collect()
    }

    fn addr(self) -> SocketAddr {
        format!("{}:{}", cluster::node_ip(self.node), self.port)
            .parse()
            .expect("a valid address")
    }
}

impl std::fmt::Display for NodePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node{}:{}", self.node, self.port)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ProbeRound {
    pub(crate) t: i64,
    /// The probed ports that accepted a TCP connection.
    pub(crate) open: Vec<NodePort>,
}

impl ProbeRound {
    pub(crate) fn is_open(&self, p: NodePort) -> bool {
        self.open.contains(&p)
    }

    /// The nodes whose `port` accepted in this round.
    pub(crate) fn nodes_open(&self, port: u16) -> Vec<usize> {
        self.open
            .iter()
            .filter(|p| p.port == port)
            .map(|p| p.node)
            .collect()
    }
}

/// Drill 2's invariant: every probe round in which more than one node accepted on 6381,
/// as `probe at +T ms: 6381 open on [..]` lines (none: never two writable nodes).
pub(crate) fn two_writable(rounds: &[ProbeRound], tl: &crate::timeline::Timeline) -> Vec<String> {
    rounds
        .iter()
        .filter(|r| r.nodes_open(6381).len() > 1)
        .map(|r| {
            format!(
                "probe at {:+} ms: 6381 open on {:?}",
                tl.ms(r.t),
                r.nodes_open(6381)
            )
        })
        .collect()
}

/// Every 20 ms a TCP connect to each of `ports`, one after the other (a refused port
/// answers with a reset in well under a millisecond).
pub(crate) fn start_prober(ports: Vec<NodePort>) -> Background<Vec<ProbeRound>> {
    Background::start(
        true,
        Duration::from_millis(20),
        Vec::new(),
        move |rounds: &mut Vec<ProbeRound>| {
            let t = now_us();
            let open = ports
                .iter()
                .copied()
                .filter(|p| std::net::TcpStream::connect_timeout(&p.addr(), TIMEOUT).is_ok())
                .collect();
            rounds.push(ProbeRound { t, open });
        },
        |r| r,
    )
}

/// Timeline lines for each of `ports`: its state in the first round and every change.
pub(crate) fn probe_changes(tl: &mut Timeline, rounds: &[ProbeRound], ports: &[NodePort]) {
    for &p in ports {
        let mut last = None;
        for r in rounds {
            let open = r.is_open(p);
            if last != Some(open) {
                let what = if open { "accepts" } else { "refused" };
                tl.add_at(r.t, "prober", &format!("{p} {what}"));
                last = Some(open);
            }
        }
    }
}

/// The rounds in [from, to] in which `p` accepted.
pub(crate) fn open_rounds(
    rounds: &[ProbeRound],
    p: NodePort,
    from: i64,
    to: i64,
) -> Vec<&ProbeRound> {
    rounds_in(rounds, p, from, to, true)
}

/// The rounds in [from, to] in which `p` refused.
pub(crate) fn refused_rounds(
    rounds: &[ProbeRound],
    p: NodePort,
    from: i64,
    to: i64,
) -> Vec<&ProbeRound> {
    rounds_in(rounds, p, from, to, false)
}

fn rounds_in(
    rounds: &[ProbeRound],
    p: NodePort,
    from: i64,
    to: i64,
    open: bool,
) -> Vec<&ProbeRound> {
    rounds
        .iter()
        .filter(|r| r.t >= from && r.t <= to && r.is_open(p) == open)
        .collect()
}

/// The first round at or after `from` from which `p` stayed refused until `to` (or the
/// last round): when it closed for good.
pub(crate) fn refused_from(rounds: &[ProbeRound], p: NodePort, from: i64, to: i64) -> Option<i64> {
    let within: Vec<&ProbeRound> = rounds.iter().filter(|r| r.t >= from && r.t <= to).collect();
    let last_open = within.iter().rposition(|r| r.is_open(p));
    let first = match last_open {
        Some(i) => within.get(i + 1),
        None => within.first(),
    };
    first.map(|r| r.t)
}

/// The first round at or after `from` in which `p` accepted.
pub(crate) fn first_open(rounds: &[ProbeRound], p: NodePort, from: i64) -> Option<i64> {
    rounds
        .iter()
        .find(|r| r.t >= from && r.is_open(p))
        .map(|r| r.t)
}

/// The first round at or after `from` in which `p` accepted after having refused in an
/// earlier round at or after `from`: when it opened again (None: it never closed, or
/// never opened again).
pub(crate) fn reopened(rounds: &[ProbeRound], p: NodePort, from: i64) -> Option<i64> {
    let mut closed = false;
    for r in rounds.iter().filter(|r| r.t >= from) {
        match (r.is_open(p), closed) {
            (false, _) => closed = true,
            (true, true) => return Some(r.t),
            (true, false) => {}
        }
    }
    None
}

/// "node3:6381 accepted in 12 rounds, from +1020 to +4500 ms" for a violation.
pub(crate) fn describe_open(tl: &Timeline, p: NodePort, open: &[&ProbeRound]) -> String {
    describe_rounds(tl, p, open, "accepted")
}

/// "node2:6380 refused a connection in 3 probe rounds, from +1020 to +1060 ms".
pub(crate) fn describe_refused(tl: &Timeline, p: NodePort, refused: &[&ProbeRound]) -> String {
    describe_rounds(tl, p, refused, "refused")
}

fn describe_rounds(tl: &Timeline, p: NodePort, rounds: &[&ProbeRound], verb: &str) -> String {
    match (rounds.first(), rounds.last()) {
        (Some(a), Some(b)) => format!(
            "{p} {verb} a connection in {} probe round(s), from {:+} to {:+} ms",
            rounds.len(),
            tl.ms(a.t),
            tl.ms(b.t)
        ),
        _ => format!("{p} {verb} no connection"),
    }
}

// ---- the reader ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) struct Read1 {
    pub(crate) sent: i64,
    /// When its answer (or failure) came.
    pub(crate) done: i64,
    /// Its connection's own port, once connected: HAProxy's log line of the session.
    pub(crate) port: Option<u16>,
    pub(crate) node: Option<usize>,
    /// The value of the key, or why there was none.
    pub(crate) value: Result<Option<String>, String>,
}

impl Read1 {
    /// Redis answered the GET (with a value or nil), whatever the value.
    pub(crate) fn answered(&self) -> bool {
        self.node.is_some() && self.value.is_ok()
    }

    /// The answer was `value` (an empty `value`: any answer, the key keeps changing).
    pub(crate) fn is(&self, value: &str) -> bool {
        matches!(&self.value, Ok(Some(v)) if v == value || value.is_empty())
    }

    /// What came of it, without its detail, for "what changed" lines.
    fn kind(&self, value: &str) -> String {
        match (self.node, &self.value) {
            (Some(n), _) if self.is(value) => format!("answered by node{n}"),
            (Some(n), Ok(_)) => format!("stale answer from node{n}"),
            (Some(n), Err(e)) => format!(
                "error reply {:?} from node{n}",
                e.split_whitespace().next().unwrap_or("")
            ),
            (None, Err(e)) => format!("no answer ({e})"),
            (None, Ok(_)) => "answer from an unknown node".to_string(),
        }
    }
}

/// Timeline lines for the stretches of what the reader got, `value` being the right
/// answer.
pub(crate) fn reader_changes(tl: &mut Timeline, who: &str, reads: &[Read1], value: &str) {
    let steps: Vec<(i64, u64, String)> = reads
        .iter()
        .zip(1..)
        .map(|(r, n)| (r.sent, n, r.kind(value)))
        .collect();
    stretches(tl, who, "read", &steps);
}

/// Every `period` a new connection to HAProxy's read frontend and `GET key` (new
/// connections so that `balance leastconn` spreads them over every server that is up).
pub(crate) fn start_reader(key: &str, period: Duration) -> Background<Vec<Read1>> {
    let key = key.to_string();
    Background::start(
        true,
        period,
        Vec::new(),
        move |reads: &mut Vec<Read1>| reads.push(read_once(&key)),
        |r| r,
    )
}

fn read_once(key: &str) -> Read1 {
    let mut read = Read1 {
        sent: now_us(),
        done: 0,
        port: None,
        node: None,
        value: Ok(None),
    };
    let asked = (|| -> std::io::Result<Result<Option<String>, String>> {
        let mut conn = Conn::connect(cluster::read_frontend(), TIMEOUT)?;
        read.port = conn.local_port();
        read.node = whoami(&mut conn)?;
        Ok(match conn.cmd(&["GET", key])? {
            Reply::Bulk(v) => Ok(v),
            other => Err(format!("{other:?}")),
        })
    })();
    read.value = asked.unwrap_or_else(|e| Err(Failure::of(&e).word().to_string()));
    read.done = now_us();
    read
}

/// HAProxy's log line of each failed read's session (tcplog: the server it went to, its
/// timers, termination state and retries), found by the read's port, on the timeline at
/// the read's time: what the client alone cannot tell.
pub(crate) fn failed_read_sessions(tl: &mut Timeline, c: &cluster::Cluster, reads: &[Read1]) {
    let failed: Vec<(&Read1, u16)> = reads
        .iter()
        .filter(|r| !r.answered())
        .filter_map(|r| Some((r, r.port?)))
        .collect();
    if failed.is_empty() {
        return;
    }
    let log = std::fs::read_to_string(c.haproxy_log()).unwrap_or_default();
    for (r, port) in failed {
        let tag = format!(":{port} [");
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains(&tag) && l.contains("redis-read"));
        let what = line.map_or("no log line".to_string(), |l| {
            l.split_once(&tag).map_or(l, |(_, rest)| rest).to_string()
        });
        tl.add_at(
            r.sent,
            "haproxy",
            &format!("failed read's session (port {port}): [{what}"),
        );
    }
}

/// How many violations of one kind a report lists one by one.
const SHOW: usize = 5;

/// What the readers got while a node came back: every answer must be `value`, and the
/// returning node may serve no read before its ROLE said synced replica.
pub(crate) struct ReadReport {
    pub(crate) total: usize,
    pub(crate) failed: usize,
    pub(crate) stale: usize,
    pub(crate) by_node: [usize; NODES + 1],
    /// When the returning node served its first read.
    pub(crate) first_read: Option<i64>,
    pub(crate) errors: Vec<String>,
}

impl ReadReport {
    /// Stale: an answer other than `value` (from any node), or a read served by `node`
    /// before `synced_at` (never synced: every read it served).
    pub(crate) fn of(
        tl: &Timeline,
        reads: &[Read1],
        value: &str,
        node: usize,
        synced_at: Option<i64>,
    ) -> Self {
        let mut report = ReadReport {
            total: reads.len(),
            failed: 0,
            stale: 0,
            by_node: [0; NODES + 1],
            first_read: None,
            errors: Vec::new(),
        };
        let (mut stale, mut early) = (Vec::new(), Vec::new());
        for r in reads {
            let Some(n) = r.node else {
                report.failed += 1;
                continue;
            };
            report.by_node[n] += 1;
            if !r.is(value) {
                stale.push(format!(
                    "stale read at {:+} ms from node{n}: {:?}, want {value:?}",
                    tl.ms(r.sent),
                    r.value
                ));
            }
            if n == node {
                report.first_read.get_or_insert(r.sent);
                if synced_at.is_none_or(|s| r.sent < s) {
                    early.push(format!(
                        "read at {:+} ms served by node{n} before its ROLE said synced replica",
                        tl.ms(r.sent)
                    ));
                }
            }
        }
        report.stale = stale.len();
        // The first few of each kind, then how many more: one line per read would bury
        // the other violations.
        for (kind, mut list) in [("stale reads", stale), ("early reads", early)] {
            let more = list.len().saturating_sub(SHOW);
            list.truncate(SHOW);
            report.errors.extend(list);
            if more > 0 {
                report.errors.push(format!("... and {more} more {kind}"));
            }
        }
        report
    }

    pub(crate) fn print(&self) {
        println!("  --- reads");
        println!(
            "  reads: {} ({} answered, {} without an answer); stale: {}",
            self.total,
            self.total - self.failed,
            self.failed,
            self.stale
        );
        let per_node: Vec<String> = (1..=NODES)
            .map(|n| format!("node{n} {}", self.by_node[n]))
            .collect();
        println!("  served by: {}", per_node.join(", "));
    }
}

/// When `node`'s ROLE first said synced replica (link up) after `after`.
pub(crate) fn first_synced(samples: &[RoleSample], node: usize, after: i64) -> Option<i64> {
    samples
        .iter()
        .filter(|s| s.node == node && s.t > after)
        .find(|s| s.role == (Role::Replica { connected: true }))
        .map(|s| s.t)
}

/// The longest stretch in [from, to] without a write acked by `node`: (length, start),
/// in µs. The window's ends count as its edges.
pub(crate) fn longest_ack_gap(attempts: &[Attempt], node: usize, from: i64, to: i64) -> (i64, i64) {
    let acks = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Ack(node))
        .map(|a| a.done);
    longest_gap(acks, from, to)
}

/// The longest stretch in [from, to] between two of the ascending `times` (those within
/// the window; its ends count as edges): (length, start), in µs.
pub(crate) fn longest_gap(times: impl Iterator<Item = i64>, from: i64, to: i64) -> (i64, i64) {
    let mut edges = vec![from];
    edges.extend(times.filter(|&t| t >= from && t <= to));
    edges.push(to);
    edges
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max_by_key(|g| g.0)
        .unwrap_or((0, from))
}

/// What the reader got over a whole failover and rejoin: the reads without an answer, the
/// longest stretch without one, and the stale answers of a returning node.
pub(crate) struct ReadFigures {
    pub(crate) total: usize,
    /// No answer: refused, reset, timed out, or an error reply (LOADING, MASTERDOWN).
    pub(crate) failed: usize,
    /// Of those, the reads under way when the promoted replica became a master: the
    /// failover leader's `REPLICAOF NO ONE` comes with `CLIENT KILL TYPE normal`, which
    /// closes every client connection of that Redis, a read's included.
    pub(crate) failed_at_promotion: usize,
    /// The longest stretch between two answered reads, in µs, with its start.
    pub(crate) longest_gap: (i64, i64),
    /// Answers by `node` from `since` on that were not `value`: it had come back without
    /// the value every other node had acknowledged before the read began.
    pub(crate) stale: usize,
}

/// Redis logs `MASTER MODE enabled` as it executes `REPLICAOF NO ONE`; the `CLIENT KILL`
/// queued behind it in the leader's transaction (after a `CONFIG REWRITE`) comes at most
/// this much later (µs).
const KILL_AFTER_MASTER_MODE: i64 = 50_000;

impl ReadFigures {
    /// `promoted`: the replica that became the master, and when its log says so.
    pub(crate) fn of(
        reads: &[Read1],
        value: &str,
        (node, since): (usize, i64),
        promoted: Option<(usize, i64)>,
    ) -> Self {
        let answered: Vec<&Read1> = reads.iter().filter(|r| r.answered()).collect();
        let window = (reads.first(), reads.last());
        // Cut by the kill: the connection closed (not a timeout, not a refusal) then.
        let at_promotion = |r: &&Read1| {
            let cut = matches!(&r.value, Err(e) if [Failure::Closed, Failure::Reset]
                .iter()
                .any(|f| e == f.word()));
            promoted.is_some_and(|(n, t)| {
                cut && r.node.is_none_or(|at| at == n)
                    && (t..=t + KILL_AFTER_MASTER_MODE).contains(&r.done)
            })
        };
        ReadFigures {
            total: reads.len(),
            failed: reads.len() - answered.len(),
            failed_at_promotion: reads
                .iter()
                .filter(|r| !r.answered())
                .filter(at_promotion)
                .count(),
            longest_gap: match window {
                (Some(a), Some(b)) => longest_gap(answered.iter().map(|r| r.sent), a.sent, b.sent),
                _ => (0, 0),
            },
            stale: answered
                .iter()
                .filter(|r| r.node == Some(node) && r.sent >= since && !r.is(value))
                .count(),
        }
    }
}

/// A read of `<prefix>last` answered with a value older than a write acknowledged
/// before it (see [`stale_reads`]).
#[derive(Debug, Clone)]
pub(crate) struct StaleRead {
    pub(crate) node: Option<usize>,
    pub(crate) sent: i64,
    pub(crate) got: u64,
    pub(crate) acked: u64,
}

impl std::fmt::Display for StaleRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node{} answered {} at {} µs, after seq {} had been acknowledged",
            self.node.unwrap_or(0),
            self.got,
            self.sent,
            self.acked
        )
    }
}

/// Reads of `<prefix>last` (set by [`start_writer_with_last`]) answered with a value
/// older than a write acknowledged at least `grace` before the read began: the
/// acknowledged write was lost, or the answering node lags by more than `grace` (a
/// replica's replication lag is milliseconds). A missing key counts as 0.
pub(crate) fn stale_reads(
    attempts: &[Attempt],
    reads: &[Read1],
    grace: Duration,
) -> Vec<StaleRead> {
    let acks: Vec<(i64, u64)> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ack(_)))
        .map(|a| (a.done, a.seq))
        .collect();
    let grace = grace.as_micros() as i64;
    let mut stale = Vec::new();
    let (mut i, mut acked) = (0, 0);
    for r in reads.iter().filter(|r| r.answered()) {
        while i < acks.len() && acks[i].0 <= r.sent - grace {
            acked = acked.max(acks[i].1);
            i += 1;
        }
        let got = match &r.value {
            Ok(Some(v)) => v.parse::<u64>().unwrap_or(0),
            _ => 0,
        };
        if got < acked {
            stale.push(StaleRead {
                node: r.node,
                sent: r.sent,
                got,
                acked,
            });
        }
    }
    stale
}

// ---- HAProxy's server states ------------------------------------------------------------

/// `backend/server` → status (`UP`, `DOWN`, `MAINT`...), from `show stat`.
pub(crate) type HapStates = BTreeMap<String, String>;

pub(crate) fn haproxy_states(sock: &PathBuf) -> std::io::Result<HapStates> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"show stat\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 17 && f[1].starts_with("node"))
                .then(|| (format!("{}/{}", f[0], f[1]), f[17].to_string()))
        })
        .collect())
}

#[derive(Debug, Clone)]
pub(crate) struct HapChange {
    pub(crate) t: i64,
    pub(crate) server: String,
    pub(crate) status: String,
}

/// Every 20 ms HAProxy's server states; records the first state and every change.
pub(crate) fn start_haproxy_watch(sock: PathBuf) -> Background<Vec<HapChange>> {
    Background::start(
        false,
        Duration::from_millis(20),
        (HapStates::new(), Vec::new()),
        move |(last, changes): &mut (HapStates, Vec<HapChange>)| {
            let t = now_us();
            if let Ok(now) = haproxy_states(&sock) {
                for (server, status) in &now {
                    if last.get(server) != Some(status) {
                        changes.push(HapChange {
                            t,
                            server: server.clone(),
                            status: status.clone(),
                        });
                    }
                }
                *last = now;
            }
        },
        |(_, c)| c,
    )
}

/// One timeline line per poll that saw changes.
pub(crate) fn haproxy_changes(tl: &mut Timeline, changes: &[HapChange]) {
    for group in changes.chunk_by(|a, b| a.t == b.t) {
        let what: Vec<String> = group
            .iter()
            .map(|c| format!("{} {}", c.server, c.status))
            .collect();
        tl.add_at(group[0].t, "haproxy", &what.join(", "));
    }
}

// ---- the watchers of a drill that writes and probes --------------------------------

/// What the writer, the prober, the reader and the ROLE sampler recorded (no rounds
/// without a prober, no reads without a reader).
pub(crate) struct Records {
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) rounds: Vec<ProbeRound>,
    pub(crate) reads: Vec<Read1>,
    pub(crate) samples: Vec<RoleSample>,
}

/// The writer (a new connection per write), a prober of `ports` or a reader, the ROLE
/// sampler and HAProxy's state watcher, started together and stopped together.
pub(crate) struct Watchers {
    hap: Background<Vec<HapChange>>,
    roles: RoleSampler,
    prober: Option<Background<Vec<ProbeRound>>>,
    /// With the right answer to its reads.
    reader: Option<(Background<Vec<Read1>>, String)>,
    writer: Background<Vec<Attempt>>,
    ports: Vec<NodePort>,
}

impl Watchers {
    /// With a prober of `ports`; runs 1 s, so the timeline begins with the steady state.
    pub(crate) fn start(c: &cluster::Cluster, prefix: &str, ports: &[NodePort]) -> Self {
        let prober = start_prober(ports.to_vec());
        Self::with(c, prefix, Some(prober), None, ports)
    }

    /// With both a prober of `ports` and a reader of `<prefix>last`, which the writer sets
    /// to each seq (`stale_reads` judges its answers); runs 1 s too.
    pub(crate) fn start_all(c: &cluster::Cluster, prefix: &str, ports: &[NodePort]) -> Self {
        let prober = start_prober(ports.to_vec());
        let reader = (
            start_reader(&format!("{prefix}last"), Duration::from_millis(50)),
            String::new(),
        );
        let w = Watchers {
            hap: start_haproxy_watch(c.haproxy_sock()),
            roles: RoleSampler::start(),
            prober: Some(prober),
            reader: Some(reader),
            writer: start_writer_with_last(prefix),
            ports: ports.to_vec(),
        };
        std::thread::sleep(Duration::from_secs(1));
        w
    }

    /// With a reader of `key`, whose right answer is `value`, every `period` through
    /// HAProxy's read frontend instead of a prober; runs 1 s too.
    pub(crate) fn start_reading(
        c: &cluster::Cluster,
        prefix: &str,
        (key, value): (&str, &str),
        period: Duration,
    ) -> Self {
        let reader = (start_reader(key, period), value.to_string());
        Self::with(c, prefix, None, Some(reader), &[])
    }

    fn with(
        c: &cluster::Cluster,
        prefix: &str,
        prober: Option<Background<Vec<ProbeRound>>>,
        reader: Option<(Background<Vec<Read1>>, String)>,
        ports: &[NodePort],
    ) -> Self {
        let w = Watchers {
            hap: start_haproxy_watch(c.haproxy_sock()),
            roles: RoleSampler::start(),
            prober,
            reader,
            writer: start_writer(prefix, true),
            ports: ports.to_vec(),
        };
        std::thread::sleep(Duration::from_secs(1));
        w
    }

    /// Stops them, notes `what` in the timeline, merges everything they saw and the
    /// nodes' logs into it and prints it.
    pub(crate) fn stop(self, tl: &mut Timeline, c: &cluster::Cluster, what: &str) -> Records {
        let records = self.collect(tl, c, what);
        tl.print();
        records
    }

    /// `stop` without printing the timeline.
    pub(crate) fn collect(self, tl: &mut Timeline, c: &cluster::Cluster, what: &str) -> Records {
        let attempts = self.writer.stop();
        let rounds = self.prober.map(Background::stop).unwrap_or_default();
        let (reads, value) = match self.reader {
            Some((reader, value)) => (reader.stop(), value),
            None => (Vec::new(), String::new()),
        };
        let samples = self.roles.stop();
        let changes = self.hap.stop();
        tl.act(what);
        writer_changes(tl, "writer", &attempts);
        reader_changes(tl, "reader", &reads, &value);
        probe_changes(tl, &rounds, &self.ports);
        role_changes(tl, &samples);
        haproxy_changes(tl, &changes);
        tl.add_logs(&c.state(), NODES);
        Records {
            attempts,
            rounds,
            reads,
            samples,
        }
    }
}
