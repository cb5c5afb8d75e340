"""Manifest, input discovery, output naming and segment planning: the small pure parts of batch."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from vidcolor.pipelines.batch import find_inputs, output_names
from vidcolor.pipelines.manifest import (
    FINGERPRINT_BYTES,
    BatchManifest,
    Entry,
    atomic_write_json,
    fingerprint,
    settings_hash,
)
from vidcolor.pipelines.segments import segment_frames_for
from vidcolor.pipelines.split import plan_split

from vidcolor.errors import InputError


def test_fingerprint_sees_both_ends_and_the_size(tmp_path):
    data = bytearray(b"x" * (3 * FINGERPRINT_BYTES))
    f = tmp_path / "a.bin"
    f.write_bytes(data)
    first = fingerprint(f)
    assert first.startswith("sha256-ends:") and fingerprint(f) == first
    data[-1:] = b"y"  # the tail changed
    f.write_bytes(data)
    assert fingerprint(f) != first
    tail = fingerprint(f)
    data[FINGERPRINT_BYTES + 10] = ord("z")  # the middle is not read: same fingerprint (size and ends equal)
    f.write_bytes(data)
    assert fingerprint(f) == tail
    f.write_bytes(data + b"!")
    assert fingerprint(f) != tail


def test_settings_hash_is_stable_and_order_free():
    a = settings_hash({"style": "noir", "crf": 18, "stages": [{"type": "grade"}]})
    assert a == settings_hash({"stages": [{"type": "grade"}], "crf": 18, "style": "noir"})
    assert a != settings_hash({"style": "noir", "crf": 19, "stages": [{"type": "grade"}]})


def test_manifest_round_trip_and_garbage(tmp_path):
    m = BatchManifest(tmp_path / "m.json", "/in", {"style": "noir"})
    m.files["a.mp4"] = Entry("a.mp4", 10, 20, "fp", "h", status="done", frames=12)
    m.save()
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left
    back = BatchManifest.load(tmp_path / "m.json")
    assert back.files["a.mp4"] == m.files["a.mp4"] and back.counts() == {"pending": 0, "done": 1, "failed": 0}
    (tmp_path / "m.json").write_text('{"format": "vidcolor-batch/1", "files": {"x": {"bad": 1}}')
    assert BatchManifest.load(tmp_path / "m.json").files == {}  # torn or foreign: start afresh (safe)
    assert BatchManifest.load(tmp_path / "missing.json").files == {}


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_find_inputs_patterns_recursion_hidden_and_exclude(tmp_path):
    for rel in ("a.MP4", "b.mov", "c.txt", ".hidden.mp4", "sub/d.mkv", ".cache/e.mp4", "out/f.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"0")
    rel = lambda ps: [p.relative_to(tmp_path).as_posix() for p in ps]
    assert rel(find_inputs(tmp_path, "*.mp4,*.mov", recursive=False)) == ["a.MP4", "b.mov"]
    assert rel(find_inputs(tmp_path, "*.mp4, *.mkv", recursive=True, exclude=(tmp_path / "out").resolve())) == [
        "a.MP4", "sub/d.mkv"]
    with pytest.raises(InputError, match="no pattern"):
        find_inputs(tmp_path, " , ", recursive=False)


def test_output_names_mirror_and_avoid_collisions():
    names = output_names(["a.mp4", "s/b.webm", "s/c.avi", "s/c.webm", "s/c.mkv"])
    assert names["a.mp4"] == "a.mp4" and names["s/b.webm"] == "s/b.mkv"
    # c.avi and c.webm would both become c.mkv, which c.mkv also is: the converted ones keep their name
    assert names["s/c.avi"] == "s/c.avi.mkv" and names["s/c.webm"] == "s/c.webm.mkv" and names["s/c.mkv"] == "s/c.mkv"
    assert len(set(names.values())) == len(names)


class _Meta:
    def __init__(self, frames, rate=24):
        self.frame_count, self.frame_rate = frames, Fraction(rate)


def test_segment_plans():
    assert segment_frames_for(_Meta(100), chunk_size=8, seconds=0.5) == 16  # 12 frames rounded up to chunks
    assert plan_split(_Meta(48), 16, jobs=99) == [(0, 16), (16, 32), (32, None)]
    assert plan_split(_Meta(50), 16, jobs=2) == [(0, 32), (32, None)]
    assert plan_split(_Meta(10), 16, jobs=4) == [(0, None)]
    assert plan_split(_Meta(None), 16, jobs=4) == [(0, None)]  # unknown length: one job reads to the end
