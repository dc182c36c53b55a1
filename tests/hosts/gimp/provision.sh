#!/usr/bin/env bash
# Provision GIMP 3 for the real-host test and print how to run it, or exit 3 with the reason.
#
# Debian 13 (or anything with gimp-console-3.0): use the system GIMP (installing the packages
# when root and apt-get are there). Debian 12: a Debian 13 chroot made with debootstrap,
# cached under $SFUMATO_HOSTS_DIR (default: .hosts/ in the repository, gitignored).
# SFUMATO_GIMP_SUITE=sid provisions GIMP 3.2 instead (a Debian sid chroot, on Debian 12 or 13).
# Prints, on success, two lines on stdout:  MODE=system|chroot  and  ROOT=<chroot or />.
# Progress lines on stderr start with [provision]; everything else there is apt/debootstrap.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
hosts=${SFUMATO_HOSTS_DIR:-$repo/.hosts}
suite=${SFUMATO_GIMP_SUITE:-trixie}  # trixie: GIMP 3.0; sid: GIMP 3.2
chroot_dir=$hosts/gimp3-$suite
packages="gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 python3-zmq python3-msgpack \
  xvfb xauth xdotool x11-apps imagemagick"

fail() { echo "$*" >&2; exit 3; }
log() { echo "[provision] $*" >&2; }

if [ "$suite" = trixie ] && command -v gimp-console-3.0 >/dev/null 2>&1; then
  echo "MODE=system"; echo "ROOT=/"; exit 0
fi

major=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
case "$major" in ''|*[!0-9]*) major=0 ;; esac   # "trixie/sid" style values
[ "$(id -u)" = 0 ] || fail "GIMP 3 is not installed and provisioning it needs root"
command -v apt-get >/dev/null 2>&1 || fail "GIMP 3 is not installed and this is not a Debian system"

if [ "$suite" = trixie ] && { [ "$major" -ge 13 ] || grep -qE 'trixie|forky' /etc/debian_version 2>/dev/null; }; then
  log "Debian $major: installing GIMP 3 from the distribution"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >&2; } \
    || fail "apt-get could not install GIMP 3"
  echo "MODE=system"; echo "ROOT=/"; exit 0
fi

[ "$major" = 12 ] || [ "$suite" != trixie ] || fail "Debian $major has no GIMP 3 and no recipe here (needs Debian 12 or 13)"

if ls "$chroot_dir"/usr/bin/gimp-console-3.* >/dev/null 2>&1 && [ -f "$chroot_dir/.sfumato-ready" ]; then
  echo "MODE=chroot"; echo "ROOT=$chroot_dir"; exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; } \
    || fail "cannot install debootstrap"
}
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

# a half-built chroot from an interrupted run: unmount anything left, then start over
"$here/chroot.sh" umount "$chroot_dir" || true
if [ -d "$chroot_dir" ]; then
  if grep -q " $chroot_dir/" /proc/mounts; then fail "$chroot_dir still has mounts; not deleting it"; fi
  rm -rf --one-file-system "$chroot_dir"
fi
mkdir -p "$hosts"
log "debootstrap $suite into $chroot_dir from $mirror"
# one retry: a download that breaks halfway fails the whole debootstrap
debootstrap --variant=minbase "$suite" "$chroot_dir" "$mirror" >&2 || {
  log "debootstrap failed; retrying once"
  "$here/chroot.sh" umount "$chroot_dir"
  if grep -q " $chroot_dir/" /proc/mounts; then fail "$chroot_dir still has mounts; not deleting it"; fi
  rm -rf --one-file-system "$chroot_dir"
  debootstrap --variant=minbase "$suite" "$chroot_dir" "$mirror" >&2
} || fail "debootstrap failed (mirror $mirror)"
log "debootstrap done"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$chroot_dir/usr/sbin/policy-rc.d"
chmod +x "$chroot_dir/usr/sbin/policy-rc.d"
# a throw-away test root: no fsync per file, no docs, man pages or translations (fewer files
# to unpack on a small CI machine; the test runs GIMP in the C locale)
printf 'force-unsafe-io\n' > "$chroot_dir/etc/dpkg/dpkg.cfg.d/sfumato-unsafe-io"
printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
  'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/gimp/3.0/help/*' \
  > "$chroot_dir/etc/dpkg/dpkg.cfg.d/sfumato-nodoc"
printf 'Acquire::Retries "5";\n' > "$chroot_dir/etc/apt/apt.conf.d/80sfumato-retries"
# a mirror that is a dated snapshot serves sid's short-lived Release files past their expiry
[ "$suite" = trixie ] || printf 'Acquire::Check-Valid-Until "false";\n' > "$chroot_dir/etc/apt/apt.conf.d/80sfumato-snapshot"
"$here/chroot.sh" mount "$chroot_dir"
trap '"$here/chroot.sh" umount "$chroot_dir"' EXIT
log "installing GIMP 3 in the chroot"
chroot "$chroot_dir" apt-get update -q >&2 || chroot "$chroot_dir" apt-get update -q >&2 \
  || fail "apt-get update failed in the chroot"
chroot "$chroot_dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  $packages >&2 || fail "apt-get install failed in the chroot"
chroot "$chroot_dir" apt-get clean
log "GIMP $(chroot "$chroot_dir" dpkg-query -W -f='${Version}' gimp) installed"
touch "$chroot_dir/.sfumato-ready"
echo "MODE=chroot"; echo "ROOT=$chroot_dir"
