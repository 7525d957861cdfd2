#!/usr/bin/env bash
# Shared by ./run.sh and ./test.sh: installs missing Debian packages and the e2e npm packages,
# then configures and builds Chorus with the `release` preset (build/release). With --fuzz (as
# ./test.sh runs it) it also builds the libFuzzer targets with the `fuzz` preset (build/fuzz,
# clang). Idempotent and quiet when nothing is missing. Run it from anywhere.
set -euo pipefail

with_fuzz=0
if [ "${1:-}" = "--fuzz" ]; then with_fuzz=1; fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libpoco-dev libprotobuf-dev protobuf-compiler libsqlite3-dev libssl-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev clang-format clang-tidy
  libjemalloc-dev  # chorus-worker's allocator (CHORUS_JEMALLOC)
  duktape-dev  # worker/projections: the JavaScript engine of projections (its duktape.c is built)
  clang libclang-rt-dev  # tests/fuzz: libFuzzer and the ASan/UBSan runtimes for clang
  iproute2 util-linux  # tests/faults: ip netns, veth, bridge; mount and fallocate
  chromium  # headless browser for the dashboard tests (tests/e2e/dashboard_*)
  dpkg-dev file adduser systemd curl  # installer/: cpack DEB (dpkg-shlibdeps), postinst, systemd-analyze
  openssl  # the tests make their CA and node certificates at test time
  sqlite3  # tests/e2e/backup_restore: reads a backup file independently of Chorus's own code
)

log() { echo "[setup] $*" >&2; }

install_debian_packages() {
  local missing=() pkg
  # Node 20 may come from NodeSource or a tarball; only install Debian's when none is present.
  if ! command -v node >/dev/null 2>&1; then apt_packages+=(nodejs); fi
  if ! command -v npm >/dev/null 2>&1; then apt_packages+=(npm); fi
  for pkg in "${apt_packages[@]}"; do
    local status
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then missing+=("$pkg"); fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_npm_packages() {
  local dir
  # tests/e2e: the client packages and playwright-core; web-ui: the dashboard's build tools.
  for dir in "$repo_root/tests/e2e" "$repo_root/web-ui"; do
    [ -f "$dir/package-lock.json" ] || continue
    # The marker is written only after npm ci succeeded: an interrupted install leaves a partial
    # node_modules behind, which must not count as installed.
    local marker="$dir/node_modules/.chorus-installed"
    if [ ! -f "$marker" ] || [ "$dir/package-lock.json" -nt "$marker" ]; then
      log "installing npm packages in ${dir#"$repo_root"/}"
      (cd "$dir" && npm ci --no-audit --no-fund)
      touch "$marker"
    fi
  done
}

build_release() {
  cd "$repo_root"
  if [ ! -f build/release/build.ninja ]; then
    cmake --preset release
  fi
  cmake --build build/release -j"$(nproc)"
}

# Configured before the release tree, which registers the fuzz tests only when build/fuzz exists.
configure_fuzz() {
  cd "$repo_root"
  if [ ! -f build/fuzz/build.ninja ]; then
    cmake --preset fuzz >/dev/null
  fi
}

build_fuzz() {
  cd "$repo_root"
  cmake --build build/fuzz --target fuzz_targets -j"$(nproc)"
}

install_debian_packages
install_npm_packages
if [ "$with_fuzz" = 1 ]; then configure_fuzz; fi
build_release
if [ "$with_fuzz" = 1 ]; then build_fuzz; fi
