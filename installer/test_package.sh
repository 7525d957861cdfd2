#!/usr/bin/env bash
# installer_package (ctest): builds the Debian package with cpack from the already-built targets,
# checks its contents and control fields, installs it with dpkg, checks the user, folders and that
# the service was not started, runs the installed manager as user chorus with the installed
# config (on free ports if the default ones are taken), waits for its three nodes to form a
# cluster, writes and reads an event through the manager's gossip port, stops it, purges the
# package and checks that nothing is left. Then installer/install.sh into a temporary prefix,
# twice (idempotent), and its --uninstall --purge. `systemd-analyze verify` on the unit where it
# is available. Needs root (dpkg -i, a system user); exits 77 (ctest: skipped) otherwise.
#   test_package.sh <build-dir> <version>
set -uo pipefail

build="$1"
version="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
client=("node" "$here/test_client.mjs")
export CHORUS_E2E_DIR="${CHORUS_E2E_DIR:-$here/../tests/e2e}"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, a system user chorus); CI runs it as root"
[ "${CHORUS_HAS_MANAGER:-1}" = 1 ] || skip "no chorus-manager target in this build"
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps runuser node; do
  command -v "$tool" >/dev/null || skip "$tool not found (scripts/setup.sh installs it)"
done
[ -x "$build/manager/chorus-manager" ] || fail "$build/manager/chorus-manager is not built"
[ -x "$build/worker/chorus-worker" ] || fail "$build/worker/chorus-worker is not built"
[ -d "$CHORUS_E2E_DIR/node_modules/node-eventstore-client" ] ||
  fail "node-eventstore-client missing in $CHORUS_E2E_DIR (scripts/setup.sh installs it)"

work="$(mktemp -d /tmp/chorus-installer-test.XXXXXX)"
chmod 755 "$work"
manager_pid=""

stop_manager() {
  [ -n "$manager_pid" ] || return 0
  kill -TERM "$manager_pid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$manager_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$manager_pid" 2>/dev/null
  manager_pid=""
}

cleanup() {
  stop_manager
  if dpkg-query -W -f='${Status}' chorus 2>/dev/null | grep -q 'ok installed\|config-files'; then
    dpkg --purge chorus >/dev/null 2>&1
  fi
  [ -x "$work/prefix/bin/chorus-manager" ] &&
    "$here/install.sh" --prefix "$work/prefix" --uninstall --purge >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

if dpkg-query -W -f='${Status}' chorus 2>/dev/null | grep -q 'ok installed\|config-files'; then
  fail "a package named chorus is already installed on this machine (dpkg --purge chorus, if it is a leftover of this test); refusing to replace it"
fi
for p in /etc/chorus /var/lib/chorus /var/log/chorus /etc/systemd/system/chorus-manager.service; do
  [ -e "$p" ] && fail "$p exists (an install.sh install? installer/install.sh --uninstall --purge removes it); refusing to touch it"
done

# ---- the package
step "cpack -G DEB"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb="$work/pkg/chorus_${version}_amd64.deb"
[ -f "$deb" ] || { ls "$work/pkg"; fail "no $deb"; }
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

step "dpkg-deb -I / -c"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = chorus ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', want $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture is '$(field Architecture)'"
depends="$(field Depends)"
echo "Depends: $depends"
[ -n "$depends" ] || fail "Depends is empty"
echo "$depends" | grep -q 'libc6' || fail "Depends lacks libc6 (dpkg-shlibdeps not used?)"
echo "$depends" | grep -q 'libstdc++6' || fail "Depends lacks libstdc++6"
for bad in -dev build-essential cmake ninja-build protobuf-compiler nodejs npm clang; do
  echo "$depends" | tr ',' '\n' | grep -q -- "$bad" && fail "Depends lists a build-only package ($bad)"
done
conffiles="$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
[ "$conffiles" = /etc/chorus/manager.yaml ] || fail "conffiles is '$conffiles'"
control_files="$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)"
for script in postinst prerm postrm; do
  grep -qx "./$script" <<<"$control_files" || fail "no $script in the control archive"
done
dpkg-deb -c "$deb" >"$work/contents"
for f in ./usr/bin/chorus-manager ./usr/bin/chorus-worker ./usr/bin/chorus ./etc/chorus/manager.yaml \
         ./lib/systemd/system/chorus-manager.service ./usr/share/doc/chorus/operations.md \
         ./usr/share/bash-completion/completions/chorus ./usr/share/doc/chorus/cli.md; do
  grep -q " $f\$" "$work/contents" || { cat "$work/contents"; fail "$f is not in the package"; }
done
web_built=0
if [ -f "$build/web-ui/dist/index.html" ]; then
  web_built=1
  grep -q ' ./usr/share/chorus/web/index.html$' "$work/contents" ||
    fail "the dashboard (usr/share/chorus/web/index.html) is not in the package"
else
  echo "note: no dashboard in this build ($build/web-ui/dist), not checked"
fi
echo "contents and control fields OK ($(wc -l <"$work/contents") entries)"

step "dpkg -i"
missing=()
for dep in $(echo "$depends" | tr ',' '\n' | sed 's/(.*//; s/|.*//; s/ //g'); do
  dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' || missing+=("$dep")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing missing dependencies: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    fail "cannot install ${missing[*]}"
fi
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
getent passwd chorus >/dev/null || fail "no user chorus after install"
[ "$(getent passwd chorus | cut -d: -f7)" = /usr/sbin/nologin ] || fail "chorus has a login shell"
for d in /var/lib/chorus /var/log/chorus; do
  [ "$(stat -c %U:%G "$d" 2>/dev/null)" = chorus:chorus ] || fail "$d missing or not owned by chorus"
done
[ -x /usr/bin/chorus-manager ] && [ -x /usr/bin/chorus-worker ] && [ -x /usr/bin/chorus ] ||
  fail "binaries not installed"
bash -n /usr/share/bash-completion/completions/chorus || fail "the bash completion does not parse"
pgrep -u chorus >/dev/null && fail "something runs as chorus right after install (service started?)"
if [ -d /run/systemd/system ]; then
  systemctl is-active --quiet chorus-manager && fail "the service was started by the install"
fi
echo "user, folders OK; the service was not started"
[ "$(stat -c %U:%G:%a /etc/chorus/manager.yaml)" = root:chorus:640 ] ||
  fail "/etc/chorus/manager.yaml is $(stat -c %U:%G:%a /etc/chorus/manager.yaml), want root:chorus:640"
credentials=/etc/chorus/credentials.env
[ "$(stat -c %U:%G:%a "$credentials" 2>/dev/null)" = root:root:600 ] ||
  fail "$credentials missing or not root:root 0600"
grep -qE "^CHORUS_DEFAULT_ADMIN_PASSWORD='[A-Za-z0-9]{20,}'\$" "$credentials" ||
  fail "$credentials does not hold a random admin password"
grep -q "$credentials" "$work/dpkg.log" || { cat "$work/dpkg.log"; fail "the install did not say where the admin password is"; }
admin_password="$(sed -E "s/^CHORUS_DEFAULT_ADMIN_PASSWORD='(.*)'\$/\1/" "$credentials")"
echo "a random admin password in $credentials (root only), and the install said where"

step "dpkg -i again (reinstall/upgrade keeps an edited conffile)"
echo "# edited by the operator" >>/etc/chorus/manager.yaml
dpkg -i "$deb" >"$work/dpkg2.log" 2>&1 || { cat "$work/dpkg2.log"; fail "second dpkg -i failed"; }
grep -q '^# edited by the operator$' /etc/chorus/manager.yaml || fail "the reinstall replaced the edited config"
grep -qF "'$admin_password'" "$credentials" || fail "the reinstall changed the admin password"
[ "$(stat -c %U "/var/lib/chorus")" = chorus ] || fail "/var/lib/chorus not owned by chorus after reinstall"
pgrep -u chorus >/dev/null && fail "something runs as chorus after the reinstall"
echo "edited config kept; service still not started"

step "systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  if systemd-analyze verify /lib/systemd/system/chorus-manager.service >"$work/verify.log" 2>&1; then
    echo "systemd-analyze verify: OK"
  elif grep -qi 'chorus-manager.service' "$work/verify.log"; then
    cat "$work/verify.log"; fail "systemd-analyze verify reports problems in the unit"
  else
    echo "SKIPPED systemd-analyze verify (cannot run here: $(head -1 "$work/verify.log"))"
  fi
else
  echo "SKIPPED systemd-analyze verify (systemd-analyze not installed)"
fi

step "the installed manager as user chorus"
config=/etc/chorus/manager.yaml
default_ports=$(grep -oE 'Port: [0-9]+' "$config" | awk '{print $2}')
if "${client[@]}" ports-free $default_ports; then
  echo "the default ports are free: using $config as installed"
else
  n=$(echo "$default_ports" | wc -w)
  read -r -a free <<<"$("${client[@]}" free-ports "$n")"
  config=/etc/chorus/manager-test.yaml
  cp /etc/chorus/manager.yaml "$config"
  i=0
  for p in $default_ports; do
    sed -i -E "s/(Port: )$p\b/\1${free[$i]}/" "$config"; i=$((i + 1))
  done
  chown root:chorus "$config"; chmod 0640 "$config"
  echo "default ports taken: $config with ports $(grep -oE 'Port: [0-9]+' "$config" | awk '{print $2}' | tr '\n' ' ')"
fi
ext_port=$(grep -E '^ExtHttpPort:' "$config" | awk '{print $2}')
# As the unit's EnvironmentFile= does (systemd reads it as root), then the manager's nodes.
(set -a && . "$credentials" && exec runuser -u chorus -- /usr/bin/chorus-manager --config "$config") \
  >"$work/manager.out" 2>&1 &
runuser_pid=$!
for _ in $(seq 1 50); do
  manager_pid=$(pgrep -u chorus -x chorus-manager | head -1)
  [ -n "$manager_pid" ] && break
  sleep 0.1
done
[ -n "$manager_pid" ] || { cat "$work/manager.out"; fail "chorus-manager did not start"; }
echo "chorus-manager pid $manager_pid (runuser $runuser_pid)"
show_logs() {
  cat "$work/manager.out"; tail -20 /var/log/chorus/chorus-manager.log 2>/dev/null
  tail -5 /var/log/chorus/*.out.log 2>/dev/null
}
"${client[@]}" wait-cluster 127.0.0.1 "$ext_port" 60 || { show_logs; fail "no cluster"; }
"${client[@]}" write-read 127.0.0.1 "$ext_port" "$admin_password" ||
  { show_logs; fail "write/read through the manager (as admin, with the generated password)"; }
/usr/bin/chorus --seed "127.0.0.1:$ext_port" status --json >"$work/status.json" ||
  { show_logs; fail "the installed chorus status failed"; }
grep -q '"state":"Leader"' "$work/status.json" || { cat "$work/status.json"; fail "chorus status shows no leader"; }
/usr/bin/chorus --seed "127.0.0.1:$ext_port" append pkg-test Checked '{"ok":true}' >/dev/null ||
  fail "the installed chorus could not append through the manager"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$admin_password" "http://127.0.0.1:$ext_port/api/auth")
[ "$code" = 200 ] || { show_logs; fail "admin with the generated password: /api/auth answered $code"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u admin:changeit "http://127.0.0.1:$ext_port/api/auth")
[ "$code" = 401 ] || fail "admin/changeit still works on a new install (/api/auth answered $code)"
echo "the nodes created admin with the generated password (changeit refused)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ext_port/health/live")
[ "$code" = 204 ] || fail "/health/live answered $code"
curl -sf "http://127.0.0.1:$ext_port/api/nodes" >"$work/nodes.json" || fail "GET /api/nodes"
grep -q '"dataFolder": *"/var/lib/chorus/n1"' "$work/nodes.json" || { cat "$work/nodes.json"; fail "n1's data not under /var/lib/chorus"; }
worker_exe=$(readlink "/proc/$(pgrep -u chorus -x chorus-worker | head -1)/exe")
[ "$worker_exe" = /usr/bin/chorus-worker ] || fail "nodes run $worker_exe, not /usr/bin/chorus-worker"
if [ "$web_built" = 1 ]; then
  index="$(curl -sf "http://127.0.0.1:$ext_port/")"
  grep -qi "<html" <<<"$index" || fail "the dashboard is not served from /usr/share/chorus/web"
fi
[ "$(stat -c %U /var/log/chorus/chorus-manager.log)" = chorus ] || fail "manager log not owned by chorus"
ls /var/lib/chorus/n1/ | grep -q . || fail "nothing in /var/lib/chorus/n1"
echo "nodes run /usr/bin/chorus-worker, data in /var/lib/chorus, logs in /var/log/chorus, health and dashboard answer"

step "stop the manager"
stop_manager
wait "$runuser_pid" 2>/dev/null
sleep 0.5
pgrep -u chorus >/dev/null && { pgrep -a -u chorus; fail "processes of chorus left after the manager stopped"; }
echo "manager and its nodes stopped"

step "dpkg --purge chorus"
dpkg --purge chorus >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
left=$(ls -d /etc/chorus /var/lib/chorus /var/log/chorus /usr/bin/chorus-* /usr/bin/chorus \
          /usr/share/chorus /usr/share/bash-completion/completions/chorus \
          /lib/systemd/system/chorus-manager.service 2>/dev/null)
[ -z "$left" ] || fail "left after purge: $left"
getent passwd chorus >/dev/null && fail "user chorus left after purge"
echo "purged: nothing left"

# ---- install.sh (no package)
step "install.sh --prefix (twice) and --uninstall --purge"
prefix="$work/prefix"
CHORUS_DEFAULT_ADMIN_PASSWORD=given-by-the-operator \
  "$here/install.sh" --prefix "$prefix" --build-dir "$build" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "install.sh failed"; }
grep -qx "CHORUS_DEFAULT_ADMIN_PASSWORD='given-by-the-operator'" /etc/chorus/credentials.env ||
  fail "install.sh did not store the given admin password"
[ "$(stat -c %U:%G:%a /etc/chorus/credentials.env)" = root:root:600 ] ||
  fail "install.sh: credentials.env is not root:root 0600"
"$here/install.sh" --prefix "$prefix" --build-dir "$build" >>"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "install.sh failed the second time (not idempotent)"; }
for f in "$prefix/bin/chorus-manager" "$prefix/bin/chorus-worker" "$prefix/bin/chorus" \
         "$prefix/share/bash-completion/completions/chorus" /etc/chorus/manager.yaml \
         /etc/systemd/system/chorus-manager.service; do
  [ -e "$f" ] || fail "install.sh did not install $f"
done
grep -q "^ExecStart=$prefix/bin/chorus-manager --config /etc/chorus/manager.yaml\$" \
  /etc/systemd/system/chorus-manager.service || fail "the unit does not name $prefix/bin"
[ "$web_built" = 0 ] || [ -f "$prefix/share/chorus/web/index.html" ] || fail "no dashboard in $prefix"
[ "$(stat -c %U /var/lib/chorus)" = chorus ] || fail "install.sh: /var/lib/chorus not owned by chorus"
"$here/install.sh" --prefix "$prefix" --uninstall --purge >>"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "install.sh --uninstall failed"; }
left=$(ls -d /etc/chorus /var/lib/chorus /var/log/chorus "$prefix"/bin/chorus-* "$prefix/bin/chorus" \
          "$prefix/share/chorus" "$prefix/share/bash-completion/completions/chorus" \
          /etc/systemd/system/chorus-manager.service 2>/dev/null)
[ -z "$left" ] || fail "left after install.sh --uninstall --purge: $left"
getent passwd chorus >/dev/null && fail "user chorus left after install.sh --uninstall --purge"
echo "install.sh: installed, reinstalled, uninstalled"

echo "PASSED"
