#!/usr/bin/env bash
# Checks the README's promise on a fresh machine: a minimal Debian bookworm (debootstrap --variant=minbase,
# with python3, ca-certificates and git only: no chromium, no CJK font, no poppler, no PostgreSQL, no venv
# module), as a container has it (package installs start no service: policy-rc.d), then the README's two
# commands, extracted from README.md and run there as written:
#   - the first with the network (it installs system packages and PyPI packages);
#   - the second in a network namespace of its own with only loopback, so that no PostgreSQL answers at the
#     default DSN (the host's server is not reachable) and the tests must start their own.
#
# Usage (as root): scripts/fresh-machine-check.sh [--worktree] [ROOTFS]
#   --worktree  copy the working tree as it is (tracked and untracked files) instead of cloning HEAD
#   ROOTFS      the chroot folder (default: a new one under /tmp; an existing one is reused, so a second run
#               skips debootstrap; the repository copy in it is always made anew)
# It needs debootstrap (installed with apt-get when missing), unshare and ip (util-linux, iproute2), and
# about 3 GB of disk. The host's name resolution, apt sources and CA certificates are copied in (the
# network settings of this machine, which any machine here has), nothing else.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
worktree=0
if [ "${1:-}" = "--worktree" ]; then
  worktree=1
  shift
fi
rootfs="${1:-$(mktemp -d /tmp/delivery-sdk-fresh.XXXXXX)}"
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

if [ ! -x "$rootfs/usr/bin/python3" ]; then
  echo "fresh-machine-check: debootstrap bookworm into $rootfs"
  debootstrap --variant=minbase --include=python3,ca-certificates,git bookworm "$rootfs" http://deb.debian.org/debian \
    >"$rootfs.debootstrap.log" 2>&1
fi
# As a container: services are not started by package installs.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
# This machine's network settings.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
[ -f /etc/hosts ] && cp /etc/hosts "$rootfs/etc/hosts"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  rm -f "$rootfs/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
fi
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev dev/pts dev/shm; do
  mkdir -p "$rootfs/$m"
  case "$m" in
    proc) mount -t proc proc "$rootfs/proc" ;;
    sys) mount -t sysfs sys "$rootfs/sys" ;;
    dev/shm) mount -t tmpfs shm "$rootfs/dev/shm" ;;
    *) mount --bind "/$m" "$rootfs/$m" ;;
  esac
  mounts+=("$rootfs/$m")
done

# What a fresh machine lacks: the check is void if any of it is there.
# shellcheck disable=SC2016
chroot "$rootfs" /bin/sh -c '
  for c in chromium pdftoppm pdffonts initdb pg_ctl; do command -v $c >/dev/null && { echo "already there: $c"; exit 1; }; done
  ls /usr/lib/postgresql/*/bin/initdb /usr/share/fonts/truetype/wqy/* >/dev/null 2>&1 && { echo "already there: postgresql or wqy"; exit 1; }
  python3 -c "import ensurepip" 2>/dev/null && echo "note: python3 has ensurepip already"
  exit 0' || {
  echo "fresh-machine-check: $rootfs is not fresh (a previous run installed packages); use a new ROOTFS" >&2
  exit 1
}

target="$rootfs/work/delivery-sdk"
rm -rf "$target"
mkdir -p "$target"
if [ "$worktree" -eq 1 ]; then
  (cd "$repo" && git ls-files --cached --others --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$target"
else
  git clone -q "$repo" "$target"
fi

# The README's two commands, exactly as the README shows them.
readarray -t commands < <(python3 - "$repo/README.md" <<'EOF'
import re, sys
blocks = re.findall(r"```bash\n(.*?)\n```", open(sys.argv[1], encoding="utf-8").read(), re.S)
print(blocks[0]); print(blocks[1])
EOF
)
install_command="${commands[0]}"
test_command="${commands[1]}"
env_vars=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 CI=true
  PIP_DEFAULT_TIMEOUT=180 PIP_DISABLE_PIP_VERSION_CHECK=1)

echo "fresh-machine-check: first command: $install_command"
start=$SECONDS
chroot "$rootfs" "${env_vars[@]}" /bin/bash -c "cd /work/delivery-sdk && $install_command"
echo "fresh-machine-check: first command passed in $((SECONDS - start)) s"

echo "fresh-machine-check: second command (loopback only, nothing at 127.0.0.1:5432): $test_command"
start=$SECONDS
unshare --net /bin/bash -c "ip link set lo up && chroot '$rootfs' ${env_vars[*]} /bin/bash -c 'cd /work/delivery-sdk && $test_command'"
echo "fresh-machine-check: second command passed in $((SECONDS - start)) s"
