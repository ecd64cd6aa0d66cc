//! `redis-ha backup` against real Redis and Sentinels: the file it writes passes
//! `redis-check-rdb`, and a Redis started on it holds the keys written before; failures
//! leave no file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::redis_set::RedisSet;
use crate::util::{TempDir, bin, run};

fn config(dir: &TempDir, sentinel: &str) -> std::path::PathBuf {
    let path = dir.join("redis-ha.conf");
    std::fs::write(
        &path,
        format!("master_name = redis-ha\nsentinel = {sentinel}\n"),
    )
    .unwrap();
    path
}

fn backups(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Starts a Redis on `rdb` (inside the set's namespace, port 6390), returns
/// (DBSIZE, GET k17, HGET h f), and stops it.
fn load(set: &RedisSet, rdb_dir: &std::path::Path) -> (String, String, String) {
    let mut server = set
        .ns()
        .cmd("redis-server")
        .args(["--port", "6390", "--bind", "127.0.0.1", "--save", ""])
        .args(["--daemonize", "no", "--dbfilename", "dump.rdb", "--dir"])
        .arg(rdb_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| set.cli("127.0.0.1", 6390, args);
    let start = Instant::now();
    while cli(&["PING"]).stdout.trim() != "PONG" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the restored Redis did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = (
        cli(&["DBSIZE"]).stdout.trim().to_string(),
        cli(&["GET", "k17"]).stdout.trim().to_string(),
        cli(&["HGET", "h", "f"]).stdout.trim().to_string(),
    );
    let _ = server.kill();
    let _ = server.wait();
    got
}

#[test]
fn a_backup_restores_the_same_keys_and_failures_leave_no_file() {
    let set = RedisSet::start(3);
    let mut mset = vec!["MSET".to_string()];
    for i in 0..200 {
        mset.push(format!("k{i}"));
        mset.push(format!("v{i}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    set.redis_cli(0, &mset).expect(0);
    set.redis_cli(0, &["HSET", "h", "f", "hv"]).expect(0);
    let dir = TempDir::new("backup");
    let out_dir = dir.join("backups");
    std::fs::create_dir(&out_dir).unwrap();
    let conf = config(&dir, &set.sentinel_addr(0));
    // Another master's old backup and an unrelated file: --keep-days must not touch them.
    std::fs::write(out_dir.join("redis-other-20200101T000000Z.rdb.gz"), b"x").unwrap();
    std::fs::write(out_dir.join("redis-redis-ha-20200101T000000Z.rdb.gz"), b"x").unwrap();
    for from in ["primary", "replica"] {
        let out = run(set
            .ns()
            .cmd(bin())
            .args(["backup", "--from", from, "--keep-days", "7", "--config"])
            .arg(&conf)
            .arg(&out_dir))
        .expect(0);
        let files: Vec<_> = backups(&out_dir)
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with("redis-redis-ha-") && !n.contains("20200101")
            })
            .collect();
        let newest = files.last().unwrap_or_else(|| panic!("no backup\n{out}"));
        let restore = dir.join(&format!("restore-{from}"));
        std::fs::create_dir(&restore).unwrap();
        let rdb = std::fs::File::create(restore.join("dump.rdb")).unwrap();
        let gunzip = Command::new("gzip")
            .arg("-dc")
            .arg(newest)
            .stdout(rdb)
            .status()
            .unwrap();
        assert!(gunzip.success(), "{out}");
        run(Command::new("redis-check-rdb").arg(restore.join("dump.rdb"))).expect(0);
        assert_eq!(
            load(&set, &restore),
            ("201".to_string(), "v17".to_string(), "hv".to_string()),
            "{from}"
        );
    }
    let names: Vec<String> = backups(&out_dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"redis-other-20200101T000000Z.rdb.gz".to_string()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n == "redis-redis-ha-20200101T000000Z.rdb.gz"),
        "not pruned: {names:?}"
    );
    // Failures: exit 1, one line saying why, nothing new in the directory.
    let before = backups(&out_dir);
    let nowhere = config(&dir, "127.0.0.1:1");
    let out = run(set
        .ns()
        .cmd(bin())
        .args(["backup", "--config"])
        .arg(&nowhere)
        .arg(&out_dir))
    .expect(1);
    assert!(out.stderr.contains("no majority"), "{out}");
    let out = run(set
        .ns()
        .cmd(bin())
        .args(["backup", "--config"])
        .arg(&conf)
        .arg(dir.join("missing")))
    .expect(1);
    assert!(out.stderr.contains("is not a directory"), "{out}");
    assert_eq!(backups(&out_dir), before);
}
