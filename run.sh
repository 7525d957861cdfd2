#!/usr/bin/env bash
# Builds Chorus and starts one worker on 127.0.0.1 (data in ./data, logs in ./logs), in the
# foreground. Extra arguments go to chorus-worker, e.g. ./run.sh --mem-db --ext-tcp-port 4113.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh
# The worker's defaults are exactly that (127.0.0.1, ./data, ./logs, relative to this folder).
exec ./build/release/worker/chorus-worker "$@"
