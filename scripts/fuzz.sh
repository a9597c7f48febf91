#!/usr/bin/env bash
# Builds the libFuzzer targets (the package under Fuzz/, in .build-fuzz so it never touches the
# main build) and runs each for SECONDS (default 60). Seeds come from Fuzz/Corpus/<target>/ (in
# git); what the fuzzer adds goes to .build-fuzz/corpus/<target>/ (not in git), and a crash is
# written to .build-fuzz/crashes/<target>-crash-… and makes the script fail after the rest ran.
# A crash becomes a regression test in the main suite (Tests/…) with its input, then gets fixed.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET…]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-envelope fuzz-bodies fuzz-csv fuzz-readings fuzz-xlsx fuzz-plan fuzz-certificate)
scratch=.build-fuzz

# One job: the machine is shared. Coverage instrumentation for every module of the fuzz package
# and the parser targets it depends on; -parse-as-library because libFuzzer provides main.
mkdir -p "$scratch"
swift build --package-path Fuzz --scratch-path "$scratch" --sanitize=fuzzer -Xswiftc -parse-as-library -j 1 \
    >"$scratch/build.log" 2>&1 || { tail -40 "$scratch/build.log"; echo "fuzz: build failed (log: $scratch/build.log)" >&2; exit 1; }
bin=$(swift build --package-path Fuzz --scratch-path "$scratch" --sanitize=fuzzer -Xswiftc -parse-as-library --show-bin-path)

failed=()
mkdir -p "$scratch/crashes"
# Swift's own crash handler would take the signal before libFuzzer, which then writes no crash file.
export SWIFT_BACKTRACE=enable=no
for target in "${targets[@]}"; do
    mkdir -p "$scratch/corpus/$target"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a runaway allocation is a finding too.
    if "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$scratch/crashes/$target-" "$scratch/corpus/$target" "Fuzz/Corpus/$target" \
        >"$scratch/$target.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$')
        echo "fuzz: $target ok ($runs inputs in ${seconds} s, corpus $(ls "$scratch/corpus/$target" | wc -l) + seeds)"
    else
        echo "fuzz: $target FAILED (log: $scratch/$target.log)"
        grep -m 5 -E 'fuzz property broken|Fatal error|ERROR: libFuzzer|SUMMARY|Test unit written' "$scratch/$target.log" | sed 's/^/    /'
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
