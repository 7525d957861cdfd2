#!/usr/bin/env bash
# Builds Chorus and starts one chorus-manager in the foreground with three virtual nodes of one
# cluster on 127.0.0.1 (manager/examples/local-3-nodes.yaml): clients use 127.0.0.1:30778 as
# gossip seed (or a node's TCP port 1113/1213/1313), the dashboard and management API are on
# http://127.0.0.1:30778/. Data in ./data, logs in ./logs. Ctrl-C stops the manager and its nodes.
# Extra arguments go to chorus-manager, e.g. ./run.sh --ext-http-port 31778 or ./run.sh --what-if.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh
exec ./build/release/manager/chorus-manager --config manager/examples/local-3-nodes.yaml "$@"
