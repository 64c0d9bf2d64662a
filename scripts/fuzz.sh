#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer harnesses of tests/fuzz (clang, ASan+UBSan,
# -DHG_FUZZ=ON into build-fuzz/) and run each for a while.
#
#   bash scripts/fuzz.sh                 # 60 s per harness, all five
#   bash scripts/fuzz.sh 12              # 12 s each: the short run of scripts/test.sh
#   bash scripts/fuzz.sh 3600 request    # an hour on the request parser only
#   FUZZ_JOBS=2 bash scripts/fuzz.sh 86400   # a day, two processes per harness
#
# Harnesses: request (jsonutil_parse + webhook_from_request), escalation
# (escalation_parse + payload_build + signatures), keys (the keys file
# loader), store and outbox (the journal loaders). Each reads its seeds from
# tests/fuzz/corpus/<name>/ and keeps what it learns in
# build-fuzz/fuzz-work/<name>/ (never in the repository), so a longer run
# starts where the last one stopped.
#
# A crash stops that harness and leaves the input in
# build-fuzz/fuzz-artifacts/<name>/crash-*; the script exits 1. Make it a
# regression test: fix the bug, then copy the input to
# tests/fuzz/corpus/<name>/regress-<what>.bin — ctest replays every corpus
# file in every build (fuzz.replay_<name>), the ASan one included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-60}
shift || true
all=(request escalation keys store outbox)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
jobs=${FUZZ_JOBS:-1}
build=${FUZZ_BUILD:-build-fuzz}

if ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
echo "== build the fuzzers: $build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHG_FUZZ=ON -DHG_TESTS=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
  --target $(printf 'fuzz_%s ' "${names[@]}") >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for n in "${names[@]}"; do
  work="$build/fuzz-work/$n"
  art="$build/fuzz-artifacts/$n"
  mkdir -p "$work" "$art"
  log="$build/fuzz-$n.log"
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-fork="$jobs")
  echo "== fuzz $n for ${secs}s (log $log)"
  if "$build/tests/fuzz/fuzz_$n" "$work" "tests/fuzz/corpus/$n" \
      -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
      -dict=tests/fuzz/json.dict -artifact_prefix="$art/" -print_final_stats=1 \
      "${extra[@]}" >"$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|new_units_added)|^Done" "$log" | tr '\n' ' '
    echo
  else
    echo "fuzz.sh: $n FAILED — $(ls "$art" | head -3 | tr '\n' ' ')" >&2
    grep -E "ERROR|SUMMARY|abort|does not" "$log" | head -5 >&2 || true
    failed+=("$n")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no crash"
