#!/usr/bin/env bash
# Runs one libFuzzer target for a number of seconds over its committed seed corpus
# (tests/fuzz/corpus/<name>) plus the inputs it found before (kept in the fuzz build folder, never
# in the source tree). Exits non-zero on a crash, a leak, a timeout or a broken property; the
# input that did it is saved under <fuzz build>/tests/fuzz/work/<name>/artifacts/.
# Usage: tests/fuzz/run.sh <fuzz build folder> <name> <seconds>. Exit 77 (ctest: skipped) when
# the target is not built.
set -euo pipefail
build="$1" name="$2" seconds="$3"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary="$build/tests/fuzz/${name}_fuzz"
if [ ! -x "$binary" ]; then
  echo "fuzz target $binary is not built (cmake --preset fuzz && cmake --build build/fuzz)" >&2
  exit 77
fi
work="$build/tests/fuzz/work/$name"
mkdir -p "$work/corpus" "$work/artifacts"
dict=()
if [ -f "$src/dict/$name.dict" ]; then dict=(-dict="$src/dict/$name.dict"); fi
# -timeout: one input taking over 10 s is a hang; -rss_limit_mb: growth beyond 2 GiB is a bug.
# -error_exitcode: libFuzzer's default (77) is ctest's "skipped".
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" "$src/corpus/$name"
