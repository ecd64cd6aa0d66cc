//! Reads `crm_resource --locate -r RSC`: the nodes where Pacemaker's status says RSC runs.

use std::collections::BTreeSet;

use super::NodeName;

/// Nodes named on stdout as `resource RSC is running on: NODE` (a promotable clone adds
/// ` Promoted`). A resource that runs nowhere prints `resource RSC is NOT running` on
/// stderr and nothing on stdout, still exiting 0. Any other stdout line is an error: the
/// output is not what we know how to read, so "runs nowhere" cannot be trusted.
pub(crate) fn running_on(rsc: &str, stdout: &str) -> Result<BTreeSet<NodeName>, String> {
    let prefix = format!("resource {rsc} is running on: ");
    let mut nodes = BTreeSet::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let node = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("unexpected line {line:?}"))?;
        nodes.insert(NodeName(node.to_string()));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSC: &str = "RedisLBWriteBlock-clone";

    #[test]
    fn real_outputs() {
        // Captured from crm_resource 2.1.5 on CIB files (crm_simulate's output).
        let table: [(&str, &[&str]); 4] = [
            (
                "resource RedisLBWriteBlock-clone is running on: node3\n\
                 resource RedisLBWriteBlock-clone is running on: node2\n\
                 resource RedisLBWriteBlock-clone is running on: node1\n",
                &["node1", "node2", "node3"],
            ),
            (
                "resource RedisLBWriteBlock-clone is running on: node3\n",
                &["node3"],
            ),
            // "is NOT running" goes to stderr: stdout is empty.
            ("", &[]),
            (
                "resource RedisLBWriteBlock-clone is running on: node2 Promoted\n",
                &["node2"],
            ),
        ];
        for (stdout, want) in table {
            let got = running_on(RSC, stdout).unwrap();
            let want: BTreeSet<NodeName> = want.iter().map(|n| NodeName(n.to_string())).collect();
            assert_eq!(got, want, "{stdout:?}");
        }
    }

    #[test]
    fn anything_else_is_an_error() {
        for stdout in [
            "resource RedisLBReadBlock-clone is running on: node1\n",
            "resource RedisLBWriteBlock-clone is running on: \n",
            "node1\n",
            "<pacemaker-result/>\n",
        ] {
            assert!(running_on(RSC, stdout).is_err(), "{stdout:?}");
        }
    }
}
