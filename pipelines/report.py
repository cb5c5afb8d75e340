"""``RunReport``: what a run, resumable or not, returns (and ``--json`` prints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunReport:
    input: str
    output: str
    style: str
    frames: int
    seconds: float
    fps: float
    encoder: str
    codec: str
    device: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audio_packets_copied: int = 0
    resumed_at: int = 0  # a resumed run: the frame it continued from (the frames before were done earlier)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
