"""Keyframe files: names, TOML maps, timecodes on CFR and VFR clips, reading images, and extracting
the first frame of every shot (and every N seconds) from a generated clip with a hard cut."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import encode_frames, make_clip, natural_frames
from vidcolor.errors import InputError
from vidcolor.guides.keyframes import (
    Keyframe,
    extract_keyframes,
    frame_name,
    load_keyframes,
    parse_name,
    read_keyframe,
    timecode_name,
)
from vidcolor.io.probe import probe
from vidcolor.io.reader import VideoReader


def cut_clip(path: Path, first: int = 30, second: int = 30, rate: int = 25, width: int = 160,
             height: int = 96) -> Path:
    """Two generated scenes one after the other: smooth gradients with a moving square, then a
    checkerboard with a moving green block. Frame ``first`` starts the second shot."""
    a = natural_frames(first, height, width, seed=0)
    yy, xx = np.mgrid[0:height, 0:width]
    board = ((xx // 16 + yy // 16) % 2 * 200 + 30).astype(np.uint8)
    b = np.repeat(np.stack([board] * 3, -1)[None], second, 0)
    for i in range(second):
        b[i, 10:40, 2 * i:2 * i + 30] = (20, 220, 60)
    return encode_frames(path, np.concatenate([a, b]), rate, codec="libx264", pix_fmt="yuv420p")


def colour_png(path: Path, seed: int = 0, size: tuple[int, int] = (24, 16)) -> Path:
    rng = np.random.default_rng(seed)
    assert cv2.imwrite(str(path), rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def meta25(tmp_path_factory):
    return probe(make_clip(tmp_path_factory.mktemp("c25") / "c.mp4", frames=50, rate=25, audio=False))


@pytest.fixture(scope="module")
def meta_ntsc(tmp_path_factory):
    return probe(make_clip(tmp_path_factory.mktemp("c24") / "c.mp4", frames=60, rate=Fraction(24000, 1001),
                           audio=False))


def test_names_parse() -> None:
    assert parse_name("000120") == 120 and parse_name("7") == 7 and parse_name("0001234567") == 1234567
    assert parse_name("00-01-23.040") == Fraction(83040, 1000)
    assert parse_name("01-00-05") == 3605 and parse_name("00-00-01.5") == Fraction(3, 2)
    for bad in ("shot12", "00-61-00", "00-00-75.000", "00:01:23", "12a", "", "00-01-23.0400"):
        assert parse_name(bad) is None, bad
    with pytest.raises(InputError, match="negative frame number -12"):
        parse_name("-12")


def test_name_round_trips() -> None:
    assert frame_name(120) == "000120" and frame_name(1234567) == "1234567"
    assert timecode_name(83.04) == "00-01-23.040" and timecode_name(3600 * 2 + 0.0004) == "02-00-00.000"
    for f in (0, 5, 999_999, 12_345_678):
        assert parse_name(frame_name(f)) == f
    for ms in (0, 40, 83_040, 3_599_999, 7_200_001):
        assert parse_name(timecode_name(ms / 1000)) == Fraction(ms, 1000)
    with pytest.raises(ValueError):
        timecode_name(-1)


@pytest.mark.parametrize("which", ["meta25", "meta_ntsc"])
def test_timecode_names_give_back_their_frames(which, tmp_path, request) -> None:
    """Every frame's timecode (to the millisecond) names that frame again, at 25 and 24000/1001 fps."""
    meta = request.getfixturevalue(which)
    assert meta.frame_count and not meta.vfr
    for f in range(meta.frame_count):
        colour_png(tmp_path / f"{timecode_name(f / meta.frame_rate)}.png", seed=f)
    kfs = load_keyframes(tmp_path, meta)
    assert [k.frame for k in kfs] == list(range(meta.frame_count))
    assert all(k.path.name == f"{timecode_name(k.frame / meta.frame_rate)}.png" for k in kfs)


def test_timecode_is_the_nearest_frame(meta_ntsc, tmp_path) -> None:
    # frame 2 starts at 0.0834 s and frame 3 at 0.1251 s: 0.104 is nearer 2, 0.105 nearer 3
    colour_png(tmp_path / "00-00-00.104.png")
    colour_png(tmp_path / "00-00-01.105.png")  # 1.105 s * 23.976 = 26.49 -> 26
    assert [k.frame for k in load_keyframes(tmp_path, meta_ntsc)] == [2, 26]
    (tmp_path / "00-00-00.104.png").rename(tmp_path / "00-00-00.105.png")
    assert [k.frame for k in load_keyframes(tmp_path, meta_ntsc)][0] == 3


def test_vfr_timecodes_use_the_frame_timestamps(tmp_path) -> None:
    pts = [0, 1, 2, 10, 11, 30, 31, 32]  # ms: gaps make a constant-rate guess wrong
    meta = probe(make_clip(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 100),
                           audio=False))
    assert meta.vfr
    kf = tmp_path / "kf"
    kf.mkdir()
    colour_png(kf / "00-00-00.100.png")  # pts 10 = frame 3
    colour_png(kf / "00-00-00.290.png")  # nearest is pts 30 = frame 5
    assert [k.frame for k in load_keyframes(kf, meta)] == [3, 5]


def test_folder_with_plain_names_a_toml_and_ignored_files(meta25, tmp_path) -> None:
    colour_png(tmp_path / "000012.PNG")
    colour_png(tmp_path / "00-00-01.000.jpg")  # 1 s at 25 fps: frame 25
    colour_png(tmp_path / "shot-a.webp")
    colour_png(tmp_path / "contact-sheet.jpg")
    colour_png(tmp_path / ".hidden.png")
    (tmp_path / "notes.txt").write_text("sky: #88aaff")
    (tmp_path / "keyframes.toml").write_text('[keyframes]\n"shot-a.webp" = "00:00:01.600"\n')
    assert load_keyframes(tmp_path, meta25) == [Keyframe(12, tmp_path / "000012.PNG"),
                                                Keyframe(25, tmp_path / "00-00-01.000.jpg"),
                                                Keyframe(40, (tmp_path / "shot-a.webp").resolve())]


def test_toml_map_file(meta25, tmp_path) -> None:
    (tmp_path / "art").mkdir()
    colour_png(tmp_path / "art" / "b.png")
    colour_png(tmp_path / "a.tif")
    toml = tmp_path / "map.toml"
    toml.write_text('[keyframes]\n"art/b.png" = 30\n"a.tif" = "00:00:00.200"\n')
    kfs = load_keyframes(str(toml), meta25)
    assert [(k.frame, k.path.name) for k in kfs] == [(5, "a.tif"), (30, "b.png")]


@pytest.mark.parametrize("files, toml, message", [
    ({"shot12.png": 0}, None, r"shot12.png: not a keyframe name; expected frame numbers"),
    ({"-000012.png": 0}, None, r"negative frame number -000012"),
    ({"000012.png": 0, "00-00-00.480.png": 1}, None, r"are both keyframes of frame 12"),
    ({"000050.png": 0}, None, r"000050.png: frame 50 is beyond the end of the film \(frames 0 to 49\)"),
    ({"00-00-02.000.png": 0}, None, r"timecode 2.000 s \(frame 50\) is beyond the end"),
    ({"000001.png": None}, None, r"000001.png: not a readable image"),
    ({"a.png": 0}, '[keyframes]\n"a.png" = -3\n', r"'a.png': negative frame number -3"),
    ({"a.png": 0}, '[keyframes]\n"a.png" = "1:2:3"\n', r"expected a frame number or a timecode"),
    ({"a.png": 0}, '[keyframes]\n"a.png" = true\n', r"expected a frame number or a timecode"),
    ({}, '[keyframes]\n"gone.png" = 3\n', r"'gone.png': no such file"),
    ({"a.png": 0}, '[keyframes\n"a.png" = 3\n', r"keyframes.toml: not valid TOML"),
    ({"a.png": 0}, '"a.png" = 3\n', r"keyframes.toml: needs a \[keyframes\] table"),
])
def test_folder_errors_name_the_file(meta25, tmp_path, files, toml, message) -> None:
    for name, seed in files.items():
        if seed is None:
            (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n not really")
        else:
            colour_png(tmp_path / name, seed)
    if toml is not None:
        (tmp_path / "keyframes.toml").write_text(toml)
    with pytest.raises(InputError, match=message) as err:
        load_keyframes(tmp_path, meta25)
    assert "\n" not in str(err.value)


def test_missing_and_empty_sources(meta25, tmp_path) -> None:
    with pytest.raises(InputError, match="nope: no such keyframe folder or file"):
        load_keyframes(tmp_path / "nope", meta25)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no keyframe images in"):
        load_keyframes(tmp_path, meta25)
    with pytest.raises(InputError, match="must be a folder of images or a .toml file"):
        load_keyframes(tmp_path / "readme.txt", meta25)


def test_read_keyframe_formats(tmp_path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), rgb[..., ::-1])
    assert np.array_equal(read_keyframe(tmp_path / "c.png"), rgb)
    grey = rgb[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert np.array_equal(read_keyframe(tmp_path / "g.png"), np.stack([grey] * 3, -1))
    bgra = np.concatenate([rgb[..., ::-1], np.full((9, 13, 1), 7, np.uint8)], -1)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert np.array_equal(read_keyframe(tmp_path / "a.png"), rgb)
    cv2.imwrite(str(tmp_path / "d.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    out = read_keyframe(tmp_path / "d.png")
    assert out.dtype == np.uint8 and np.array_equal(out, rgb)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(InputError, match="bad.jpg: not a readable image"):
        read_keyframe(tmp_path / "bad.jpg")


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    path = cut_clip(tmp_path_factory.mktemp("cut") / "cut.mp4")
    return path, probe(path)


def test_extract_finds_the_cut_and_writes_the_decoded_luma(cut, tmp_path) -> None:
    path, meta = cut
    out = tmp_path / "kf"
    written = extract_keyframes(path, meta, out)
    assert [p.name for p in written] == ["000000.png", "000030.png", "contact-sheet.jpg"]
    with VideoReader(path, grey=True) as r:
        luma = np.concatenate([c.frames for c in r.chunks(16)])[..., 0]
    for p in written[:2]:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2 and np.array_equal(img, luma[int(p.stem)])
    sheet = cv2.imread(str(out / "contact-sheet.jpg"))
    assert sheet is not None and sheet.shape[1] == 6 * 244 + 4 and sheet.shape[0] > 100
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written]  # no .part left
    # the folder goes straight back in as keyframes
    assert [k.frame for k in load_keyframes(out, meta)] == [0, 30]


def test_extract_every_seconds_keeps_away_from_cuts(cut, tmp_path) -> None:
    path, meta = cut
    written = extract_keyframes(path, meta, tmp_path / "kf", every=0.5, contact_sheet=False)
    # shot 1: 0.52 s (frame 13); frame 25 (1.0 s) is 0.2 s before the cut at 1.2 s: dropped.
    # shot 2 from frame 30 (1.2 s): 1.72 s (43), 2.2 s (55); the film's end is no cut.
    assert [int(p.stem) for p in written] == [0, 13, 30, 43, 55]


def test_extract_never_overwrites_without_force(cut, tmp_path) -> None:
    path, meta = cut
    out = tmp_path / "kf"
    out.mkdir()
    painted = colour_png(out / "000030.png", seed=3)
    before = painted.read_bytes()
    with pytest.raises(InputError, match=r"already holds keyframe images \(000030.png\).*--force"):
        extract_keyframes(path, meta, out)
    assert painted.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["000030.png"]
    colour_png(out / "000007.png", seed=4)  # not a frame this run writes: kept with --force too
    kept = (out / "000007.png").read_bytes()
    extract_keyframes(path, meta, out, overwrite=True, contact_sheet=False)
    assert painted.read_bytes() != before and (out / "000007.png").read_bytes() == kept


def test_failed_extract_leaves_the_folder_as_it_was(cut, tmp_path, monkeypatch) -> None:
    """A decode error after the first shot was found: no image, no .part, no new folder."""
    import vidcolor.guides.shots as shots
    from vidcolor.errors import VideoError

    path, meta = cut
    real = shots.scan_lightness

    def failing(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise VideoError(f"{path}: corrupt data at frame {item[0]}")
            yield item

    monkeypatch.setattr(shots, "scan_lightness", failing)
    with pytest.raises(VideoError, match="corrupt data at frame 32"):
        extract_keyframes(path, meta, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("x")
    with pytest.raises(VideoError):
        extract_keyframes(path, meta, old, every=0.2)
    assert [p.name for p in old.iterdir()] == ["notes.txt"]


def test_real_clip(shared_data, tmp_path) -> None:
    """A real phone clip stored rotated: the keyframe is the upright picture, and goes back in."""
    src = shared_data / "videos/edge_cases/decord_video_90.mov"
    if not src.is_file():
        pytest.skip(f"{src} not in the shared data")
    meta = probe(src)
    written = extract_keyframes(src, meta, tmp_path / "kf")
    assert [p.name for p in written] == ["000000.png", "contact-sheet.jpg"]
    img = cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (meta.display_height, meta.display_width) and img.std() > 5
    assert load_keyframes(tmp_path / "kf", meta) == [Keyframe(0, written[0])]
