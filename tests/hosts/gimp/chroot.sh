#!/usr/bin/env bash
# chroot.sh mount|umount ROOT [DIR...]: bind /proc /sys /dev /dev/pts (and each DIR at the same
# path) into ROOT, or undo every mount under ROOT, deepest first. Safe to repeat.
set -uo pipefail
action=$1 root=$(realpath -m "$2"); shift 2

is_mounted() { grep -q " $1 " /proc/mounts; }

case "$action" in
  mount)
    for d in proc sys dev dev/pts "$@"; do
      d=${d#/}
      mkdir -p "$root/$d"
      is_mounted "$root/$d" && continue
      case "$d" in
        proc) mount -t proc proc "$root/proc" ;;
        sys) mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys" ;;
        dev) mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" ;;
        dev/pts) is_mounted "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts" ;;
        *) mount --bind "/$d" "$root/$d" ;;
      esac || { echo "cannot mount $d into $root" >&2; exit 1; }
    done
    ;;
  umount)
    # every mount point under ROOT, longest path first
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || umount -f "$m" 2>/dev/null || echo "could not unmount $m" >&2
    done
    ;;
  *) echo "usage: $0 mount|umount ROOT [DIR...]" >&2; exit 2 ;;
esac
