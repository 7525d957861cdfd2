#!/usr/bin/env bash
# Installs a Chorus build on a machine without the Debian package, with the package's layout:
#   <prefix>/bin/chorus-manager, <prefix>/bin/chorus-worker, <prefix>/bin/chorus (the CLI, with
#   its bash completion in <prefix>/share/bash-completion), <prefix>/share/chorus/web (the
#   dashboard), <prefix>/share/doc/chorus, /etc/chorus/manager.yaml (only if absent),
#   /etc/systemd/system/chorus-manager.service (ExecStart in <prefix>/bin), the system user
#   chorus and /var/lib/chorus, /var/log/chorus owned by it. The service is not started.
# Idempotent: running it again replaces binaries, dashboard and unit, keeps config and data.
#
#   installer/install.sh [--prefix /usr/local] [--build-dir build/release]
#   installer/install.sh [--prefix /usr/local] --uninstall [--purge]
#     --uninstall   stops the service and removes binaries, dashboard, docs and unit;
#     --purge       also removes /etc/chorus, /var/lib/chorus, /var/log/chorus and the user.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
prefix=/usr/local
build="$repo/build/release"
uninstall=0
purge=0
config_dir=/etc/chorus
data_dir=/var/lib/chorus
log_dir=/var/log/chorus
unit=/etc/systemd/system/chorus-manager.service

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --build-dir) build="${2:?--build-dir needs a folder}"; shift 2 ;;
    --build-dir=*) build="${1#*=}"; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || die "--purge goes with --uninstall"
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a system user and folders under /etc and /var)"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix="${prefix%/}"

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if [ "$uninstall" = 1 ]; then
  if systemd_running; then
    systemctl stop chorus-manager.service >/dev/null 2>&1 || true
    systemctl disable chorus-manager.service >/dev/null 2>&1 || true
  fi
  rm -f "$prefix/bin/chorus-manager" "$prefix/bin/chorus-worker" "$prefix/bin/chorus" "$unit"
  rm -f "$prefix/share/bash-completion/completions/chorus"
  rm -rf "$prefix/share/chorus" "$prefix/share/doc/chorus"
  systemd_running && systemctl daemon-reload || true
  say "removed chorus from $prefix and $unit"
  if [ "$purge" = 1 ]; then
    rm -rf "$config_dir" "$data_dir" "$log_dir"
    if getent passwd chorus >/dev/null; then userdel chorus 2>/dev/null || true; fi
    if getent group chorus >/dev/null; then groupdel chorus 2>/dev/null || true; fi
    say "purged $config_dir, $data_dir, $log_dir and the user chorus"
  else
    say "kept $config_dir, $data_dir, $log_dir and the user chorus (--purge removes them)"
  fi
  exit 0
fi

manager_bin="$build/manager/chorus-manager"
worker_bin="$build/worker/chorus-worker"
cli_bin="$build/cli/chorus"
web_dist="$build/web-ui/dist"
[ -x "$worker_bin" ] || die "no $worker_bin: build first (./run.sh or cmake --build $build), or give --build-dir"
[ -x "$manager_bin" ] || die "no $manager_bin: build chorus-manager first, or give --build-dir"
[ -x "$cli_bin" ] || die "no $cli_bin: build the chorus target first, or give --build-dir"

# Copies to a temporary name, then renames: replacing a running binary is safe.
put() {  # put <mode> <source> <dest>
  install -D -m "$1" "$2" "$3.new.$$"
  mv -f "$3.new.$$" "$3"
}

# The user and folders first, so that nothing is ever created under the wrong owner.
if ! getent group chorus >/dev/null; then groupadd --system chorus; fi
if ! getent passwd chorus >/dev/null; then
  nologin="$(command -v nologin || echo /usr/sbin/nologin)"
  useradd --system --gid chorus --home-dir "$data_dir" --no-create-home --shell "$nologin" \
    --comment "Chorus event database" chorus
  say "created the system user chorus"
fi
for dir in "$data_dir" "$log_dir"; do
  if [ ! -d "$dir" ]; then
    install -d -m 0750 -o chorus -g chorus "$dir"
  fi
done

put 0755 "$worker_bin" "$prefix/bin/chorus-worker"
put 0755 "$manager_bin" "$prefix/bin/chorus-manager"
put 0755 "$cli_bin" "$prefix/bin/chorus"
put 0644 "$repo/cli/chorus.bash-completion" "$prefix/share/bash-completion/completions/chorus"
if command -v strip >/dev/null; then
  strip --strip-unneeded "$prefix/bin/chorus-worker" "$prefix/bin/chorus-manager" \
    "$prefix/bin/chorus" 2>/dev/null || true
fi
if [ -f "$web_dist/index.html" ]; then
  rm -rf "$prefix/share/chorus/web.new"
  mkdir -p "$prefix/share/chorus"
  cp -R "$web_dist" "$prefix/share/chorus/web.new"
  chmod -R u=rwX,go=rX "$prefix/share/chorus/web.new"
  rm -rf "$prefix/share/chorus/web"
  mv "$prefix/share/chorus/web.new" "$prefix/share/chorus/web"
else
  say "warning: no dashboard in $web_dist (npm missing at build time?); the manager serves none"
fi
for doc in operations.md configuration.md management-api.md cli.md; do
  [ -f "$repo/docs/$doc" ] && put 0644 "$repo/docs/$doc" "$prefix/share/doc/chorus/$doc"
done

install -d -m 0755 "$config_dir"
if [ ! -f "$config_dir/manager.yaml" ]; then
  install -m 0640 -o root -g chorus "$here/manager.yaml" "$config_dir/manager.yaml"
  say "installed the default $config_dir/manager.yaml"
else
  say "kept the existing $config_dir/manager.yaml"
fi

# The admin password of new databases, as the package's postinst does: given in
# CHORUS_DEFAULT_ADMIN_PASSWORD, kept if the file exists, else random; root-only (the unit's
# EnvironmentFile= is read by systemd as root).
credentials="$config_dir/credentials.env"
if [ ! -f "$credentials" ]; then
  password="${CHORUS_DEFAULT_ADMIN_PASSWORD:-}"
  case "$password" in
    *"'"*|*"
"*) say "CHORUS_DEFAULT_ADMIN_PASSWORD may not hold a quote or a line break: using a random one"
        password="" ;;
  esac
  if [ -z "$password" ]; then
    password="$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
  fi
  (umask 077 && printf "CHORUS_DEFAULT_ADMIN_PASSWORD='%s'\\n" "$password" >"$credentials")
  chown root:root "$credentials"
  chmod 0600 "$credentials"
  say "the admin password of new databases is in $credentials (readable by root only)"
else
  say "kept the existing $credentials"
fi

sed -e "s|@CHORUS_BIN_DIR@|$prefix/bin|g" -e "s|@CHORUS_CONFIG_FILE@|$config_dir/manager.yaml|g" \
    -e "s|@CHORUS_DOC_DIR@|$prefix/share/doc/chorus|g" \
    "$here/chorus-manager.service.in" >"$unit.new.$$"
chmod 0644 "$unit.new.$$"
mv -f "$unit.new.$$" "$unit"
if systemd_running; then systemctl daemon-reload; fi

say "installed chorus into $prefix; the service is not started."
say "edit $config_dir/manager.yaml, then: systemctl enable --now chorus-manager"
