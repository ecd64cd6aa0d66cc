//! The cluster under drill: `tests/cluster/cluster.sh` up at the start, down at the end
//! (also when a drill panics), the partitions it is put through (`cut`, `heal`), and the
//! questions the drills ask it: who is primary for Sentinel, each node's `redis_role`,
//! where the blocks run, quorum, HAProxy's server states.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{HapStates, haproxy_states};
use crate::netns::in_client;
use crate::resp::{Conn, Reply};

pub(crate) const NODES: usize = 3;
const STATE: &str = "/run/rha-cluster";
/// Corosync's token when drill 4, 7, 8 or 9 runs: a crashed or cut-off node is seen
/// lost after about token + consensus (1.2 x token).
const SHORT_TOKEN_MS: &str = "1000";

pub(crate) fn node_ip(n: usize) -> String {
    format!("10.213.0.1{n}")
}

pub(crate) fn node_of_ip(ip: &str) -> Option<usize> {
    (1..=NODES).find(|&n| node_ip(n) == ip)
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().expect("a valid address")
}

pub(crate) fn redis_addr(n: usize) -> SocketAddr {
    addr(&node_ip(n), 6379)
}

pub(crate) fn sentinel_addr(n: usize) -> SocketAddr {
    addr(&node_ip(n), 26379)
}

pub(crate) fn write_frontend() -> SocketAddr {
    addr("10.213.0.1", 6381)
}

pub(crate) fn read_frontend() -> SocketAddr {
    addr("10.213.0.1", 6380)
}

/// Which packets a partition drops between a node and its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// Every packet, both directions.
    Both,
    /// What the peers send the node.
    In,
    /// What the node sends the peers.
    Out,
}

pub(crate) struct Cluster {
    script: PathBuf,
    token_ms: Option<&'static str>,
    keep: bool,
}

impl Cluster {
    /// `down` (the remains of an interrupted run), then `up` with the periodic sync.
    pub(crate) fn up(short_token: bool, keep: bool) -> Result<Cluster, String> {
        let mut cluster = Cluster {
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/cluster.sh"),
            token_ms: short_token.then_some(SHORT_TOKEN_MS),
            keep: false,
        };
        cluster.sh_visible(&["down"])?;
        cluster.sh_visible(&["up"])?;
        cluster.keep = keep;
        Ok(cluster)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.script);
        cmd.args(args).env("RHA_SYNC_EVERY", "5s");
        if let Some(t) = self.token_ms {
            cmd.env("RHA_TOKEN_MS", t);
        }
        cmd
    }

    /// cluster.sh with its progress lines on our stderr.
    fn sh_visible(&self, args: &[&str]) -> Result<(), String> {
        let status = self
            .command(args)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cluster.sh {} failed: {status}", args.join(" ")))
        }
    }

    /// cluster.sh ARGS: its stdout, or an error with the command, exit and stderr.
    pub(crate) fn sh(&self, args: &[&str]) -> Result<String, String> {
        let (code, out, err) = self.sh_status(args);
        if code == 0 {
            Ok(out)
        } else {
            Err(format!(
                "cluster.sh {} exited {code}: {}{}",
                args.join(" "),
                out.trim(),
                err.trim()
            ))
        }
    }

    pub(crate) fn sh_status(&self, args: &[&str]) -> (i32, String, String) {
        match self.command(args).stdin(Stdio::null()).output() {
            Ok(o) => (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (-1, String::new(), format!("cannot run cluster.sh: {e}")),
        }
    }

    /// SIGKILL node N's redis-server (no persistence: it comes back empty).
    pub(crate) fn kill_redis(&self, n: usize) -> Result<(), String> {
        self.sh(&["stop-redis", &format!("node{n}")]).map(drop)
    }

    /// Start node N's redis-server again, with its config as Sentinel left it.
    pub(crate) fn start_redis(&self, n: usize) -> Result<(), String> {
        self.sh(&["start-redis", &format!("node{n}")]).map(drop)
    }

    /// A command started in node N's namespaces, its output piped: the child's pid is
    /// the command's own (cluster.sh and nsenter exec it).
    pub(crate) fn spawn(&self, n: usize, args: &[&str]) -> std::io::Result<std::process::Child> {
        let node = format!("node{n}");
        let mut all = vec!["exec", node.as_str()];
        all.extend_from_slice(args);
        self.command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    }

    /// A command in node N's namespaces.
    pub(crate) fn exec(&self, n: usize, args: &[&str]) -> Result<String, String> {
        let node = format!("node{n}");
        let mut all = vec!["exec", node.as_str()];
        all.extend_from_slice(args);
        self.sh(&all)
    }

    pub(crate) fn state(&self) -> PathBuf {
        PathBuf::from(STATE)
    }

    pub(crate) fn node_dir(&self, n: usize) -> PathBuf {
        self.state().join(format!("node{n}"))
    }

    /// HAProxy's log (`cluster.sh`: stdout to this file).
    pub(crate) fn haproxy_log(&self) -> PathBuf {
        self.state().join("client/haproxy.out")
    }

    pub(crate) fn haproxy_sock(&self) -> PathBuf {
        self.state().join("client/haproxy.sock")
    }

    pub(crate) fn haproxy(&self) -> HapStates {
        haproxy_states(&self.haproxy_sock()).unwrap_or_default()
    }

    /// `redis-ha status` on node N: (exit code, screen).
    pub(crate) fn status(&self, n: usize) -> (i32, String) {
        let node = format!("node{n}");
        let (code, out, err) = self.sh_status(&["exec", &node, "redis-ha", "status"]);
        (code, format!("{out}{err}"))
    }

    pub(crate) fn status_screen(&self) -> String {
        self.status(1).1
    }

    /// `redis_role` of node N, read on node `via` (None: unset or unreadable).
    pub(crate) fn role_attr(&self, via: usize, n: usize) -> Option<String> {
        self.attribute(via, n, "redis_role")
            .map(|s| s.to_lowercase())
    }

    /// Node N's permanent attribute `name`, read on node `via` (None: unset or
    /// unreadable).
    pub(crate) fn attribute(&self, via: usize, n: usize, name: &str) -> Option<String> {
        self.crm_attribute(via, n, name, &["--query", "-q"])
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Node N's permanent `standby` attribute, written on node `via`: on puts it in
    /// standby (Pacemaker stops its resources, the blocks included), off takes it out.
    pub(crate) fn set_standby(&self, via: usize, n: usize, on: bool) -> Result<(), String> {
        let value = if on { "on" } else { "off" };
        self.crm_attribute(
            via,
            n,
            "standby",
            &["--update", value, "--lifetime", "forever"],
        )
        .map(drop)
    }

    /// `crm_attribute --node nodeN --name NAME ARGS...`, run on node `via`.
    fn crm_attribute(
        &self,
        via: usize,
        n: usize,
        name: &str,
        args: &[&str],
    ) -> Result<String, String> {
        let node = format!("node{n}");
        let mut argv = vec!["crm_attribute", "--node", &node, "--name", name];
        argv.extend_from_slice(args);
        self.exec(via, &argv)
    }

    /// The pid of node N's `daemon` (cluster.sh pid: corosync, pacemakerd, redis,
    /// sentinel, sync).
    pub(crate) fn daemon_pid(&self, n: usize, daemon: &str) -> Result<i32, String> {
        self.sh(&["pid", &format!("node{n}"), daemon])?
            .trim()
            .parse()
            .map_err(|e| format!("node{n}'s {daemon} pid: {e}"))
    }

    /// The nodes a block clone runs on, per `crm_resource --locate` on node `via`.
    pub(crate) fn blocks(&self, via: usize, clone: &str) -> Vec<usize> {
        let out = self
            .exec(via, &["crm_resource", "--locate", "-r", clone, "-Q"])
            .unwrap_or_default();
        let mut v: Vec<usize> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("node")?.parse().ok())
            .collect();
        v.sort();
        v
    }

    /// The primary every reachable Sentinel names (at least two reachable, all agreeing).
    pub(crate) fn sentinel_master(&self) -> Option<usize> {
        self.sentinel_master_among(&(1..=NODES).collect::<Vec<_>>())
    }

    /// The primary the reachable Sentinels of `nodes` name (at least two of them
    /// reachable, all agreeing): in a partition, ask the majority's only.
    pub(crate) fn sentinel_master_among(&self, nodes: &[usize]) -> Option<usize> {
        let nodes = nodes.to_vec();
        in_client(move || {
            let said: Vec<Option<usize>> = nodes
                .into_iter()
                .filter_map(|n| {
                    let mut c = Conn::connect(sentinel_addr(n), Duration::from_millis(300)).ok()?;
                    let r = c
                        .cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "redis-ha"])
                        .ok()?;
                    Some(r.items().first().and_then(Reply::text).and_then(node_of_ip))
                })
                .collect();
            match said.first() {
                Some(&Some(m)) if said.len() >= 2 && said.iter().all(|s| *s == Some(m)) => Some(m),
                _ => None,
            }
        })
    }

    /// Whether every Sentinel lists node N's Redis as a replica with its link `ok` and no
    /// other flag: what `redis-ha switchover` checks of its target (Sentinel refreshes its
    /// INFO of a replica every 10 s, so it can lag `ROLE` after a resync).
    pub(crate) fn sentinels_see_synced(&self, n: usize) -> bool {
        let ip = node_ip(n);
        in_client(move || {
            (1..=NODES).all(|s| {
                let Ok(mut c) = Conn::connect(sentinel_addr(s), Duration::from_millis(300)) else {
                    return false;
                };
                let Ok(reply) = c.cmd(&["SENTINEL", "REPLICAS", "redis-ha"]) else {
                    return false;
                };
                reply.items().iter().any(|entry| {
                    let f: Vec<&str> = entry.items().iter().filter_map(Reply::text).collect();
                    let field = |k: &str| {
                        f.chunks(2)
                            .find(|p| p[0] == k)
                            .and_then(|p| p.get(1))
                            .copied()
                    };
                    field("ip") == Some(ip.as_str())
                        && field("flags") == Some("slave")
                        && field("master-link-status") == Some("ok")
                })
            })
        })
    }

    /// A command to one node's Sentinel, from the client namespace.
    pub(crate) fn sentinel_cmd(&self, n: usize, args: &[&str]) -> Result<Reply, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        in_client(move || {
            let mut c = Conn::connect(sentinel_addr(n), Duration::from_secs(2))
                .map_err(|e| format!("node{n} sentinel: {e}"))?;
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            c.cmd(&a).map_err(|e| format!("node{n} sentinel: {e}"))
        })
    }

    /// A command straight to node N's Redis (6379), from the client namespace.
    pub(crate) fn redis_cmd(&self, n: usize, args: &[&str]) -> Result<Reply, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        in_client(move || {
            let mut c = Conn::connect(redis_addr(n), Duration::from_secs(6))
                .map_err(|e| format!("node{n} redis: {e}"))?;
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            c.cmd(&a).map_err(|e| format!("node{n} redis: {e}"))
        })
    }

    /// `cluster.sh cut`: every packet between node N and each of `peers` dropped.
    pub(crate) fn cut(&self, n: usize, peers: &[usize]) -> Result<(), String> {
        self.cut_way(Way::Both, n, peers)
    }

    /// `cluster.sh cut-in` (`Way::In`: what `peers` send node N is dropped) or `cut-out`
    /// (`Way::Out`: what node N sends them); `Way::Both` is [`Cluster::cut`].
    pub(crate) fn cut_way(&self, way: Way, n: usize, peers: &[usize]) -> Result<(), String> {
        let verb = match way {
            Way::Both => "cut",
            Way::In => "cut-in",
            Way::Out => "cut-out",
        };
        let mut args = vec![verb.to_string(), format!("node{n}")];
        args.extend(peers.iter().map(|p| format!("node{p}")));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sh(&a).map(drop)
    }

    /// `cluster.sh strip`: our setup taken out, HAProxy's checks alone steer.
    pub(crate) fn strip(&self) -> Result<(), String> {
        self.sh_visible(&["strip"])
    }

    /// `cluster.sh heal`: no cut left anywhere.
    pub(crate) fn heal(&self) -> Result<(), String> {
        self.sh(&["heal"]).map(drop)
    }

    /// Whether node N's partition has quorum, per `crm_mon` on N (None: no answer, no DC).
    pub(crate) fn quorate(&self, n: usize) -> Option<bool> {
        let xml = self.exec(n, &["crm_mon", "-1", "--output-as=xml"]).ok()?;
        let dc = xml.split("<current_dc ").nth(1)?.split('>').next()?;
        if !dc.contains("present=\"true\"") {
            return None;
        }
        Some(dc.contains("with_quorum=\"true\""))
    }

    /// A cluster property (`crm_config`), read on node `via` (None: unset or unreadable).
    pub(crate) fn property(&self, via: usize, name: &str) -> Option<String> {
        self.exec(
            via,
            &[
                "crm_attribute",
                "--type",
                "crm_config",
                "--name",
                name,
                "--query",
                "-q",
            ],
        )
        .ok()
        .map(|s| s.trim().to_string())
    }

    /// Sets a cluster property on node `via` (a node of a partition with quorum).
    pub(crate) fn set_property(&self, via: usize, name: &str, value: &str) -> Result<(), String> {
        self.exec(
            via,
            &[
                "crm_attribute",
                "--type",
                "crm_config",
                "--name",
                name,
                "--update",
                value,
            ],
        )
        .map(drop)
    }

    /// `SET key value` at `addr` (HAProxy's write frontend, or a node's 6379) and `WAIT`
    /// until `replicas` replicas have it (at most 5 s), both on one connection: WAIT only
    /// counts the acks of writes made on its own connection.
    pub(crate) fn set_replicated(
        &self,
        addr: SocketAddr,
        key: &str,
        value: &str,
        replicas: usize,
    ) -> Result<(), String> {
        let (key, value) = (key.to_string(), value.to_string());
        in_client(move || {
            let mut c =
                Conn::connect(addr, Duration::from_secs(6)).map_err(|e| format!("{addr}: {e}"))?;
            match c.cmd(&["SET", &key, &value]) {
                Ok(Reply::Status(s)) if s == "OK" => {}
                other => return Err(format!("SET {key} at {addr}: {other:?}")),
            }
            match c.cmd(&["WAIT", &replicas.to_string(), "5000"]) {
                Ok(Reply::Int(n)) if n >= replicas as i64 => Ok(()),
                other => Err(format!("WAIT {replicas} 5000 at {addr}: {other:?}")),
            }
        })
    }

    /// Everything agrees, on every node in `alive`: `redis-ha status` exits 0 (roles,
    /// Sentinel and blocks agree), HAProxy has the primary alone in redis-write and
    /// every node of `alive` in redis-read. Returns the primary.
    pub(crate) fn healthy(&self, alive: &[usize]) -> Result<usize, String> {
        let primary = self
            .sentinel_master()
            .ok_or("the Sentinels do not agree on a master")?;
        let (code, screen) = self.status(alive[0]);
        if code != 0 {
            return Err(format!(
                "redis-ha status on node{} exits {code}:\n{screen}",
                alive[0]
            ));
        }
        self.routed(primary, alive)?;
        Ok(primary)
    }

    /// `healthy` for a cluster without our setup (`cluster.sh strip`), where no
    /// `redis-ha status` can tell: the Sentinels agree on a master, every Sentinel lists
    /// every other node of `alive` as a synced replica and each of them says so in its
    /// own ROLE, and HAProxy routes as in `healthy`. Returns the primary.
    pub(crate) fn settled_without_us(&self, alive: &[usize]) -> Result<usize, String> {
        let primary = self
            .sentinel_master()
            .ok_or("the Sentinels do not agree on a master")?;
        let replicas: Vec<usize> = alive.iter().copied().filter(|&n| n != primary).collect();
        for s in 1..=NODES {
            let listed = self.sentinel_cmd(s, &["SENTINEL", "REPLICAS", "redis-ha"])?;
            for &r in &replicas {
                let synced = listed.items().iter().any(|entry| {
                    let field = |name: &str| {
                        let kv = entry.items();
                        kv.chunks(2)
                            .find(|p| p[0].text() == Some(name))
                            .and_then(|p| p.get(1)?.text())
                    };
                    field("ip") == Some(node_ip(r).as_str())
                        && field("flags") == Some("slave")
                        && field("master-link-status") == Some("ok")
                });
                if !synced {
                    return Err(format!(
                        "node{s}'s Sentinel does not list node{r} as a synced replica"
                    ));
                }
            }
        }
        for &r in &replicas {
            let role = self.redis_cmd(r, &["ROLE"])?;
            let items = role.items();
            let connected = items.first().and_then(Reply::text) == Some("slave")
                && items.get(1).and_then(Reply::text) == Some(node_ip(primary).as_str())
                && items.get(3).and_then(Reply::text) == Some("connected");
            if !connected {
                return Err(format!(
                    "node{r}'s ROLE is not a connected replica of node{primary}: {role:?}"
                ));
            }
        }
        self.routed(primary, alive)?;
        Ok(primary)
    }

    /// HAProxy has the primary alone in redis-write and every node of `alive` in
    /// redis-read.
    fn routed(&self, primary: usize, alive: &[usize]) -> Result<(), String> {
        let hap = self.haproxy();
        for n in 1..=NODES {
            let w = hap
                .get(&format!("redis-write/node{n}"))
                .map_or("?", String::as_str);
            let r = hap
                .get(&format!("redis-read/node{n}"))
                .map_or("?", String::as_str);
            let (want_w, want_r) = (n == primary, alive.contains(&n));
            if (w == "UP") != want_w || (r == "UP") != want_r {
                return Err(format!("HAProxy: {hap:?}, primary node{primary}"));
            }
        }
        Ok(())
    }

    /// `healthy`, and `redis-ha status` exits 0 on every node of `alive`, not only the
    /// first (each shows its own guard). Returns the primary.
    pub(crate) fn converged(&self, alive: &[usize]) -> Result<usize, String> {
        let primary = self.healthy(alive)?;
        for &n in &alive[1..] {
            let (code, screen) = self.status(n);
            if code != 0 {
                return Err(format!(
                    "redis-ha status on node{n} exits {code}:\n{screen}"
                ));
            }
        }
        Ok(primary)
    }

    /// Whether no Sentinel of `alive` is in TILT mode (`INFO sentinel`, `sentinel_tilt`).
    /// A Sentinel whose process stood still for over 2 s (a SIGSTOP, a stalled host)
    /// stays in TILT for 30 s after it resumes: it neither finds a master down nor
    /// answers that it is, so a failover needs the others alone, and (its later
    /// `+sdown`) may never find a replica good enough for Sentinel's link-down rule.
    pub(crate) fn sentinels_out_of_tilt(&self, alive: &[usize]) -> Result<(), String> {
        for &n in alive {
            let info = self.sentinel_cmd(n, &["INFO", "sentinel"])?;
            let text = info.text().unwrap_or_default();
            if text.lines().any(|l| l.trim() == "sentinel_tilt:1") {
                return Err(format!("node{n}'s Sentinel is in TILT mode"));
            }
        }
        Ok(())
    }

    /// Waits (bounded) until `healthy`; the last reason when it never is.
    pub(crate) fn wait_healthy(&self, alive: &[usize], within: Duration) -> Result<usize, String> {
        retry("healthy", within, || self.healthy(alive))
    }

    pub(crate) fn print_how_to_look(&self) {
        let s = self.script.display();
        println!("  {s} status                      crm_mon and HAProxy's servers");
        println!("  {s} exec node1 redis-ha status  roles, Sentinel and blocks on one screen");
        println!("  {s} exec node1 crm_mon -1 -A    Pacemaker's view");
        println!("  {s} exec client redis-cli -p 6381 set k v    a write through HAProxy");
        println!("  logs: {STATE}/nodeN/ (sentinel.log, redis.log, log-pacemaker/)");
        println!("  {s} down                        remove everything");
    }
}

/// Tries `f` every 300 ms until it succeeds, at most `within`; the last reason when it
/// never does ("not WHAT within ...").
pub(crate) fn retry<T>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() > within => {
                return Err(format!("not {what} within {within:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Polls `f` every 100 ms until it returns Some, at most `within`.
pub(crate) fn wait_for<T>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > within {
            return Err(format!("timed out after {within:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = self.sh_visible(&["down"])
        {
            eprintln!("drills: {e}");
        }
    }
}
