//! `make install` / `make uninstall` into a staging DESTDIR: exactly the documented paths.

use std::path::Path;
use std::process::Command;

use crate::util::{TempDir, bin, run_ok};

/// Every file or link below `root`, relative to it, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

fn make(target: &str, destdir: &Path) {
    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg(target)
            .arg(format!("DESTDIR={}", destdir.display()))
            .arg(format!("BIN={}", bin().display())),
    );
}

#[test]
fn install_puts_the_binary_and_its_links_and_uninstall_takes_them_away() {
    let dest = TempDir::new("destdir");
    make("install-files", dest.path());
    assert_eq!(
        tree(dest.path()),
        [
            "usr/lib/ocf/resource.d/redis-ha/RedisLBReadBlock",
            "usr/lib/ocf/resource.d/redis-ha/RedisLBWriteBlock",
            "usr/lib/redis-ha/redis-ha",
            "usr/lib/redis-ha/sentinel-notify",
            "usr/lib/redis-ha/sentinel-reconfig",
            "usr/sbin/redis-ha",
        ]
    );
    let root = dest.path();
    for link in [
        "usr/lib/ocf/resource.d/redis-ha/RedisLBReadBlock",
        "usr/lib/ocf/resource.d/redis-ha/RedisLBWriteBlock",
        "usr/lib/redis-ha/sentinel-notify",
        "usr/lib/redis-ha/sentinel-reconfig",
        "usr/sbin/redis-ha",
    ] {
        let target = std::fs::canonicalize(root.join(link)).unwrap();
        assert_eq!(
            target,
            root.join("usr/lib/redis-ha/redis-ha"),
            "{link} resolves wrongly"
        );
    }
    // The links work: the agent answers as itself.
    let agent = root.join("usr/lib/ocf/resource.d/redis-ha/RedisLBWriteBlock");
    let md = run_ok(Command::new(agent).arg("meta-data"));
    assert!(md.contains("<resource-agent name=\"RedisLBWriteBlock\""));
    make("install-files", dest.path());
    make("uninstall", dest.path());
    assert_eq!(
        tree(dest.path()),
        Vec::<String>::new(),
        "uninstall left files"
    );
    assert!(!root.join("usr/lib/redis-ha").exists());
    assert!(!root.join("usr/lib/ocf/resource.d/redis-ha").exists());
}
