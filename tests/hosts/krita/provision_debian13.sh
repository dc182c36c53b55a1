#!/usr/bin/env bash
# Provision Krita 5.2 (Debian 13) for the Krita host test on a Debian 12 machine: a Debian 13
# chroot made with debootstrap, cached under $SFUMATO_HOSTS_DIR (default .hosts/, gitignored).
# SFUMATO_KRITA_SUITE=sid builds Krita 6 (Qt6, PyQt6) instead: a Debian sid chroot with Krita
# from experimental (the only suite that packages Krita 6 so far).
# Prints ROOT=<chroot> on success; exits 3 with the reason on stderr when it cannot.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
hosts=${SFUMATO_HOSTS_DIR:-$repo/.hosts}
suite=${SFUMATO_KRITA_SUITE:-trixie}  # trixie: Krita 5.2 (PyQt5); sid: Krita 6 (PyQt6) from experimental
root=$hosts/krita-$suite
mounts="$repo/tests/hosts/gimp/chroot.sh"  # bind-mount helper shared with the GIMP host test
packages="krita python3-pyqt5 python3-zmq python3-msgpack xvfb xauth imagemagick"
krita_from=""
if [ "$suite" = sid ]; then
  packages="krita python3-pyqt6 python3-zmq python3-msgpack xvfb xauth imagemagick"
  krita_from="-t experimental"
fi

fail() { echo "$*" >&2; exit 3; }
log() { echo "[provision krita, $suite] $*" >&2; }

if [ -x "$root/usr/bin/krita" ] && [ -f "$root/.sfumato-ready" ]; then
  echo "ROOT=$root"; exit 0
fi
[ "$(id -u)" = 0 ] || fail "building a Debian 13 chroot needs root"
command -v apt-get >/dev/null 2>&1 || fail "not a Debian system"
command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
  || fail "cannot install debootstrap"
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

"$mounts" umount "$root" || true
if [ -d "$root" ]; then
  grep -q " $root/" /proc/mounts && fail "$root still has mounts; not deleting it"
  rm -rf --one-file-system "$root"
fi
mkdir -p "$hosts"
log "debootstrap $suite into $root from $mirror"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2 || fail "debootstrap failed"
if [ "$suite" = sid ]; then
  echo "deb $mirror experimental main" > "$root/etc/apt/sources.list.d/experimental.list"
  # a mirror that is a dated snapshot serves sid's short-lived Release files past their expiry
  printf 'Acquire::Check-Valid-Until "false";\n' > "$root/etc/apt/apt.conf.d/80sfumato-snapshot"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
"$mounts" mount "$root"
trap '"$mounts" umount "$root"' EXIT
log "installing Krita in the chroot"
chroot "$root" apt-get update -q >&2 || fail "apt-get update failed in the chroot"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $krita_from $packages >&2 \
  || fail "apt-get install failed in the chroot"
chroot "$root" apt-get clean
touch "$root/.sfumato-ready"
echo "ROOT=$root"
