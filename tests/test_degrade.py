"""``vidcolor.degrade``: seeded, batch-independent film degradation whose record matches the pixels it
changed; ``docs/models/degrade.py`` writes clean and degraded clips losslessly with the source's timing."""

from __future__ import annotations

import importlib.util
import json
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import natural_frames
from vidcolor.degrade import Degradation, defect_mask, defect_pixels, degrade

REPO = Path(__file__).resolve().parents[1]
NONE = Degradation(flicker=0, grain=0, specks=0, scratches=0)


def grey_frames(n: int, value: int = 128, h: int = 96, w: int = 128) -> np.ndarray:
    return np.full((n, h, w, 3), value, np.uint8)


def test_same_seed_same_result_other_seed_other_result():
    f = natural_frames(4, 72, 96)
    a, ra = degrade(f, Degradation(), seed=7)
    b, rb = degrade(f, Degradation(), seed=7)
    c, rc = degrade(f, Degradation(), seed=8)
    assert np.array_equal(a, b) and ra == rb
    assert not np.array_equal(a, c) and ra["specks"] != rc["specks"]
    assert json.loads(json.dumps(ra)) == ra  # the record is plain JSON


def test_batching_does_not_change_anything():
    f = natural_frames(7, 64, 80)
    spec = Degradation(blur=0.8, jpeg=60)
    whole, rec = degrade(f, spec, seed=3)
    parts = [degrade(f[i:j], spec, seed=3, start=i) for i, j in ((0, 2), (2, 3), (3, 7))]
    assert np.array_equal(whole, np.concatenate([p[0] for p in parts]))
    for key in ("frames", "gains", "specks", "scratches"):
        assert rec[key] == [x for p in parts for x in p[1][key]]


def test_no_degradation_is_the_identity():
    f = natural_frames(3, 40, 56)
    out, rec = degrade(f, NONE, seed=0)
    assert np.array_equal(out, f) and rec["specks"] == rec["scratches"] == [] and rec["gains"] == [1.0] * 3


def test_flicker_gains_are_uniform_in_range_and_applied():
    f = grey_frames(300, 100, 16, 16)
    out, rec = degrade(f, Degradation(flicker=0.1, grain=0, specks=0, scratches=0), seed=1)
    gains = np.array(rec["gains"])
    measured = out.reshape(300, -1).mean(1) / 100
    assert np.abs(measured - gains).max() <= 0.006          # the frame is the gain times the clean frame
    assert gains.min() >= 0.9 and gains.max() <= 1.1
    assert gains.min() < 0.91 and gains.max() > 1.09          # the whole range is used
    assert abs(gains.mean() - 1) < 0.01 and abs(gains.std() - 0.2 / np.sqrt(12)) < 0.006  # uniform
    assert abs(np.corrcoef(gains[:-1], gains[1:])[0, 1]) < 0.15  # i.i.d. from frame to frame


def test_grain_sigma_and_independence():
    f = grey_frames(6, 128, 120, 160)
    out, _ = degrade(f, Degradation(flicker=0, grain=8 / 255, specks=0, scratches=0), seed=2)
    noise = out.astype(np.float64) - 128
    assert noise.std() == pytest.approx(8.0, rel=0.03) and abs(noise.mean()) < 0.1
    flat = noise.reshape(6, -1, 3)
    assert abs(np.corrcoef(flat[0, :, 0], flat[0, :, 1])[0, 1]) < 0.03   # per channel
    assert abs(np.corrcoef(flat[0].ravel(), flat[1].ravel())[0, 1]) < 0.03  # fresh every frame


def test_specks_and_scratches_are_exactly_the_changed_pixels():
    """Without grain or flicker, the pixels that changed are exactly the recorded ones, and every
    speck and scratch has the count, size and look of the spec."""
    n, h, w = 5, 120, 160
    f = grey_frames(n, 128, h, w)
    out, rec = degrade(f, Degradation(flicker=0, grain=0), seed=4)
    changed = (out != f).any(-1)
    for t in range(n):
        assert np.array_equal(changed[t], defect_mask(rec, t, h, w))
        specks = [s for s in rec["specks"] if s["frame"] == t]
        scratches = [s for s in rec["scratches"] if s["frame"] == t]
        assert len(specks) == 20 and len(scratches) == 2
        for s in specks:
            ys, xs = defect_pixels(s)
            assert 1 <= s["radius"] <= 4 and 1 <= len(ys) <= np.pi * (1.5 * s["radius"] + 1) ** 2
            assert (ys.max() - ys.min() <= 2 * 1.5 * s["radius"] + 1) and (s["y"], s["x"]) in zip(ys, xs)
            free = ~defect_mask(rec, t, h, w, kinds=("scratches",))[ys, xs]  # scratches are added on top
            diff = np.abs(out[t, ys[free], xs[free]].astype(int) - 128)
            assert diff.size == 0 or diff.min() >= 0.3 * 255 - 1  # dark (<= 0.2) or bright (>= 0.85)
            lo, hi = (0.02, 0.2) if s["kind"] == "dark" else (0.85, 1.0)
            assert lo <= s["value"] <= hi
        for s in scratches:
            ys, xs = defect_pixels(s)
            assert 0.4 * h - 1 <= s["length"] <= h and len(np.unique(ys)) == s["length"]
            assert xs.max() - xs.min() <= s["width"]            # 1-2 px wide, wandering by at most 1 px
            assert all(np.sum(ys == y) == s["width"] for y in np.unique(ys))
            assert 0.2 <= abs(s["delta"]) <= 0.4


def test_each_speck_is_on_top_of_the_grain_and_countable():
    """With the default spec each speck's own pixels that nothing painted over later hold its value."""
    n, h, w = 3, 96, 128
    f = grey_frames(n, 128, h, w)
    out, rec = degrade(f, Degradation(), seed=5)
    for t in range(n):
        later = np.zeros((h, w), bool)
        scr = defect_mask(rec, t, h, w, kinds=("scratches",))
        for s in reversed([s for s in rec["specks"] if s["frame"] == t]):
            own = np.zeros((h, w), bool)
            own[defect_pixels(s)] = True
            free = own & ~later & ~scr
            later |= own
            if free.any():
                px = out[t][free].astype(int)
                assert np.all(px == px[0, 0]) and abs(px[0, 0] - s["value"] * 255) <= 1  # flat: no grain


def test_blur_and_jpeg_change_the_frame():
    f = natural_frames(2, 64, 64)
    blurred, _ = degrade(f, Degradation(flicker=0, grain=0, specks=0, scratches=0, blur=2.0), seed=0)
    assert np.diff(blurred.astype(float), axis=2).std() < 0.6 * np.diff(f.astype(float), axis=2).std()
    jpeg, _ = degrade(f, Degradation(flicker=0, grain=0, specks=0, scratches=0, jpeg=10), seed=0)
    assert 0 < np.abs(jpeg.astype(int) - f).mean() < 20


@pytest.mark.parametrize("kwargs", [{"flicker": 1.0}, {"grain": -0.1}, {"specks": -1}, {"blur": -1}, {"jpeg": 101}])
def test_bad_specs_are_refused(kwargs):
    with pytest.raises(ValueError):
        Degradation(**kwargs)


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        degrade(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        degrade(np.zeros((8, 8, 3), np.uint8))


# -- the script ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("degrade_script", REPO / "docs" / "models" / "degrade.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def decode(path: Path) -> tuple[np.ndarray, list[float]]:
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in c.decode(video=0)]
    return np.stack([f for f, _ in frames]), [t for _, t in frames]


def test_lossless_writer_round_trips_rgb(script, tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 21, 34, 3), dtype=np.uint8)  # odd size, every value
    script.write_lossless(tmp_path / "x.mkv", frames, [0, 1001, 2002], Fraction(1, 30000), Fraction(30000, 1001))
    got, times = decode(tmp_path / "x.mkv")
    assert np.array_equal(got, frames) and times == pytest.approx([0, 0.0334, 0.0667], abs=0.001)
    from vidcolor.evaluate import read_chunks  # what vidcolor eval reads

    assert np.array_equal(np.concatenate(list(read_chunks(tmp_path / "x.mkv", 2))), frames)


def test_script_writes_clean_degraded_and_defects(script, tmp_path):
    from tests.conftest import make_clip

    src = make_clip(tmp_path / "clip.mp4", frames=12, width=160, height=96, rate=25, audio=False)
    out = tmp_path / "out"
    assert script.main(["--out", str(out), "--frames", "10", "--size", "80x60", "--seed", "1", str(src)]) == 0
    clean, t_clean = decode(out / "clip.clean.mkv")
    bad, t_bad = decode(out / "clip.degraded.mkv")
    rec = json.loads((out / "clip.defects.json").read_text())
    assert clean.shape == (10, 60, 80, 3) and t_clean == t_bad == pytest.approx([i / 25 for i in range(10)], abs=1e-3)
    with av.open(str(src)) as c:  # area-scaled to cover 80x60 (96 -> 60 rows: 100 columns), centre cropped
        import cv2

        first = cv2.resize(next(c.decode(video=0)).to_ndarray(format="rgb24"), (100, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(clean[0].astype(int) - first[:, 10:90]).max() <= 2  # the reader's colour matrix vs PyAV's
    expected, expected_rec = degrade(clean, Degradation(), seed=2**32 + zlib.crc32(b"clip"))
    assert np.array_equal(bad, expected)
    assert rec["specks"] == expected_rec["specks"] and rec["gains"] == expected_rec["gains"]
    assert rec["spec"] == Degradation().to_json() and rec["script_seed"] == 1 and len(rec["specks"]) == 200
    s = rec["specks"][0]
    assert (bad[0][defect_pixels(s)] != clean[0][defect_pixels(s)]).any()


def test_script_refuses_bad_arguments(script, tmp_path, capsys):
    for argv in (["--out", str(tmp_path), str(tmp_path / "none.mp4")], ["--out", str(tmp_path), "--size", "big"]):
        with pytest.raises(SystemExit) as exc:
            script.main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "--size must be WxH" in err and "Traceback" not in err
