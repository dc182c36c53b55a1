#!/usr/bin/env bash
# Real-host test of the Krita plug-in: real Krita (headless under Xvfb) drives the real docker
# against the real engine on loopback. It starts with no engine running: the docker starts one
# with the Python that `sfumato plugins install` recorded, and that engine must stop when Krita
# exits. Prints SKIP with the reason when Krita cannot be installed here; exits non-zero when a
# check fails.
#
#   tests/hosts/krita_host_test.sh [--debian13|--krita6] [--screenshot FILE [--photo]] [--keep] [--allow-missing-ops]
#
# --debian13 runs Krita 5.2 (Python 3.13) from a Debian 13 chroot built once under .hosts/ (on
# Debian 12, as root), instead of the system's Krita (Debian 12: 5.1.5 with Python 3.11).
# --krita6 runs Krita 6 (Qt6, PyQt6) from a Debian sid chroot with Debian experimental's Krita.
#
# Environment: SFUMATO_PY (the engine's Python, default .venv/bin/python), KRITA_TEST_MODELS
# (a models folder to use instead of a tiny model trained on the spot).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
START=$(date +%s)
PY=${SFUMATO_PY:-$ROOT/.venv/bin/python}
SCREENSHOT="" KEEP=0 ALLOW="" PHOTO="" DEBIAN13=0 KROOT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --screenshot) SCREENSHOT=$(realpath -m "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        --allow-missing-ops) ALLOW="--allow-missing-ops"; shift ;;
        --photo) PHOTO="--photo"; shift ;;
        --debian13) DEBIAN13=1; shift ;;
        --krita6) DEBIAN13=1; export SFUMATO_KRITA_SUITE=sid; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

skip() { echo "SKIP krita host test: $*"; exit 0; }
[ -x "$PY" ] || PY=$(command -v python3)
py() { PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$@"; }  # the engine's Python, never Krita's

# --- provision Krita + Xvfb ---------------------------------------------------------------
PKGS="krita python3-pyqt5 python3-sip xvfb xauth python3-zmq python3-msgpack imagemagick"
have_host() { command -v krita >/dev/null && command -v Xvfb >/dev/null \
    && /usr/bin/python3 -c "import PyQt5.QtCore" >/dev/null 2>&1 && command -v import >/dev/null; }
if [ "$DEBIAN13" = 1 ]; then
    have_host() { true; }  # Krita and Xvfb run inside the chroot
    out=$("$ROOT/tests/hosts/krita/provision_debian13.sh") || skip "no Debian 13 chroot for Krita 5.2 (see above)"
    KROOT=$(echo "$out" | sed -n 's/^ROOT=//p')
    KRITA_VERSION=$(chroot "$KROOT" dpkg-query -W -f='${Version}' krita)
fi
if [ -z "$KROOT" ] && ! have_host; then
    command -v apt-get >/dev/null || skip "Krita is not installed and apt-get is not available"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo -n true 2>/dev/null || skip "Krita is not installed and installing it needs root (no passwordless sudo)"
        SUDO="sudo -n"
    fi
    echo "installing $PKGS ..."
    $SUDO apt-get update -qq >/tmp/krita-apt.log 2>&1 || skip "apt-get update failed (offline?): $(tail -1 /tmp/krita-apt.log)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PKGS >>/tmp/krita-apt.log 2>&1 \
        || skip "apt-get could not install Krita: $(tail -1 /tmp/krita-apt.log)"
    have_host || skip "Krita installed but not usable (no PyQt5 for the system Python?)"
fi
[ -n "$KROOT" ] || KRITA_VERSION=$(dpkg-query -W -f='${Version}' krita 2>/dev/null || echo unknown)
echo "Krita package $KRITA_VERSION; provisioning took $(( $(date +%s) - START )) s"

# --- scratch profile, engine, inputs ------------------------------------------------------
WORK=$(mktemp -d /tmp/sfumato-krita.XXXXXX)
ENGINE_PID="" XVFB_PID=""
listener() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
cleanup() {
    [ -n "$ENGINE_PID" ] && kill "$ENGINE_PID" 2>/dev/null
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null
    if [ -n "$KROOT" ]; then
        "$ROOT/tests/hosts/gimp/chroot.sh" umount "$KROOT"
        grep -q " $KROOT$WORK " /proc/mounts || rmdir "$KROOT$WORK" 2>/dev/null
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
export HOME=$WORK/home
mkdir -p "$HOME/.config" "$HOME/.local/share/krita/pykrita"
free_port() { py -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
PORT=$(free_port)
DEAD_PORT=$(free_port)
ADDRESS="tcp://127.0.0.1:$PORT"
[ -z "$(listener "$PORT")" ] || { echo "FAIL: something already listens on $PORT"; exit 1; }

# install exactly as a user would: `sfumato plugins pack krita`, then Krita's own importer
# (Tools > Scripts > Import Python Plugin from File...), then enable in kritarc
IMPORTER=$KROOT/usr/share/krita/pykrita/plugin_importer/plugin_importer.py
[ -f "$IMPORTER" ] || { echo "FAIL: Krita's plugin importer not found at $IMPORTER"; exit 1; }
py -m engine.cli plugins pack krita -o "$WORK/sfumato-krita.zip" || { echo "FAIL: plugins pack krita"; exit 1; }
py "$ROOT/tests/hosts/krita/import_zip.py" "$IMPORTER" "$WORK/sfumato-krita.zip" "$HOME/.local/share/krita" \
    || { echo "FAIL: Krita's importer did not take the zip"; exit 1; }
cp "$ROOT/tests/hosts/krita/sfumato_hosttest.desktop" "$HOME/.local/share/krita/pykrita/"
cp -r "$ROOT/tests/hosts/krita/sfumato_hosttest" "$HOME/.local/share/krita/pykrita/"
printf '[python]\nenable_sfumato=true\nenable_sfumato_hosttest=true\n' > "$HOME/.config/kritarc"  # a fresh profile

MODELS_ARG=()
[ -n "${KRITA_TEST_MODELS:-}" ] && MODELS_ARG=(--models "$KRITA_TEST_MODELS")
env PYTHONPATH="$ROOT" "$PY" "$ROOT/tests/hosts/krita/prepare.py" "$WORK" --address "$ADDRESS" \
    --dead-address "tcp://192.0.2.1:$DEAD_PORT" --screenshot "${SCREENSHOT:+$WORK/shot.png}" $ALLOW $PHOTO "${MODELS_ARG[@]}" \
    || { echo "FAIL: preparing the test inputs"; exit 1; }
MODELS=${KRITA_TEST_MODELS:-$WORK/models}

# no engine runs: the docker starts it (its output goes to $TMPDIR/sfumato-engine-ADDRESS.log,
# here the work folder), with the models folder from SFUMATO_MODELS
ENGINE_LOG="$WORK/sfumato-engine-tcp-127-0-0-1-$PORT.log"
ENGINE_ENV=(TMPDIR="$WORK" SFUMATO_MODELS="$MODELS")

# --- Krita --------------------------------------------------------------------------------
K0=$(date +%s)
IN_ROOT=()
if [ -n "$KROOT" ]; then  # the work folder at the same path inside the chroot; same network
    # the work folder and the checkout at the same paths inside; the engine's Python lives outside the
    # chroot, so the plug-in is given a launcher that runs it in this shell's root (/proc/$$/root)
    "$ROOT/tests/hosts/gimp/chroot.sh" mount "$KROOT" "$WORK" "$ROOT" || { echo "FAIL: cannot mount into $KROOT"; exit 1; }
    printf '#!/bin/sh\nexec /usr/sbin/chroot /proc/%s/root %s "$@"\n' "$$" "$PY" > "$WORK/engine-python"
    chmod +x "$WORK/engine-python"
    ENGINE_ENV+=(SFUMATO_PYTHON="$WORK/engine-python")
    IN_ROOT=(chroot "$KROOT" env HOME="$HOME")
fi
# our own Xvfb: -displayfd lets the server pick a free display itself (xvfb-run -a only looks at
# lock files, which a chroot does not share, and sometimes raced with other X servers here)
"${IN_ROOT[@]}" Xvfb -displayfd 3 -screen 0 1440x900x24 -nolisten tcp 3>"$WORK/display" 2>"$WORK/xvfb.log" &
XVFB_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/display" ] && break; kill -0 $XVFB_PID 2>/dev/null || break; sleep 0.2; done
[ -s "$WORK/display" ] || { echo "FAIL: Xvfb did not start: $(tail -3 "$WORK/xvfb.log")"; exit 1; }
DISPLAY_NUM=$(head -1 "$WORK/display")
"${IN_ROOT[@]}" env DISPLAY=":$DISPLAY_NUM" SFUMATO_KRITA_TEST="$WORK/config.json" SFUMATO_ENGINE="$ADDRESS" \
    "${ENGINE_ENV[@]}" timeout 900 krita --nosplash >"$WORK/krita.log" 2>&1
KRC=$?
echo "Krita ran $(( $(date +%s) - K0 )) s (exit $KRC)"
echo "engine: $(grep -a 'ready on' "$ENGINE_LOG" 2>/dev/null || echo 'never ready')"
# the engine the docker started watches Krita's process (--stop-with) and stops within seconds
STOPPED=0
for _ in $(seq 1 40); do [ -z "$(listener "$PORT")" ] && { STOPPED=1; break; }; sleep 0.5; done
if [ "$STOPPED" = 1 ] && grep -q "has ended: stopping" "$ENGINE_LOG" 2>/dev/null; then
    echo "[krita-host-test] ok   the engine the docker started stopped when Krita exited"
else
    echo "[krita-host-test] FAIL the engine the docker started stopped when Krita exited"
    ENGINE_PID=$(listener "$PORT")
fi
grep "\[krita-host-test\]" "$WORK/krita.log" | sed 's/^/  /' | grep -v " ok  " || true
grep -iE "Traceback|Error" "$WORK/krita.log" | grep -v "krita.lib.resources" | head -20 || true

py "$ROOT/tests/hosts/krita/report.py" "$WORK"
RC=$?
[ "$STOPPED" = 1 ] || RC=1
if [ -n "$SCREENSHOT" ] && [ -f "$WORK/shot.png" ]; then
    mkdir -p "$(dirname "$SCREENSHOT")" && cp "$WORK/shot.png" "$SCREENSHOT" && echo "screenshot: $SCREENSHOT"
fi
[ $RC -ne 0 ] && { echo "--- krita.log (tail)"; tail -40 "$WORK/krita.log"; echo "--- engine log (tail)"; tail -20 "$ENGINE_LOG"; }
echo "krita host test took $(( $(date +%s) - START )) s in all"
exit $RC
