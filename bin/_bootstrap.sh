# Sourced by bin/vidcolor, bin/test and bin/bench: make .venv on first use, reinstall when
# pyproject.toml changes, and do nothing (fast) otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDCOLOR_VENV:-$ROOT/.venv}"
STAMP="$VENV/.vidcolor-installed"

_vc_python() {
    # torch==2.14.1 is served for CPython 3.11 on these machines; prefer it, fall back to python3.
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1; then echo "$py"; return; fi
    done
    echo "bin/vidcolor: no python3 found on PATH" >&2
    exit 2
}

_vc_hash() { cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "vidcolor: creating $VENV (first run; installs torch, a few minutes)..." >&2
    "$(_vc_python)" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(_vc_hash)" ]; then
    echo "vidcolor: installing vidcolor and its dependencies into $VENV..." >&2
    # torch 2.14.1 from PyPI is a CUDA build: the venv takes ~6.6 GB. Say so before pip fills the disk.
    NEED_KB=$((7 * 1024 * 1024))
    FREE_KB="$(df -Pk "$VENV" 2>/dev/null | awk 'NR == 2 {print $4}')"
    if [ ! -f "$VENV/.vidcolor-installed" ] && [ -n "$FREE_KB" ] && [ "$FREE_KB" -lt "$NEED_KB" ]; then
        echo "vidcolor: only $((FREE_KB / 1024)) MiB free on the disk of $VENV; the first install needs about 7 GiB" >&2
        exit 1
    fi
    LOG="$VENV/install.log"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >"$LOG" 2>&1 || true
    if ! "$VENV/bin/python" -m pip install -e "$ROOT[dev]" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        echo "vidcolor: installation failed (full log: $LOG)" >&2
        exit 1
    fi
    _vc_hash > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
