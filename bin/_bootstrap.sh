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
