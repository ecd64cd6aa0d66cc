#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets with libFuzzer's coverage instrumentation on the
# stable toolchain, runs each for FUZZ_SECONDS (default 60) from its seeds (fuzz/seeds/T,
# real inputs) and its growing corpus (fuzz/corpus/T, not committed), prints what each
# did, and exits 1 when any target found a panic, a hang (one input over FUZZ_TIMEOUT
# seconds) or a leak of memory past FUZZ_RSS_MB. A finding is kept in fuzz/artifacts/T/:
# replay it with `fuzz/target/$TRIPLE/release/T fuzz/artifacts/T/crash-...`.
# FUZZ_TARGETS="cib config" picks targets.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-5}
RSS_MB=${FUZZ_RSS_MB:-2048}
ALL="config sentinel_replies cib agent_params agent_state_file sentinel_argv"
TARGETS=${FUZZ_TARGETS:-$ALL}
CARGO=${CARGO:-cargo}

# An explicit --target keeps these flags off build scripts and proc macros (they cannot
# link the coverage callbacks); the flags are those `cargo fuzz build -s none` passes,
# all stable.
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing"
$CARGO build --release --locked --target "$TRIPLE" --bins

failed=()
summary=()
for t in $TARGETS; do
    bin=target/$TRIPLE/release/$t
    [ -x "$bin" ] || { echo "no fuzz target $t (have: $ALL)" >&2; exit 2; }
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    log=artifacts/$t/last-run.log
    echo "== $t: ${SECONDS_EACH}s"
    # -max_len: past MAX_INPUT the entries cut their input anyway.
    rc=0
    "$bin" "corpus/$t" "seeds/$t" \
        -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
        -max_len=65536 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "corpus/$t" -type f | wc -l)
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        found=$(ls -t "artifacts/$t" | grep -v last-run.log | head -1)
        summary+=("$(printf '%-18s FOUND (exit %s): %s' "$t" "$rc" "artifacts/$t/$found")")
        grep -E '^(thread|==[0-9]+== ERROR|SUMMARY)|panicked' "$log" | head -5 || true
    else
        summary+=("$(printf '%-18s %10s runs in %4s s, coverage %5s edges, corpus %5s' \
            "$t" "${runs:-?}" "${secs:-?}" "${cov:-?}" "$corpus")")
    fi
done

echo
echo "fuzz summary (${SECONDS_EACH}s a target; logs in fuzz/artifacts/T/last-run.log):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
