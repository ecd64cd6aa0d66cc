//! The state file: what `start` installed, so `monitor` can tell "never started" from
//! "vanished" and `stop` removes exactly that, whatever the parameters say now.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::params::{self, Params};
use crate::blocks::AgentKind;
use crate::firewall::Block;

/// The longest instance part of a state file's name.
const MAX_NAME: usize = 160;

/// One resource instance's state file under `HA_RSCTMP`.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub(crate) fn new(rsctmp: &Path, kind: AgentKind, instance: Option<&str>) -> Self {
        let name: String = instance
            .unwrap_or(kind.name())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // A file name has at most 255 bytes (and `.verified` is added to it): a longer
        // instance name keeps its start and a hash of the whole.
        let name = if name.len() > MAX_NAME {
            let hash = instance
                .unwrap_or_default()
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            format!("{}-{hash:016x}", &name[..MAX_NAME - 17])
        } else {
            name
        };
        Self {
            path: rsctmp.join(format!("redis-ha-{}-{name}.state", kind.name())),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The resource this file is for, as its name spells it (the instance name, with
    /// what is unsafe in a file name replaced).
    pub(crate) fn resource(&self, kind: AgentKind) -> String {
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.strip_prefix(&format!("redis-ha-{}-", kind.name()))
            .and_then(|n| n.strip_suffix(".state"))
            .unwrap_or(name)
            .to_string()
    }

    pub(crate) fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Records the block atomically (temporary file, then rename); forgets any earlier
    /// verification, since this start is about to change the ruleset.
    pub(crate) fn write(&self, block: &Block) -> io::Result<()> {
        remove_if_there(&self.verified_path())?;
        let mut text = pairs_text(block);
        if let Some(ns) = network_namespace() {
            text.push_str(&format!("{NETNS_KEY}={ns}\n"));
        }
        write_atomically(&self.path, &text, true)
    }

    /// Remembers that `block` was seen fully in force at this ruleset version.
    /// Not synced to disk: it is a cache, and a lost one only costs a full check.
    pub(crate) fn record_verified(&self, block: &Block, version: &str) -> io::Result<()> {
        let text = format!("version={version}\n{}", pairs_text(block));
        write_atomically(&self.verified_path(), &text, false)
    }

    /// Whether `block` was seen in force at exactly this ruleset version (so it still is).
    pub(crate) fn verified_at(&self, block: &Block, version: &str) -> bool {
        let want = format!("version={version}\n{}", pairs_text(block));
        fs::read_to_string(self.verified_path()).is_ok_and(|text| text == want)
    }

    fn verified_path(&self) -> PathBuf {
        self.path.with_extension("verified")
    }

    /// The recorded block; `None` when there is no state file or it cannot be read back.
    pub(crate) fn read(&self, kind: AgentKind) -> Option<Params> {
        read_at(&self.path, kind)
    }

    /// The state files of the other resources of this agent on this host (beside this
    /// one in `HA_RSCTMP`) and in this network namespace, with what each recorded
    /// (`None`: unreadable). One that names another namespace is an agent with a ruleset
    /// of its own (tests, containers sharing `HA_RSCTMP`); one that names none (written
    /// before the namespace was recorded) counts as ours.
    pub(crate) fn others(&self, kind: AgentKind) -> Vec<(StateFile, Option<Params>)> {
        let Some(dir) = self.path.parent() else {
            return Vec::new();
        };
        let prefix = format!("redis-ha-{}-", kind.name());
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let here = network_namespace();
        let mut others: Vec<(StateFile, Option<Params>)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|path| {
                *path != self.path
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".state"))
            })
            .filter_map(|path| {
                // One read: the namespace it names, then what it recorded.
                let text = fs::read_to_string(&path).ok();
                let theirs = text.as_deref().and_then(recorded_namespace);
                if theirs.is_some_and(|ns| here.as_ref().is_some_and(|h| ns != h)) {
                    return None;
                }
                let params = text.and_then(|t| params::from_lines(kind, &t).ok());
                Some((StateFile { path }, params))
            })
            .collect();
        others.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        others
    }

    pub(crate) fn remove(&self) -> io::Result<()> {
        remove_if_there(&self.verified_path())?;
        remove_if_there(&self.path)
    }
}

/// The state file's line naming the network namespace its block is in.
const NETNS_KEY: &str = "netns";

/// This process's network namespace (`net:[4026531840]`), when /proc says.
fn network_namespace() -> Option<String> {
    fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The network namespace a state file's `text` records, if any.
fn recorded_namespace(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix(NETNS_KEY)?.strip_prefix('='))
}

/// The block recorded in the state file at `path`.
fn read_at(path: &Path, kind: AgentKind) -> Option<Params> {
    let text = fs::read_to_string(path).ok()?;
    params::from_lines(kind, &text).ok()
}

fn pairs_text(block: &Block) -> String {
    params::to_pairs(block)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect()
}

fn write_atomically(path: &Path, text: &str, sync: bool) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    if sync {
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Removes `path` if it is there. A path that cannot be there (its directory is a file,
/// its name too long, a read-only directory without it) is not an error: a stop with
/// nothing to do succeeds.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) => match fs::symlink_metadata(path) {
            Ok(_) => Err(e),
            Err(gone) if gone.kind() == io::ErrorKind::PermissionDenied => Err(e),
            Err(_) => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_instance_name_still_makes_a_state_file() {
        let dir = std::env::temp_dir().join(format!("redis-ha-long-{}", std::process::id()));
        let (a, b) = ("r".repeat(300) + "a", "r".repeat(300) + "b");
        let sa = StateFile::new(&dir, AgentKind::Read, Some(&a));
        let sb = StateFile::new(&dir, AgentKind::Read, Some(&b));
        assert_ne!(sa.path(), sb.path(), "the hash tells them apart");
        let block = params::parse(AgentKind::Read, |_| None).unwrap().block;
        sa.write(&block).unwrap();
        sa.record_verified(&block, "1").unwrap();
        assert_eq!(sa.read(AgentKind::Read).unwrap().block, block);
        sa.remove().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_round_trips_and_names_are_safe() {
        let dir = std::env::temp_dir().join(format!("redis-ha-state-{}", std::process::id()));
        let state = StateFile::new(&dir, AgentKind::Write, Some("../evil name"));
        assert_eq!(
            state.path().file_name().unwrap().to_str().unwrap(),
            "redis-ha-RedisLBWriteBlock-___evil_name.state"
        );
        assert!(state.read(AgentKind::Write).is_none());
        let block = params::parse(AgentKind::Write, |k| (k == "family").then_some("both"))
            .unwrap()
            .block;
        state.write(&block).unwrap();
        assert!(state.exists());
        assert!(!state.verified_at(&block, "3"));
        state.record_verified(&block, "3").unwrap();
        assert!(state.verified_at(&block, "3"));
        assert!(!state.verified_at(&block, "4"), "another generation");
        let mut other = block.clone();
        other.port = crate::firewall::Port::new(7000);
        assert!(!state.verified_at(&other, "3"), "another block");
        state.write(&block).unwrap();
        assert!(
            !state.verified_at(&block, "3"),
            "a new start forgets the verification"
        );
        state.record_verified(&block, "3").unwrap();
        assert_eq!(state.read(AgentKind::Write).unwrap().block, block);
        state.remove().unwrap();
        state.remove().unwrap();
        assert!(!state.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
