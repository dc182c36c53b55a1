#!/usr/bin/env bash
# Real-host test of the GIMP 3 plug-in: GIMP runs the plug-in against the real engine.
#
#   tests/hosts/gimp_host_test.sh [--gui] [--shots docs/img]
#
# Provisions GIMP 3 (Debian 13 packages, or a cached Debian 13 chroot on Debian 12; see
# tests/hosts/gimp/provision.sh), starts the engine with a small model, runs every
# Filters > Sfumato procedure through the PDB in gimp-console-3.0 and checks the results
# (tests/hosts/gimp/harness.py, batch_checks.py). --gui adds the Xvfb run: undo check and
# screenshots. Exit 0 = passed, or SKIP printed with the reason when GIMP 3 cannot be
# provisioned here; exit 1 = a check failed or the test overran its time limit.
#
# Environment: SFUMATO_TEST_PYTHON (the engine's Python, default .venv/bin/python),
# SFUMATO_HOSTS_DIR (cache for the chroot, GIMP profile and tiny model; default .hosts/),
# SFUMATO_GIMP_TEST_TIMEOUT (seconds for the whole test, provisioning included; default 2700,
# so that a hang cannot eat a CI run). The test sets no niceness of its own: run it under
# `nice` on a shared machine.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${SFUMATO_TEST_PYTHON:-$repo/.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3)
export SFUMATO_HOSTS_DIR=${SFUMATO_HOSTS_DIR:-$repo/.hosts}
budget=${SFUMATO_GIMP_TEST_TIMEOUT:-2700}
t0=$(date +%s)
left() { echo $(( budget - ($(date +%s) - t0) )); }
say() { echo "[gimp-host] $*"; }
overran() {  # overran PHASE LOG: the time limit was hit; name the phase and its last log line
  local last
  last=$(grep -a 'stopped early during' "$2" 2>/dev/null | tail -n 1)
  [ -n "$last" ] || last=$(grep -a '^\[' "$2" 2>/dev/null | tail -n 1)
  echo "FAIL gimp host test: overran its ${budget} s limit (SFUMATO_GIMP_TEST_TIMEOUT) while $1${last:+; last step: $last}"
}

mkdir -p "$SFUMATO_HOSTS_DIR"
prov_log=$SFUMATO_HOSTS_DIR/gimp-provision.log  # kept from the last run that had work to do
prov_out=$(mktemp) prov_err=$(mktemp)
say "provisioning GIMP 3 (full log: $prov_log)"
# the provisioning steps show live; apt and debootstrap output goes to the log only.
# timeout (not --foreground) kills the whole process group, debootstrap and apt included.
timeout -k 30 "$(left)" "$here/gimp/provision.sh" </dev/null 2>&1 >"$prov_out" \
  | tee "$prov_err" | grep --line-buffered '^\[provision\]'
prc=${PIPESTATUS[0]}
prov=$(cat "$prov_out"); rm -f "$prov_out"
if [ -s "$prov_err" ]; then mv "$prov_err" "$prov_log"; else rm -f "$prov_err"; fi
t_prov=$(date +%s)
if [ $prc = 124 ] || [ $prc = 137 ]; then
  overran "provisioning GIMP 3 (after $((t_prov - t0)) s)" "$prov_log"
  "$here/gimp/chroot.sh" umount "$SFUMATO_HOSTS_DIR/gimp3-${SFUMATO_GIMP_SUITE:-trixie}"
  exit 1
fi
if [ $prc != 0 ]; then
  reason=$(grep -v '^\[provision\]' "$prov_log" | tail -n 1)
  echo "SKIP gimp host test: ${reason:-GIMP 3 could not be provisioned} (see tests/hosts/gimp/provision.sh, $prov_log)"
  exit 0
fi
mode=$(echo "$prov" | sed -n 's/^MODE=//p')
root=$(echo "$prov" | sed -n 's/^ROOT=//p')
say "GIMP 3 ready ($mode${root:+ at $root}) in $((t_prov - t0)) s"

need="import engine.server, numpy, PIL, zmq"
case " $* " in *" --gui "*) need="$need, skimage" ;; esac
if ! (cd "$repo" && "$py" -c "$need") 2>/dev/null; then
  echo "FAIL gimp host test: $py cannot run the harness ($need failed; run \`make install\` and install the test extras)"
  exit 1
fi

cleanup() { [ "$mode" = chroot ] && "$here/gimp/chroot.sh" umount "$root"; }
if [ "$mode" = chroot ]; then
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  # the repository at the same path inside, for the relay check (python -m engine.relay)
  "$here/gimp/chroot.sh" mount "$root" "$repo" || { echo "FAIL gimp host test: cannot mount into $root"; exit 1; }
fi

remaining=$(left)
if [ "$remaining" -lt 60 ]; then
  echo "FAIL gimp host test: only $remaining s of the ${budget} s limit (SFUMATO_GIMP_TEST_TIMEOUT) left for GIMP after provisioning"
  exit 1
fi
run_log=$(mktemp)
# harness.py turns SIGTERM into a clean stop (engine, GIMP, Xvfb); KILL 30 s later if it hangs
(cd "$repo" && timeout -k 30 "$remaining" "$py" "$here/gimp/harness.py" --root "$root" --hosts "$SFUMATO_HOSTS_DIR" "$@" </dev/null) \
  2>&1 | tee "$run_log"
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  overran "running GIMP (after $(( $(date +%s) - t_prov )) s of GIMP runs)" "$run_log"
  rc=1
fi
rm -f "$run_log"
say "total $(( $(date +%s) - t0 )) s (provisioning $((t_prov - t0)) s), exit $rc"
exit "$rc"
