"""The batch manifest: one JSON file in the output folder that says, for every input, what was done.

A rerun reads it to skip inputs that are done with the same settings and unchanged content, and to
redo the rest. It is rewritten atomically (temporary file, fsync, ``os.replace``) after every state
change, so a crash or SIGKILL at any moment leaves either the old or the new version, never a torn
one. Only the batch's main process writes it; workers report back to it.

Layout (``vidcolor-batch.json``)::

    {"format": "vidcolor-batch/1", "input_dir": "/abs/in", "settings": {...}, "settings_hash": "...",
     "files": {"sub/a.mp4": {"output": "sub/a.mp4", "size": 123, "mtime_ns": 1700000000000000000,
                             "fingerprint": "sha256-ends:...", "settings_hash": "...",
                             "status": "done", "error": null, "frames": 24, "seconds": 1.3}}}

``status`` is ``pending`` (planned, or being processed when the batch stopped), ``done`` or
``failed`` (with ``error``, the one-line reason). Keys are input paths relative to the input folder,
with ``/`` separators; ``output`` is relative to the output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "vidcolor-batch/1"
MANIFEST_NAME = "vidcolor-batch.json"
STATUSES = ("pending", "done", "failed")
# Bytes read from each end of a file for its fingerprint: enough to tell re-encoded or replaced
# files apart (headers, first and last frames), cheap on thousands of reels on network storage.
FINGERPRINT_BYTES = 1 << 20


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old or the new file, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fingerprint(path: str | os.PathLike, size: int | None = None) -> str:
    """``sha256-ends:<hex>``: SHA-256 of the size and the first and last MiB of the file."""
    p = Path(path)
    size = p.stat().st_size if size is None else size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return "sha256-ends:" + h.hexdigest()


def settings_hash(settings: dict[str, Any]) -> str:
    """Short stable hash of the settings that change an output (style stages, codec, crf...)."""
    blob = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Entry:
    """One input file's record."""

    output: str
    size: int
    mtime_ns: int
    fingerprint: str
    settings_hash: str
    status: str = "pending"
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    def same_input(self, other: Entry) -> bool:
        """Same file content and settings: a done entry like this one need not be redone.
        The mtime counts too, so ``touch`` is a way to ask for a redo."""
        return (self.size, self.mtime_ns, self.fingerprint, self.settings_hash, self.output) == (
            other.size, other.mtime_ns, other.fingerprint, other.settings_hash, other.output)


class BatchManifest:
    """The manifest file of one output folder: ``load`` it, change ``files``, ``save`` after each change."""

    def __init__(self, path: Path, input_dir: str = "", settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.input_dir = input_dir
        self.settings = settings or {}
        self.files: dict[str, Entry] = {}

    @classmethod
    def load(cls, path: Path) -> BatchManifest:
        """Read ``path``; a missing, unreadable or foreign file gives an empty manifest (everything is
        redone, which is safe: outputs are replaced atomically)."""
        m = cls(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return m
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return m
        m.input_dir = str(data.get("input_dir", ""))
        m.settings = dict(data.get("settings") or {})
        for key, raw in (data.get("files") or {}).items():
            try:
                entry = Entry(**raw)
            except TypeError:
                continue
            if entry.status in STATUSES:
                m.files[key] = entry
        return m

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "input_dir": self.input_dir, "settings": self.settings,
                "settings_hash": settings_hash(self.settings) if self.settings else None,
                "files": {k: asdict(v) for k, v in sorted(self.files.items())}}

    def save(self) -> None:
        atomic_write_json(self.path, self.to_json())

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for e in self.files.values():
            out[e.status] += 1
        return out
