//! Offline Pacemaker for the snippet tests: temp dirs, CIB files and the CLI tools run on them.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TempDir, run_ok as run};

pub(crate) const NODES: [&str; 3] = ["node1", "node2", "node3"];
pub(crate) const READ_BLOCK: &str = "RedisLBReadBlock-clone";
pub(crate) const WRITE_BLOCK: &str = "RedisLBWriteBlock-clone";

/// A file in crm-snippets/.
pub(crate) fn snippet(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crm-snippets")
        .join(name)
}

/// The ways a user loads the block clones or the properties.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dialect {
    Crm,
    /// The pcs script given the CIB file (`pcs -f`).
    Pcs,
    /// The pcs script without argument, as on a live cluster (`CIB_file` stands in).
    PcsLive,
    Xml,
}

/// One CIB file with the three nodes, worked on through `CIB_file`.
pub(crate) struct Cib {
    pub(crate) path: PathBuf,
}

impl Cib {
    /// A fresh CIB with node1..node3 and fencing off (crmsh refuses resources otherwise).
    pub(crate) fn empty(dir: &TempDir, name: &str) -> Cib {
        let path = dir.join(name);
        let out = run(Command::new("cibadmin").arg("--empty"));
        fs::write(&path, out).unwrap();
        let cib = Cib { path };
        for (id, node) in NODES.iter().enumerate() {
            let xml = format!(r#"<node id="{}" uname="{node}"/>"#, id + 1);
            run(cib
                .cmd("cibadmin")
                .args(["--create", "-o", "nodes", "--xml-text", &xml]));
        }
        cib.set_property("stonith-enabled", "false");
        cib
    }

    /// A tool with `CIB_file` pointing here.
    pub(crate) fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("CIB_file", &self.path);
        cmd
    }

    /// A copy of this CIB in another file, to branch off cases.
    pub(crate) fn copy(&self, dir: &TempDir, name: &str) -> Cib {
        let path = dir.join(name);
        fs::copy(&self.path, &path).unwrap();
        Cib { path }
    }

    pub(crate) fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap()
    }

    /// Loads a snippet (`stem` plus the dialect's extension) the way the README says.
    pub(crate) fn load(&self, stem: &str, dialect: Dialect) {
        match dialect {
            // -F: the agents may not be installed yet.
            Dialect::Crm => run(self
                .cmd("crm")
                .args(["-F", "configure", "load", "update"])
                .arg(snippet(&format!("{stem}.crm")))),
            Dialect::Pcs => run(self.cmd(snippet(&format!("{stem}.pcs.sh"))).arg(&self.path)),
            Dialect::PcsLive => {
                // The script's live path trusts pcs to pass CIB_file on to cibadmin:
                // where a real cluster answers, that is not a risk worth taking.
                let live = Command::new("cibadmin")
                    .args(["--query", "--local"])
                    .env_remove("CIB_file")
                    .output();
                if live.is_ok_and(|o| o.status.success()) {
                    panic!("a live CIB answers here: not running the live pcs script in a test");
                }
                run(&mut self.cmd(snippet(&format!("{stem}.pcs.sh"))))
            }
            Dialect::Xml => run(self
                .cmd("cibadmin")
                .args([
                    "--modify",
                    "--allow-create",
                    "--scope",
                    "configuration",
                    "--xml-file",
                ])
                .arg(snippet(&format!("{stem}.cib.xml")))),
        };
    }

    pub(crate) fn verify(&self) -> crate::util::Run {
        crate::util::run(self.cmd("crm_verify").arg("-x").arg(&self.path)).expect(0)
    }

    pub(crate) fn set_property(&self, name: &str, value: &str) {
        run(self
            .cmd("crm_attribute")
            .args(["--name", name, "--update", value]));
    }

    /// A permanent node attribute, as `crm_attribute --node` and the Sentinel helper write it.
    pub(crate) fn set_node_attr(&self, node: &str, name: &str, value: &str) {
        run(self
            .cmd("crm_attribute")
            .args(["--node", node, "--name", name, "--update", value]));
    }

    /// A transient (status section) node attribute, such as `shutdown`.
    pub(crate) fn set_transient(&self, node: &str, name: &str, value: &str) {
        run(self.cmd("crm_attribute").args([
            "--node", node, "--name", name, "--update", value, "-l", "reboot",
        ]));
    }

    /// Sets `redis_role` of node1..node3 from e.g. "primary - replica"; `-` leaves a node as it is.
    pub(crate) fn set_roles(&self, roles: &str) {
        let roles: Vec<&str> = roles.split_whitespace().collect();
        assert_eq!(roles.len(), NODES.len(), "one role per node: {roles:?}");
        for (node, role) in NODES.iter().zip(roles) {
            if role != "-" {
                self.set_node_attr(node, "redis_role", role);
            }
        }
    }

    /// Runs one scheduler transition with every node up and the given quorum;
    /// returns the resulting CIB (`out`) and the transition's graph.
    pub(crate) fn simulate(&self, dir: &TempDir, out: &str, quorum: bool) -> (Cib, Transition) {
        let out = dir.join(out);
        let dot = out.with_extension("dot");
        let mut cmd = Command::new("crm_simulate");
        cmd.arg("-x").arg(&self.path);
        // Quorum (-q) is only applied together with another change such as -u
        // (Pacemaker 2.1.5 silently ignores a lone -q).
        for node in NODES {
            cmd.args(["-u", node]);
        }
        cmd.args(["-q", if quorum { "1" } else { "0" }, "-S", "-O"])
            .arg(&out)
            .arg("-D")
            .arg(&dot);
        run(&mut cmd);
        let graph = Transition::parse(&fs::read_to_string(&dot).unwrap());
        (Cib { path: out }, graph)
    }

    /// Nodes where the resource runs, read back with `crm_resource --locate`.
    pub(crate) fn locate(&self, rsc: &str) -> BTreeSet<String> {
        let out = run(self.cmd("crm_resource").args(["--locate", "-r", rsc]));
        out.lines()
            .filter_map(|l| l.split_once(" is running on: "))
            .map(|(_, node)| node.trim().to_string())
            .collect()
    }
}

/// A resource action of a transition, e.g. `RedisLBWriteBlock stop node2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Action {
    pub(crate) rsc: String,
    pub(crate) op: String,
    pub(crate) node: String,
}

/// The scheduler's transition graph, read from `crm_simulate -D` (DOT).
#[derive(Debug)]
pub(crate) struct Transition {
    /// Actions the transition runs (green in DOT), by their DOT name.
    actions: Vec<(String, Action)>,
    /// Ordering edges "first" -> "then".
    edges: Vec<(String, String)>,
}

impl Transition {
    fn parse(dot: &str) -> Transition {
        let quoted = |s: &str| -> Vec<String> {
            s.split('"').skip(1).step_by(2).map(String::from).collect()
        };
        let mut actions = Vec::new();
        let mut edges = Vec::new();
        for line in dot.lines() {
            let q = quoted(line);
            if line.contains("\" -> \"") {
                edges.push((q[0].clone(), q[1].clone()));
            } else if line.contains("color=\"green\"") {
                // "RedisLBWriteBlock:2_start_0 node1": instance, op, interval, node.
                let name = &q[0];
                let Some((task, node)) = name.split_once(' ') else {
                    continue;
                }; // pseudo action
                let mut parts = task.rsplitn(3, '_');
                let (_interval, op, rsc) = (parts.next(), parts.next(), parts.next());
                let (Some(op), Some(rsc)) = (op, rsc) else {
                    continue;
                };
                let rsc = rsc.split(':').next().unwrap().to_string();
                actions.push((
                    name.clone(),
                    Action {
                        rsc,
                        op: op.to_string(),
                        node: node.to_string(),
                    },
                ));
            }
        }
        Transition { actions, edges }
    }

    /// Nodes where `rsc` gets `op` (e.g. "start", "stop") in this transition.
    pub(crate) fn nodes(&self, rsc: &str, op: &str) -> BTreeSet<String> {
        self.actions
            .iter()
            .filter(|(_, a)| a.rsc == rsc && a.op == op)
            .map(|(_, a)| a.node.clone())
            .collect()
    }

    fn dot_name(&self, want: &Action) -> &str {
        self.actions
            .iter()
            .find(|(_, a)| a == want)
            .map(|(n, _)| n.as_str())
            .unwrap_or_else(|| panic!("{want:?} is not in the transition: {self:#?}"))
    }

    /// Whether the graph orders `first` (transitively) before `then`.
    pub(crate) fn orders(&self, first: &Action, then: &Action) -> bool {
        let (from, to) = (self.dot_name(first), self.dot_name(then));
        let mut seen = BTreeSet::from([from]);
        let mut todo = vec![from];
        while let Some(at) = todo.pop() {
            for (a, b) in &self.edges {
                if a == at && seen.insert(b.as_str()) {
                    todo.push(b.as_str());
                }
            }
        }
        seen.contains(to)
    }
}

pub(crate) fn action(rsc: &str, op: &str, node: &str) -> Action {
    Action {
        rsc: rsc.into(),
        op: op.into(),
        node: node.into(),
    }
}

/// A set of node names from e.g. "node1 node3".
pub(crate) fn nodes(names: &str) -> BTreeSet<String> {
    names.split_whitespace().map(String::from).collect()
}
