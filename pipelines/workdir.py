"""The work folder of a resumable run: ``OUTPUT.vidcolor-work/`` beside the output.

Its manifest (``segments.json``) lists the finished segments: frame range, first pts, file, and
the state of every stage at the segment's end (``seg-NNNNN.state.pt``, tensors, loaded with
``weights_only=True``). A manifest written for another input or other settings is discarded, and
files it does not list (a ``.part`` left by a crash) are removed. The manifest is rewritten
atomically after every finished segment: it is the truth.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vidcolor.errors import ProcessingError
from vidcolor.io.containers import work_dir_path, writing_part
from vidcolor.settings import RunSettings
from vidcolor.stages.base import Stage

from .manifest import atomic_write_json, fingerprint, settings_hash
from .stream import stage_states

MANIFEST_NAME = "segments.json"
FORMAT = "vidcolor-segments/1"


def work_dir_for(output: str | os.PathLike) -> Path:
    """``film.mp4`` -> ``film.mp4.vidcolor-work``: the work folder beside the output (``WORK_SUFFIX``)."""
    return work_dir_path(output)


@dataclass
class Segment:
    """A finished segment: frames ``start`` .. ``start + frames - 1`` in ``file`` (relative to the
    work folder); ``first_pts`` is the source pts of its first frame; ``state`` the stage-state file."""

    index: int
    start: int
    frames: int
    first_pts: int
    file: str
    state: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.frames


class WorkFolder:
    """``OUTPUT.vidcolor-work/``: finished segments, their end states, and ``segments.json``."""

    def __init__(self, path: Path, job: dict[str, Any]) -> None:
        self.path = Path(path)
        self.job = job
        self.key = settings_hash(job)
        self.segments: list[Segment] = []
        self.resumed = False

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def open(self) -> WorkFolder:
        """Load what a previous run finished (when it was the same job) and remove everything else."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == self.key:
            for raw in data.get("segments", []):
                try:
                    seg = Segment(**raw)
                except TypeError:  # written by another version: redo from there
                    break
                # keep the unbroken run of segments from frame 0 whose files are all there
                expected_start = self.segments[-1].end if self.segments else 0
                if seg.start != expected_start or not (self.path / seg.file).is_file() or (
                        seg.state and not (self.path / seg.state).is_file()):
                    break
                self.segments.append(seg)
        self.resumed = bool(self.segments)
        keep = {MANIFEST_NAME} | {s.file for s in self.segments} | {s.state for s in self.segments if s.state}
        for f in self.path.iterdir():
            if f.name in keep:
                continue
            if f.is_dir():  # nothing of ours; never left behind by a crash
                shutil.rmtree(f)
            else:  # stale .part files, segments never recorded, another job's segments
                f.unlink(missing_ok=True)
        self.save()
        return self

    def clear(self) -> None:
        """Forget every segment (segment-parallel runs start from scratch)."""
        self.segments = []
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.manifest_path, {"format": FORMAT, "key": self.key, "job": self.job,
                                               "segments": [asdict(s) for s in self.segments]})

    @property
    def next_frame(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def add(self, seg: Segment) -> None:
        self.segments.append(seg)
        self.segments.sort(key=lambda s: s.start)
        self.save()

    def load_states(self) -> list[dict[str, Any]] | None:
        """The stages' state saved with the last finished segment (tensors only: ``weights_only``)."""
        last = self.segments[-1] if self.segments else None
        if last is None or last.state is None:
            return None
        path = self.path / last.state
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (zip, pickle and torch errors alike mean a damaged file)
            reason = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ProcessingError(f"{path}: unreadable saved state ({reason[:120]}); {self.restart_hint}") from None

    @property
    def restart_hint(self) -> str:
        return f"rerun with --fresh (or delete {self.path}) to start over"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def save_states(path: Path, stages: list[Stage]) -> None:
    """``torch.save`` of every stage's ``state_dict()`` (tensors), written atomically."""
    with writing_part(path) as part:
        torch.save(stage_states(stages), part)


def job_description(input_path: str | os.PathLike, settings: RunSettings, segment_frames: int,
                    mode: str) -> dict[str, Any]:
    """Identity of a resumable job: the input file as it is now, the settings and the segmentation."""
    st = Path(input_path).stat()
    return {"input": str(Path(input_path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "fingerprint": fingerprint(input_path, st.st_size), "settings": settings.signature(),
            "segment_frames": segment_frames, "mode": mode}
