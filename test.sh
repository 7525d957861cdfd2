#!/usr/bin/env bash
# Builds Chorus (and the fuzz targets, tests/fuzz) and runs every test (unit, format check, fuzz,
# end-to-end) with ctest; the output ends with ctest's summary and the exit code is non-zero if
# any test failed. -j1 because the e2e tests share ports and a RESOURCE_LOCK. Extra arguments go
# to ctest (e.g. -R options).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh --fuzz
exec ctest --test-dir build/release --output-on-failure -j1 "$@"
