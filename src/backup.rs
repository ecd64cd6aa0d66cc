//! `redis-ha backup DIR`: an RDB snapshot of the Sentinels' primary (or of a synced
//! replica), fetched the way a replica or `redis-cli --rdb` gets one (`SYNC`), checked
//! (magic, version, CRC64), gzipped and written atomically as
//! `DIR/redis-<master>-<UTC>.rdb.gz`; then backups of that master older than `--keep-days`
//! are deleted. Exit 0 done, 1 anything failed (with one line saying what); never a
//! partial file.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::cluster::Role;
use crate::config::{Config, ConfigError, PromoteAt};
use crate::exit::ToolExit;
use crate::observe::{ObserveError, verdict};
use crate::sentinel::{Addr, Credentials, connect};

/// Which Redis serves the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SourceRole {
    Primary,
    /// A replica the newest configuration lists as up and synced.
    Replica,
}

impl SourceRole {
    fn word(self) -> &'static str {
        match self {
            SourceRole::Primary => "primary",
            SourceRole::Replica => "replica",
        }
    }
}

/// What `redis-ha backup` was asked to do.
pub(crate) struct Request<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) keep_days: Option<u64>,
    pub(crate) from: SourceRole,
    /// For connecting, and for the whole transfer.
    pub(crate) timeout: Duration,
}

/// Why no backup was written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{0}")]
    Sentinels(#[from] ObserveError),
    #[error("the Sentinels name no usable primary for {0:?} (down, or mid-failover): no backup")]
    NoPrimary(String),
    #[error("no synced replica of {0:?} to take the backup from")]
    NoReplica(String),
    /// Talking to the Redis that serves the snapshot.
    #[error("{doing} {redis}: {reason}")]
    Transfer {
        doing: &'static str,
        redis: Addr,
        reason: String,
    },
    #[error("{redis} {said}")]
    Refused { redis: Addr, said: String },
    #[error("the snapshot from {redis} is bad: {reason}")]
    Corrupt { redis: Addr, reason: &'static str },
    #[error("cannot {doing} {}: {source}", path.display())]
    File {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs one backup; prints one line on success, one on failure.
pub(crate) fn run(config_path: &Path, req: &Request<'_>) -> ToolExit {
    match backup(config_path, req) {
        Ok(line) => {
            println!("redis-ha backup: {line}");
            ToolExit::Done
        }
        Err(e) => {
            eprintln!("redis-ha backup: {e}");
            ToolExit::Failed
        }
    }
}

fn backup(config_path: &Path, req: &Request<'_>) -> Result<String, BackupError> {
    let config = Config::load(config_path)?;
    if !req.dir.is_dir() {
        return Err(BackupError::NotADirectory(req.dir.to_path_buf()));
    }
    let source = source(&config, req.from)?;
    let credentials = config.redis_client()?.credentials;
    let rdb = fetch(&source, credentials.as_ref(), req.timeout)?;
    let version = verify(&rdb).map_err(|reason| BackupError::Corrupt {
        redis: source.clone(),
        reason,
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("redis-{}-{}", config.master_name, stamp(now));
    let path = write_atomically(req.dir, &base, &rdb)?;
    let pruned = match req.keep_days {
        Some(days) => prune(req.dir, &config.master_name, now, days)?,
        None => 0,
    };
    Ok(format!(
        "{} ({} bytes of RDB version {version}) from {} {source}; {pruned} older backups deleted",
        path.display(),
        rdb.len(),
        req.from.word()
    ))
}

/// The master of the newest configuration a majority of Sentinels gives, or one of its
/// synced replicas. A replica being promoted is not the primary here until a Sentinel
/// names it (`promote_at = switch-master`): the sync opens its write port earlier, but a
/// backup needs a master to answer `SYNC`.
fn source(config: &Config, from: SourceRole) -> Result<Addr, BackupError> {
    let mut named = config.clone();
    named.policy.promote_at = PromoteAt::SwitchMaster;
    let verdict = verdict(&named, &config.sentinel_client()?)?;
    let wanted = match from {
        SourceRole::Primary => Role::Primary,
        SourceRole::Replica => Role::Replica,
    };
    verdict
        .truth
        .roles
        .iter()
        .find(|(_, r)| **r == wanted)
        .map(|(a, _)| a.clone())
        .ok_or_else(|| match from {
            SourceRole::Primary => BackupError::NoPrimary(config.master_name.clone()),
            SourceRole::Replica => BackupError::NoReplica(config.master_name.clone()),
        })
}

/// `SYNC` to `redis`: the reply is `$<length>\r\n` then the RDB (newlines before it are the
/// master's keep-alives while it saves). An ACL user needs `+sync` only (README, "Redis
/// ACL users").
fn fetch(
    redis: &Addr,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Result<Vec<u8>, BackupError> {
    let failed = |doing: &'static str, e: std::io::Error| BackupError::Transfer {
        doing,
        redis: redis.clone(),
        reason: e.to_string(),
    };
    let refused = |said: String| BackupError::Refused {
        redis: redis.clone(),
        said,
    };
    // Resolving its host name and connecting share the timeout, as with the Sentinels.
    let stream = connect(redis, timeout, timeout).map_err(|e| BackupError::Transfer {
        doing: "cannot reach",
        redis: redis.clone(),
        reason: e.to_string(),
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| failed("cannot talk to", e))?;
    let mut out = &stream;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if let Some(credentials) = credentials {
        out.write_all(&credentials.auth_command().get_packed_command())
            .map_err(|e| failed("cannot talk to", e))?;
        reader
            .read_line(&mut line)
            .map_err(|e| failed("no answer from", e))?;
        if !line.starts_with("+OK") {
            return Err(refused(format!(
                "refused our credentials (as {}): {}",
                credentials.who(),
                line.trim().trim_start_matches('-')
            )));
        }
    }
    out.write_all(b"*1\r\n$4\r\nSYNC\r\n")
        .map_err(|e| failed("cannot talk to", e))?;
    let length = loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| failed("no snapshot from", e))?;
        if n == 0 {
            return Err(refused(
                "closed the connection before sending a snapshot".into(),
            ));
        }
        match line.trim_end() {
            "" => continue,
            l if l.starts_with("$EOF:") => {
                return Err(refused(
                    "sent a diskless (EOF-marked) snapshot, which we do not read".into(),
                ));
            }
            l if l.starts_with("-NOPERM") => {
                let who = credentials.map_or("the default user".into(), Credentials::who);
                return Err(refused(format!(
                    "refused SYNC to {who} ({}): give it +sync",
                    &l[1..]
                )));
            }
            l => match l.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => break n,
                None => return Err(refused(format!("answered SYNC with {l:?}"))),
            },
        }
    };
    let mut rdb = vec![0; length];
    reader
        .read_exact(&mut rdb)
        .map_err(|e| failed("the snapshot was cut short by", e))?;
    Ok(rdb)
}

/// The RDB's version, once its magic and (from version 5 on) its CRC64 check out. A zero
/// checksum means Redis runs with `rdbchecksum no`: accepted, there is nothing to check.
pub(crate) fn verify(rdb: &[u8]) -> Result<u32, &'static str> {
    let version = rdb
        .get(..9)
        .filter(|h| h.starts_with(b"REDIS"))
        .and_then(|h| std::str::from_utf8(&h[5..]).ok())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or("no REDISnnnn header")?;
    if version >= 5 {
        let body = rdb
            .len()
            .checked_sub(8)
            .ok_or("shorter than its checksum")?;
        let stored = u64::from_le_bytes(rdb[body..].try_into().expect("8 bytes"));
        if stored != 0 && stored != crc64(&rdb[..body]) {
            return Err("its CRC64 does not match: corrupt or cut short");
        }
    }
    Ok(version)
}

/// Redis's CRC64 (Jones polynomial, reflected, initial value 0): `src/crc64.c`.
pub(crate) fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9, bits reversed
    let mut crc = 0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// `YYYYMMDDTHHMMSSZ`.
fn stamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = crate::ocf::civil_utc(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Backups of one second at most: `BASE.rdb.gz`, then `BASE-2.rdb.gz`...
const SAME_SECOND: u32 = 100;

/// Gzips `rdb` into a hidden temporary file in `dir`, fsyncs it, links it into place as
/// `BASE.rdb.gz` (or `BASE-N.rdb.gz` when a backup of the same second is there: never
/// replacing one) and fsyncs the directory; the temporary file is always removed. The
/// path written.
fn write_atomically(dir: &Path, base: &str, rdb: &[u8]) -> Result<PathBuf, BackupError> {
    let tmp = dir.join(format!(".{base}.rdb.gz.tmp-{}", std::process::id()));
    let mut path = dir.join(format!("{base}.rdb.gz"));
    let result = (|| -> std::io::Result<PathBuf> {
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            fs::OpenOptions::new().write(true).create_new(true),
            0o600,
        )
        .open(&tmp)?;
        let mut gz = GzEncoder::new(file, Compression::default());
        gz.write_all(rdb)?;
        let file: File = gz.finish()?;
        file.sync_all()?;
        // A hard link fails where the name exists: two backups of one second both stay.
        let mut n = 1;
        loop {
            match fs::hard_link(&tmp, &path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < SAME_SECOND => {
                    n += 1;
                    path = dir.join(format!("{base}-{n}.rdb.gz"));
                }
                Err(e) => return Err(e),
            }
        }
        fs::remove_file(&tmp)?;
        File::open(dir)?.sync_all()?;
        Ok(path.clone())
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        BackupError::File {
            doing: "write",
            path: path.clone(),
            source,
        }
    })
}

/// Deletes `redis-<master>-<stamp>.rdb.gz` files in `dir` whose stamp is older than
/// `days`; other files are never touched. The number deleted.
fn prune(dir: &Path, master: &str, now: u64, days: u64) -> Result<usize, BackupError> {
    let cutoff = now.saturating_sub(days * 86_400);
    let prefix = format!("redis-{master}-");
    let mut deleted = 0;
    let entries = fs::read_dir(dir).map_err(|source| BackupError::File {
        doing: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stamp_text) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".rdb.gz"))
        else {
            continue;
        };
        // `STAMP` or `STAMP-N` (a second backup of the same second).
        let stamp_text = match stamp_text.split_once('-') {
            Some((stamp, n)) if n.parse::<u32>().is_ok() => stamp,
            _ => stamp_text,
        };
        let Some(when) = parse_stamp(stamp_text) else {
            continue;
        };
        if when < cutoff {
            let path: PathBuf = entry.path();
            fs::remove_file(&path).map_err(|source| BackupError::File {
                doing: "delete",
                path: path.clone(),
                source,
            })?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// The seconds since the epoch of a `stamp`, by counting up with `civil_utc`'s inverse.
fn parse_stamp(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (Howard Hinnant), the inverse of `civil_utc`.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // src/crc64.c's own test vector.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn verify_checks_magic_and_checksum() {
        let mut rdb = b"REDIS0010\xfe\x00\xff".to_vec();
        let sum = crc64(&rdb);
        rdb.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(verify(&rdb), Ok(10));
        let mut bad = rdb.clone();
        bad[10] ^= 1;
        assert!(verify(&bad).unwrap_err().contains("CRC64"));
        assert!(verify(&rdb[..rdb.len() - 3]).is_err(), "cut short");
        assert!(verify(b"RDB0010").is_err());
        let mut unchecked = b"REDIS0010\xff".to_vec();
        unchecked.extend_from_slice(&[0; 8]);
        assert_eq!(verify(&unchecked), Ok(10), "rdbchecksum no");
    }

    #[test]
    fn stamps_round_trip() {
        for secs in [0, 951_782_400, 1_795_910_399, 1_795_848_000] {
            assert_eq!(parse_stamp(&stamp(secs)), Some(secs), "{secs}");
        }
        assert_eq!(stamp(1_795_910_399), "20261128T235959Z");
        assert_eq!(parse_stamp("20261128T2359Z"), None);
    }

    #[test]
    fn prune_deletes_only_this_masters_old_backups() {
        let dir = std::env::temp_dir().join(format!("rha-prune-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let now = 1_795_910_399;
        let names = [
            format!("redis-ha-{}.rdb.gz", stamp(now - 10 * 86_400)), // old: deleted
            format!("redis-ha-{}-2.rdb.gz", stamp(now - 10 * 86_400)), // its second: deleted
            format!("redis-ha-{}.rdb.gz", stamp(now - 86_400)),      // recent: kept
            format!("redis-other-{}.rdb.gz", stamp(now - 10 * 86_400)), // another master
            "redis-ha-notes.txt".to_string(),
        ];
        for n in &names {
            fs::write(dir.join(n), b"x").unwrap();
        }
        assert_eq!(prune(&dir, "ha", now, 7).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let _ = fs::remove_dir_all(&dir);
        let mut want = names[2..].to_vec();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn two_backups_of_one_second_both_stay() {
        let dir = std::env::temp_dir().join(format!("rha-same-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let first = write_atomically(&dir, "redis-m-20261203T180000Z", b"one").unwrap();
        let second = write_atomically(&dir, "redis-m-20261203T180000Z", b"two").unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let read = |p: &Path| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(File::open(p).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        let (one, two) = (read(&first), read(&second));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(
            left,
            [
                "redis-m-20261203T180000Z-2.rdb.gz",
                "redis-m-20261203T180000Z.rdb.gz"
            ]
        );
        assert_eq!((one.as_str(), two.as_str()), ("one", "two"));
    }
}
