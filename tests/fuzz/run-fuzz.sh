#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh TARGET SEEDS WORKDIR DICT - runs one libFuzzer target for
# $LILY_FUZZ_SECONDS seconds (default 60): the committed seeds are read-only, new inputs go to
# WORKDIR/corpus, a crash leaves WORKDIR/crash-* and fails the run (non-zero exit).
set -euo pipefail
target=$1 seeds=$2 work=$3 dict=$4
secs=${LILY_FUZZ_SECONDS:-60}
mkdir -p "$work/corpus"
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536
      -artifact_prefix="$work/" -print_final_stats=1)
[ -f "$dict" ] && args+=(-dict="$dict")
echo "fuzzing $(basename "$target") for ${secs}s (seeds: $seeds)"
exec "$target" "${args[@]}" "$work/corpus" "$seeds"
