#!/usr/bin/env bash
# Builds Chorus (and the fuzz targets, tests/fuzz) and runs every test (unit, format check, fuzz,
# end-to-end) with ctest; the output ends with ctest's summary and the exit code is non-zero if
# any test failed. Two tests at a time (CHORUS_TEST_JOBS): tests/CMakeLists.txt names the tests
# that share something (RESOURCE_LOCK) or must run alone (RUN_SERIAL). Extra arguments go to
# ctest (e.g. -R options).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh --fuzz
exec ctest --test-dir build/release --output-on-failure -j"${CHORUS_TEST_JOBS:-2}" "$@"
