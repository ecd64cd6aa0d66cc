//! The state file: what `start` installed, so `monitor` can tell "never started" from
//! "vanished" and `stop` removes exactly that, whatever the parameters say now.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::kind::AgentKind;
use super::params::{self, Params};
use crate::firewall::Block;

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
        Self {
            path: rsctmp.join(format!("redis-ha-{}-{name}.state", kind.name())),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Records the block atomically (temporary file, then rename).
    pub(crate) fn write(&self, block: &Block) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut text = String::new();
        for (name, value) in params::to_pairs(block) {
            text.push_str(&format!("{name}={value}\n"));
        }
        let tmp = self.path.with_extension("state.tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)
    }

    /// The recorded block; `None` when there is no state file or it cannot be read back.
    pub(crate) fn read(&self, kind: AgentKind) -> Option<Params> {
        let text = fs::read_to_string(&self.path).ok()?;
        let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
        params::parse(kind, |k| {
            pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        })
        .ok()
    }

    pub(crate) fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(state.read(AgentKind::Write).unwrap().block, block);
        state.remove().unwrap();
        state.remove().unwrap();
        assert!(!state.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
