#!/usr/bin/env bash
# Runs a test command (its arguments), its output going to the terminal and to
# target/test.log; if it fails, prints what failed once more at the very end: each failed
# drill with its message, each failed libtest test's captured output (head), the cluster
# that did not come up. CI keeps only the tail of a run, where these would otherwise be
# hundreds of lines up. Exits with the command's status.
set -uo pipefail

log=target/test.log
mkdir -p "$(dirname "$log")"
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && exit 0

echo
echo "=== what failed (from $log; exit $status)"
awk '
    # A drill: its FAILED line and its message, up to the next drill or the end of the run.
    /^drill [0-9]+ \.\.\. FAILED/ { drill = 1; n = 0 }
    drill && (/^=== drill / || /^drills: [0-9.]+ s in all/) { drill = 0 }
    drill && n++ < 40 { print; next }
    /^drills: the cluster did not come up/ { print }
    # libtest: a failed test'"'"'s captured output, the first 40 lines of each.
    /^---- .* stdout ----$/ { test = 1; n = 0 }
    test && (/^failures:$/ || /^test result:/) { test = 0 }
    test && n++ < 40 { print }
    /^error: .* target.* failed:/ { tail = 1 }
    tail { print }
' "$log"
exit "$status"
