# Sourced by bin/vidcolor, bin/test and bin/bench: make .venv on first use, install the locked
# dependencies (requirements-runtime.txt, or requirements-dev.txt when VC_LOCK=dev) and vidcolor
# itself, reinstall when pyproject.toml or that lock changes, and do nothing (fast) otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDCOLOR_VENV:-$ROOT/.venv}"
STAMP="$VENV/.vidcolor-installed"
VC_LOCK="${VC_LOCK:-runtime}"

_vc_python() {
    # torch==2.14.1 is served for CPython 3.11 on these machines; prefer it, fall back to python3.
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1; then echo "$py"; return; fi
    done
    echo "bin/vidcolor: no python3 found on PATH" >&2
    exit 2
}

# The stamp is "<lock> <hash of pyproject.toml and that lock>".
_vc_stamp() { echo "$1 $(cat "$ROOT/pyproject.toml" "$ROOT/requirements-$1.txt" | sha256sum | cut -c1-16)"; }

# A venv that has the dev lock has the runtime one too (same pins): never step it down to runtime.
if [ "$VC_LOCK" = runtime ] && [ -f "$STAMP" ] && [ "$(cut -d' ' -f1 "$STAMP")" = dev ]; then
    VC_LOCK=dev
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "vidcolor: creating $VENV (first run; installs torch, a few minutes)..." >&2
    "$(_vc_python)" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(_vc_stamp "$VC_LOCK")" ]; then
    echo "vidcolor: installing vidcolor and its locked dependencies (requirements-$VC_LOCK.txt) into $VENV..." >&2
    # torch 2.14.1 from PyPI is a CUDA build: the venv takes ~6.5 GB. Say so before pip fills the disk.
    NEED_KB=$((7 * 1024 * 1024))
    FREE_KB="$(df -Pk "$VENV" 2>/dev/null | awk 'NR == 2 {print $4}')"
    if [ ! -f "$STAMP" ] && [ -n "$FREE_KB" ] && [ "$FREE_KB" -lt "$NEED_KB" ]; then
        echo "vidcolor: only $((FREE_KB / 1024)) MiB free on the disk of $VENV; the first install needs about 7 GiB" >&2
        exit 1
    fi
    LOG="$VENV/install.log"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >"$LOG" 2>&1 || true
    # The lock has every dependency with its hashes; vidcolor itself goes in without resolving any.
    if ! { "$VENV/bin/python" -m pip install -r "$ROOT/requirements-$VC_LOCK.txt" \
            && "$VENV/bin/python" -m pip install --no-deps -e "$ROOT"; } >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        echo "vidcolor: installation failed (full log: $LOG)" >&2
        exit 1
    fi
    _vc_stamp "$VC_LOCK" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
