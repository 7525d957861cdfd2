#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for N minutes each, one after the other, and prints a
# line per target: executions, corpus size, and crash artifacts found (saved under
# build/fuzz/tests/fuzz/work/<name>/artifacts/). Builds the fuzz preset first if needed.
# Usage: bench/fuzz.sh [minutes per target, default 5] [target names...]
# The figures go into docs/reliability.md ("Fuzzing").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes="${1:-5}"
shift || true
if [ ! -f build/fuzz/build.ninja ]; then cmake --preset fuzz >/dev/null; fi
cmake --build build/fuzz --target fuzz_targets -j"$(nproc)" >/dev/null
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  while read -r name; do targets+=("$name"); done < <(
    sed -n '/set(CHORUS_FUZZ_TARGETS/,/)/p' tests/fuzz/targets.cmake | sed '1d;$d' | tr -d ' ')
fi
status=0
printf '%-16s %12s %8s %8s %s\n' target executions corpus crashes result
for name in "${targets[@]}"; do
  log="build/fuzz/tests/fuzz/work/$name.log"
  mkdir -p "$(dirname "$log")"
  result=ok
  tests/fuzz/run.sh build/fuzz "$name" "$((minutes * 60))" >"$log" 2>&1 || { result=FAILED; status=1; }
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  corpus="$(find "build/fuzz/tests/fuzz/work/$name/corpus" -type f | wc -l)"
  crashes="$(find "build/fuzz/tests/fuzz/work/$name/artifacts" -type f | wc -l)"
  printf '%-16s %12s %8s %8s %s\n' "$name" "${execs:-?}" "$corpus" "$crashes" "$result"
done
exit "$status"
