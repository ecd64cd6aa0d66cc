//! The guard's record of what it refuses and why, `/run/redis-ha/guard` (tmpfs, like the rules): written after
//! every round, read by `redis-ha status`. One line per port, plus when it last checked.

use std::path::Path;

/// One port as the guard last left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortRecord {
    /// `write` or `read`.
    pub(crate) kind: String,
    pub(crate) port: u16,
    /// Why the guard refuses it (None: left to the block clones).
    pub(crate) refused: Option<String>,
    /// Since when it has been in this state, Unix time in ms.
    pub(crate) since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The node the guard runs for.
    pub(crate) node: String,
    /// The last round, Unix time in ms.
    pub(crate) checked_ms: u64,
    pub(crate) ports: Vec<PortRecord>,
}

impl Record {
    pub(crate) fn to_text(&self) -> String {
        let mut text = format!("node {}\nchecked {}\n", self.node, self.checked_ms);
        for p in &self.ports {
            match &p.refused {
                Some(why) => text.push_str(&format!(
                    "{} {} refused {} {}\n",
                    p.kind,
                    p.port,
                    p.since_ms,
                    why.replace('\n', " ")
                )),
                None => text.push_str(&format!("{} {} open {}\n", p.kind, p.port, p.since_ms)),
            }
        }
        text
    }

    /// The inverse of `to_text`; None for anything else.
    pub(crate) fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let node = lines.next()?.strip_prefix("node ")?.to_string();
        let checked_ms = lines.next()?.strip_prefix("checked ")?.parse().ok()?;
        let mut ports = Vec::new();
        for line in lines {
            let mut f = line.splitn(5, ' ');
            let kind = f.next()?.to_string();
            let port = f.next()?.parse().ok()?;
            let state = f.next()?;
            let since_ms = f.next()?.parse().ok()?;
            let refused = match state {
                "refused" => Some(f.next().unwrap_or("").to_string()),
                "open" => None,
                _ => return None,
            };
            ports.push(PortRecord {
                kind,
                port,
                refused,
                since_ms,
            });
        }
        Some(Record {
            node,
            checked_ms,
            ports,
        })
    }

    /// Replaces the file whole (a reader never sees half a record).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(&tmp, path)
    }

    pub(crate) fn read(path: &Path) -> Result<Record, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Record::parse(&text).ok_or_else(|| format!("{}: not a guard record", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let r = Record {
            node: "node1".into(),
            checked_ms: 1_764_662_400_123,
            ports: vec![
                PortRecord {
                    kind: "write".into(),
                    port: 6381,
                    refused: Some("reached 1 of 3 known Sentinels: no majority".into()),
                    since_ms: 1_764_662_400_000,
                },
                PortRecord {
                    kind: "read".into(),
                    port: 6380,
                    refused: None,
                    since_ms: 1_764_662_300_000,
                },
            ],
        };
        let text = r.to_text();
        assert_eq!(
            text,
            "node node1\nchecked 1764662400123\n\
             write 6381 refused 1764662400000 reached 1 of 3 known Sentinels: no majority\n\
             read 6380 open 1764662300000\n"
        );
        assert_eq!(Record::parse(&text), Some(r));
        assert_eq!(
            Record::parse("node x\nchecked 1\nwrite 6381 maybe 1\n"),
            None
        );
        assert_eq!(Record::parse(""), None);
    }
}
