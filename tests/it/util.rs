//! Test helpers: scratch directories, network namespaces, Redis servers and agent runs,
//! each cleaned up on drop, and failures that print the command, its output and its
//! environment.

#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test of this run (or a concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// The binary cargo built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis-ha"))
}

/// Where `make install` puts things (PREFIX=/usr).
pub const INSTALLED_OCF_DIR: &str = "/usr/lib/ocf/resource.d/redis-ha";

/// The installed agent, after checking it is this build (tests that need the real OCF
/// root, like `crm_resource`, must not test a stale install).
pub fn installed_agent(name: &str) -> PathBuf {
    let path = Path::new(INSTALLED_OCF_DIR).join(name);
    let installed = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `make install` first (`make test` does)",
            path.display()
        )
    });
    let built = std::fs::read(bin()).unwrap();
    assert!(
        installed == built,
        "{} is not this build: run `make install` first (`make test` does)",
        path.display()
    );
    path
}

/// A scratch directory, world-readable (Pacemaker tools and ocf-tester run parts as
/// `nobody`), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(unique(&format!("rha-{tag}")));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Links `name` to the built binary, as the OCF provider directory does.
    pub fn persona(&self, name: &str) -> PathBuf {
        let link = self.join(name);
        if !link.exists() {
            symlink(bin(), &link).unwrap();
        }
        link
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished command did, printable in full for assertion messages.
pub struct Run {
    pub command: String,
    pub env: Vec<(String, String)>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(command: String, env: Vec<(String, String)>, out: Output) -> Self {
        Run {
            command,
            env,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The exit reason Pacemaker would show (the last `ocf-exit-reason:` line).
    pub fn exit_reason(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
    }

    /// Panics with everything known unless the exit code is `want`.
    pub fn expect(self, want: i32) -> Self {
        assert_eq!(self.code, want, "unexpected exit code\n{self}");
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        for (k, v) in &self.env {
            writeln!(f, "  env {k}={v}")?;
        }
        writeln!(f, "exit code: {}", self.code)?;
        writeln!(f, "stdout:\n{}", self.stdout)?;
        write!(f, "stderr:\n{}", self.stderr)
    }
}

/// Runs a command to completion and records everything about it.
pub fn run(cmd: &mut Command) -> Run {
    let command = format!("{cmd:?}");
    let env = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    Run::from_output(command, env, out)
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    run(cmd).expect(0).stdout
}

/// Writes an executable script by a child process (a file this multi-threaded process held
/// open for writing could leak into another test's fork: ETXTBSY when it is run).
pub fn write_script(path: &Path, text: &str) {
    run_ok(
        Command::new("sh")
            .args([
                "-c",
                "printf '%s' \"$1\" > \"$2\" && chmod 0755 \"$2\"",
                "sh",
            ])
            .arg(text)
            .arg(path),
    );
}

/// A network namespace of our own (`rha-…`), deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = unique(&format!("rha-{tag}"));
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg(program);
        cmd
    }

    /// `ip -n NS ...`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs `f` on a thread that has entered this namespace (sockets it makes stay there).
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap();
            setns(&fd, CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// `iptables-save` (or another program's) view, for assertion messages.
    pub fn dump(&self, program: &str) -> String {
        let out = run(&mut self.cmd(program));
        format!("{}{}", out.stdout, out.stderr)
    }

    /// A TCP connection from inside the namespace.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        self.enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
    }

    /// What a client in this namespace sees on `addr`: PONG, a reset, or nothing.
    pub fn probe(&self, addr: SocketAddr) -> Probe {
        match self.connect(addr) {
            Ok(stream) => ping(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Probe::Silent,
            Err(e) => Probe::Error(e.kind()),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// What one connection attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Connected and Redis answered PING.
    Pong,
    /// Refused with a TCP reset.
    Refused,
    /// Connected, but the connection was reset or closed before PONG.
    Reset,
    /// No answer within the timeout (a DROP).
    Silent,
    Error(std::io::ErrorKind),
}

/// Sends PING on an open connection and says what came back.
pub fn ping(mut stream: TcpStream) -> Probe {
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    if stream.write_all(b"PING\r\n").is_err() {
        return Probe::Reset;
    }
    let mut buf = [0u8; 7];
    match stream.read(&mut buf) {
        Ok(n) if buf[..n].starts_with(b"+PONG") => Probe::Pong,
        Ok(_) => Probe::Reset,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Probe::Silent,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Probe::Silent,
        Err(_) => Probe::Reset,
    }
}

/// A server namespace and a client namespace joined by a veth pair:
/// server 10.213.0.1 / fd00:213::1, client 10.213.0.2 / fd00:213::2.
pub struct Pair {
    pub server: Netns,
    pub client: Netns,
}

pub const SERVER_V4: &str = "10.213.0.1";
pub const SERVER_V6: &str = "fd00:213::1";

impl Pair {
    pub fn new(tag: &str) -> Self {
        let server = Netns::new(&format!("{tag}-s"));
        let client = Netns::new(&format!("{tag}-c"));
        server.ip(&[
            "link",
            "add",
            "v0",
            "type",
            "veth",
            "peer",
            "name",
            "v1",
            "netns",
            client.name(),
        ]);
        for (ns, dev, v4, v6) in [
            (&server, "v0", "10.213.0.1/24", "fd00:213::1/64"),
            (&client, "v1", "10.213.0.2/24", "fd00:213::2/64"),
        ] {
            ns.ip(&["addr", "add", v4, "dev", dev]);
            ns.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        Pair { server, client }
    }
}

/// `addr:port` as a socket address (IPv6 literals without brackets).
pub fn sock(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(addr.parse().unwrap(), port)
}

/// A `redis-server` on 6379 inside a namespace, killed (by its PID) on drop.
pub struct Redis {
    child: Child,
    _dir: TempDir,
}

impl Redis {
    pub fn start(ns: &Netns) -> Self {
        let dir = TempDir::new("redis");
        let child = ns
            .cmd("redis-server")
            .args([
                "--port",
                "6379",
                "--bind",
                "0.0.0.0 ::",
                "--protected-mode",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let redis = Redis { child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while ns.probe(sock("127.0.0.1", 6379)) != Probe::Pong {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer in {}",
                ns.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent invocation with the environment Pacemaker's execd gives (and nothing else
/// from ours but PATH), inside a namespace.
pub struct AgentCall<'a> {
    ns: &'a Netns,
    agent: PathBuf,
    rsctmp: PathBuf,
    instance: String,
    params: Vec<(String, String)>,
    extra_env: Vec<(String, String)>,
    path: Option<String>,
    wrapper: Vec<String>,
}

impl<'a> AgentCall<'a> {
    /// `agent` is a path whose file name is the agent's; state goes to `rsctmp`.
    pub fn new(ns: &'a Netns, agent: &Path, rsctmp: &Path) -> Self {
        let name = agent.file_name().unwrap().to_str().unwrap().to_string();
        AgentCall {
            ns,
            agent: agent.to_path_buf(),
            rsctmp: rsctmp.to_path_buf(),
            instance: format!("{name}:0"),
            params: Vec::new(),
            extra_env: Vec::new(),
            path: None,
            wrapper: Vec::new(),
        }
    }

    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn instance(mut self, name: &str) -> Self {
        self.instance = name.to_string();
        self
    }

    /// Replaces PATH (e.g. to put another iptables first).
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_string());
        self
    }

    /// Runs the agent under another program (e.g. `strace -f -o LOG`).
    pub fn wrapped(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        self
    }

    /// Runs `action`; a `monitor` is a recurring one (interval 10 s) unless `probe` is used.
    pub fn run(&self, action: &str) -> Run {
        let interval = if action == "monitor" { "10000" } else { "0" };
        self.run_with_interval(action, interval)
    }

    /// A monitor with interval 0: Pacemaker's probe.
    pub fn probe(&self) -> Run {
        self.run_with_interval("monitor", "0")
    }

    fn run_with_interval(&self, action: &str, interval: &str) -> Run {
        let name = self.agent.file_name().unwrap().to_str().unwrap();
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = self.ns.cmd(program);
                cmd.args(args).arg(&self.agent);
                cmd
            }
            None => self.ns.cmd(&self.agent),
        };
        cmd.arg(action).env_clear();
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".to_string());
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
            ("OCF_RA_VERSION_MAJOR".into(), "1".into()),
            ("OCF_RA_VERSION_MINOR".into(), "1".into()),
            ("OCF_RESOURCE_INSTANCE".into(), self.instance.clone()),
            ("OCF_RESOURCE_TYPE".into(), name.into()),
            ("OCF_RESOURCE_PROVIDER".into(), "redis-ha".into()),
            ("OCF_RESKEY_crm_feature_set".into(), "3.16.2".into()),
            ("OCF_RESKEY_CRM_meta_timeout".into(), "20000".into()),
            ("OCF_RESKEY_CRM_meta_interval".into(), interval.into()),
            ("HA_RSCTMP".into(), self.rsctmp.display().to_string()),
        ];
        for (k, v) in &self.params {
            env.push((format!("OCF_RESKEY_{k}"), v.clone()));
        }
        env.extend(self.extra_env.iter().cloned());
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        run(&mut cmd)
    }
}

impl Netns {
    /// Like `probe`, with the connect timeout given: a DROP then costs that long, not 2 s.
    pub fn probe_within(&self, addr: SocketAddr, timeout: Duration) -> Probe {
        match self.enter(move || TcpStream::connect_timeout(&addr, timeout)) {
            Ok(stream) => ping(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Probe::Silent,
            Err(e) => Probe::Error(e.kind()),
        }
    }
}
