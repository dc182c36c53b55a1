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
# provisioned here; exit 1 = a check failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${SFUMATO_TEST_PYTHON:-$repo/.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3)
t0=$(date +%s)

prov_err=$(mktemp)
if ! prov=$("$here/gimp/provision.sh" 2>"$prov_err"); then
  reason=$(grep -v '^\[provision\]' "$prov_err" | tail -n 1)
  echo "SKIP gimp host test: ${reason:-GIMP 3 could not be provisioned} (see tests/hosts/gimp/provision.sh)"
  rm -f "$prov_err"
  exit 0
fi
rm -f "$prov_err"
mode=$(echo "$prov" | sed -n 's/^MODE=//p')
root=$(echo "$prov" | sed -n 's/^ROOT=//p')
t_prov=$(date +%s)
echo "[gimp-host] GIMP 3 ready ($mode${root:+ at $root}) in $((t_prov - t0)) s"

if ! "$py" -c "import engine.server, numpy, PIL, zmq" 2>/dev/null; then
  echo "FAIL gimp host test: $py cannot import the engine (run \`make install\` first)"
  exit 1
fi

cleanup() { [ "$mode" = chroot ] && "$here/gimp/chroot.sh" umount "$root"; }
if [ "$mode" = chroot ]; then
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  # the repository at the same path inside, for the relay check (python -m engine.relay)
  "$here/gimp/chroot.sh" mount "$root" "$repo" || { echo "FAIL gimp host test: cannot mount into $root"; exit 1; }
fi

(cd "$repo" && nice -n 10 "$py" "$here/gimp/harness.py" --root "$root" --hosts "${SFUMATO_HOSTS_DIR:-$repo/.hosts}" "$@")
rc=$?
echo "[gimp-host] total $(( $(date +%s) - t0 )) s (provisioning $((t_prov - t0)) s), exit $rc"
exit $rc
