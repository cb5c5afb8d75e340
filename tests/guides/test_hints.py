"""Colour hints: the hints file and its checks, rasterizing, the edge-aware spread."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.guides.hints import Hint, apply_hints, load_hints, rasterize, spread
from vidcolor.io.probe import VideoMeta
from vidcolor.metrics import ciede2000


def meta(width: int = 320, height: int = 240, frames: int | None = 500,
         rate: Fraction = Fraction(25)) -> VideoMeta:
    return VideoMeta(path="film.mp4", format="mp4", video_index=0, codec="h264", width=width, height=height,
                     display_width=width, display_height=height, rotation=0, frame_rate=rate,
                     time_base=Fraction(1, 12800), start_pts=0, duration=None, frame_count=frames,
                     frame_count_exact=True, vfr=False, pix_fmt="yuv420p", bit_depth=8,
                     sample_aspect_ratio=None,
                     color_space=None, color_range=None, color_primaries=None, color_trc=None)


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "hints.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_loads_the_three_kinds_with_time_as_frame(tmp_path: Path) -> None:
    p = write(tmp_path, {"hints": [
        {"frame": 120, "points": [[10, 20], [30.5, 40]], "color": "#c03020"},
        {"time": "00:00:03.040", "polygon": [[0, 0], [100, 0], [50, 80]], "color": [192, 48, 32]},
        {"frame": 7, "scribble": [[5, 5], [60, 70]], "width": 6, "color": "#248"},
        {"time": 4.8, "points": [[1, 1]], "color": "204080"},
    ]})
    hints = load_hints(p, meta())
    assert sorted(hints) == [7, 76, 120]  # 3.04 s * 25 = 76; 4.8 s -> 120
    assert [h.kind for h in hints[120]] == ["points", "points"]
    assert hints[120][0].coords == ((10.0, 20.0), (30.5, 40.0)) and hints[120][0].rgb == (192, 48, 32)
    assert hints[76][0].kind == "polygon" and hints[76][0].rgb == (192, 48, 32)
    assert hints[7][0].width == 6 and hints[7][0].rgb == (0x22, 0x44, 0x88)
    a, b = hints[120][0].ab
    lab = rgb_to_lab(torch.tensor([192, 48, 32]).float().view(3, 1, 1) / 255)
    assert a == pytest.approx(float(lab[1]), abs=1e-4) and b == pytest.approx(float(lab[2]), abs=1e-4)
    assert a > 40


def test_time_counts_from_the_frame_rate(tmp_path: Path) -> None:
    p = write(tmp_path, {"hints": [{"time": "01:23.040", "points": [[1, 1]], "color": "#ffffff"}]})
    assert list(load_hints(p, meta(frames=None, rate=Fraction(24000, 1001)))) == [round(83.04 * 24000 / 1001)]


GOOD = {"frame": 3, "points": [[10, 10]], "color": "#102030"}


@pytest.mark.parametrize("entry, words", [
    ({"frame": 3, "points": [[10, 10]]}, "has no 'color'"),
    ({**GOOD, "color": "#12345"}, "bad colour '#12345'"),
    ({**GOOD, "color": "red"}, "bad colour 'red'"),
    ({**GOOD, "color": [300, 0, 0]}, "bad colour [300, 0, 0]"),
    ({**GOOD, "points": [[320, 10]]}, "outside the frame of the 320x240 frame"),
    ({**GOOD, "points": [[10, -1]]}, "outside the frame"),
    ({**GOOD, "points": [[10]]}, "bad point [10]"),
    ({**GOOD, "points": []}, "at least 1"),
    ({**GOOD, "frame": 500}, "frame 500 is beyond the film's 500 frames"),
    ({**GOOD, "frame": -2}, "bad frame -2"),
    ({"time": "1:00:00", "points": [[1, 1]], "color": "#fff"}, "frame 90000 is beyond"),
    ({"time": "soon", "points": [[1, 1]], "color": "#fff"}, "bad time 'soon'"),
    ({"frame": 1, "time": 0.5, "points": [[1, 1]], "color": "#fff"}, "exactly one of 'frame' and 'time'"),
    ({"points": [[1, 1]], "color": "#fff"}, "exactly one of 'frame' and 'time'"),
    ({"frame": 1, "polygon": [[1, 1], [5, 5]], "color": "#fff"}, "at least 3 [x, y] points"),
    ({"frame": 1, "points": [[1, 1]], "polygon": [[1, 1], [5, 5], [1, 5]], "color": "#fff"},
     "exactly one of"),
    ({"frame": 1, "scribble": [[1, 1], [5, 5]], "width": 0, "color": "#fff"}, "bad width 0"),
    ({**GOOD, "width": 3}, "'width' is for scribbles only"),
    ({**GOOD, "colour": "#fff"}, "unknown key 'colour'"),
    ([1, 2], "must be an object"),
])
def test_each_bad_entry_is_one_line_naming_file_and_entry(tmp_path: Path, entry, words: str) -> None:
    p = write(tmp_path, {"hints": [GOOD, entry]})
    with pytest.raises(InputError) as e:
        load_hints(p, meta())
    msg = str(e.value)
    assert msg.startswith(f"hints file {p}, entry 2: ") and words in msg and "\n" not in msg


@pytest.mark.parametrize("text, words", [
    (None, "not found"),
    ("{\"hints\": [", "not valid JSON"),
    ("[]", "expected an object"),
    ("{\"hint\": []}", "expected an object"),
])
def test_bad_files(tmp_path: Path, text: str | None, words: str) -> None:
    p = tmp_path / "hints.json" if text is None else write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_hints(p, meta())
    assert str(e.value).startswith(f"hints file {p}") and words in str(e.value) and "\n" not in str(e.value)


def test_time_needs_the_film(tmp_path: Path) -> None:
    p = write(tmp_path, {"hints": [{"time": 1.0, "points": [[1, 1]], "color": "#fff"}]})
    with pytest.raises(InputError, match="entry 1: 'time' needs the film's frame rate"):
        load_hints(p, None)
    unchecked = load_hints(write(tmp_path, {"hints": [{**GOOD, "points": [[5000, 10]]}]}), None)
    assert unchecked[3][0].coords[0][0] == 5000


def hint(kind: str, coords, rgb=(200, 40, 30), width: float = 4.0) -> Hint:
    return Hint(frame=0, kind=kind, coords=tuple(tuple(map(float, c)) for c in coords), rgb=rgb, width=width)


def test_point_lands_on_the_scaled_pixel() -> None:
    h = hint("points", [(100, 50), (399, 199)])
    ab, mask = rasterize([h], 100, 200, 200, 400)
    assert mask.shape == (1, 100, 200) and ab.shape == (2, 100, 200)
    # pixel centres kept: (100 + 0.5) / 2 - 0.5 = 49.75 -> 50, (50 + 0.5) / 2 - 0.5 = 24.75 -> 25
    assert set(map(tuple, torch.nonzero(mask[0]).tolist())) == {(25, 50), (99, 199)}
    assert torch.allclose(ab[:, 25, 50], torch.tensor(h.ab), atol=1e-4)
    assert float(ab[:, mask[0] == 0].abs().max()) == 0


def test_polygon_is_filled() -> None:
    ab, mask = rasterize([hint("polygon", [(40, 40), (120, 40), (120, 120), (40, 120)])], 200, 200, 200, 200)
    assert bool((mask[0, 41:120, 41:120] == 1).all())
    assert float(mask.sum()) == pytest.approx(81 * 81, rel=0.03)
    assert float(mask[0, :38].sum() + mask[0, 123:].sum() + mask[0, :, :38].sum()) == 0
    _, half = rasterize([hint("polygon", [(40, 40), (120, 40), (120, 120), (40, 120)])], 100, 100, 200, 200)
    assert float(half.sum()) == pytest.approx(40 * 40, rel=0.1)


@pytest.mark.parametrize("size, expect", [(200, 6), (100, 3)])
def test_scribble_has_its_width_in_frame_pixels(size: int, expect: int) -> None:
    _, mask = rasterize([hint("scribble", [(20, 100), (180, 100)], width=6)], size, size, 200, 200)
    rows = mask[0, :, size // 2]
    assert expect - 1 <= int(rows.sum()) <= expect + 1
    assert int(mask[0].sum(0)[size // 4: 3 * size // 4].max()) <= expect + 1
    assert float(mask[0, :, : size // 10 - 4].sum()) == 0  # nothing beyond the ends (rounded caps)


def two_regions(h: int = 64, w: int = 96) -> torch.Tensor:
    L = torch.full((1, h, w), 30.0)
    L[..., w // 2:] = 70.0
    return L


def test_each_colour_stays_on_its_side_of_a_luminance_edge() -> None:
    L = two_regions()
    red, blue = hint("points", [(10, 32)], rgb=(200, 40, 30)), hint("points", [(85, 10)], rgb=(30, 60, 200))
    hab, mask = rasterize([red, blue], 64, 96, 64, 96)
    ab, conf = spread(L, hab, mask)
    for side, h in ((ab[:, :, :48], red), (ab[:, :, 48:], blue)):
        err = (side - torch.tensor(h.ab).view(2, 1, 1)).abs().max()
        assert float(err) < 1.0, float(err)  # the other colour differs by > 100 a*b* units
    assert float(conf[0, 32, 10]) > 0.9 and float(conf[0, 10, 85]) > 0.9
    # a single hint on one side alone: the other side gets next to nothing of it when fused with a prior
    hab, mask = rasterize([red], 64, 96, 64, 96)
    prior = torch.zeros(2, 64, 96)
    fused, conf = spread(L, hab, mask, prior)
    assert float(fused[:, :, 48:].abs().max()) < 0.1
    assert float(fused[:, :, :48].abs().mean()) > 1.0
    assert torch.allclose(fused[:, 32, 10], torch.tensor(red.ab), rtol=0.05)


def test_one_hint_colours_a_flat_image() -> None:
    L = torch.full((1, 48, 80), 55.0)
    h = hint("points", [(3, 40)], rgb=(40, 160, 60))
    ab, conf = spread(L, *rasterize([h], 48, 80, 48, 80))
    assert torch.allclose(ab, torch.tensor(h.ab).view(2, 1, 1).expand(2, 48, 80), atol=0.1)


def test_a_prior_with_no_hints_is_returned_unchanged() -> None:
    L = torch.rand(1, 40, 60) * 100
    prior = torch.randn(2, 40, 60) * 20
    ab, conf = spread(L, torch.zeros(2, 40, 60), torch.zeros(1, 40, 60), prior)
    assert torch.equal(ab, prior) and float(conf.abs().max()) == 0
    full, conf = apply_hints(torch.rand(1, 300, 400) * 100, [], prior_ab=torch.ones(2, 300, 400))
    assert torch.allclose(full, torch.ones(2, 300, 400), atol=1e-5) and float(conf.max()) == 0


def test_far_from_the_hints_the_prior_is_kept_and_confidence_is_low() -> None:
    L = torch.full((1, 64, 384), 50.0)
    prior = torch.zeros(2, 64, 384)
    h = hint("points", [(2, 32)], rgb=(200, 40, 30))
    ab, conf = spread(L, *rasterize([h], 64, 384, 64, 384), prior, reach=0.5)
    assert float(conf[0, 32, 2]) > 0.9 and float(conf[..., 300:].max()) < 0.05
    assert float(ab[:, :, 300:].abs().max()) < 0.25 * float(ab[:, 32, 2].abs().max())
    again, _ = spread(L, *rasterize([h], 64, 384, 64, 384), prior, reach=0.5)
    assert torch.equal(ab, again)  # deterministic


def test_twenty_truth_hints_improve_the_automatic_colours_of_a_real_photo(shared_data: Path) -> None:
    from PIL import Image

    from vidcolor.stages.colorize import Colorize

    img = Image.open(shared_data / "images" / "color_kodak24" / "kodim23.png").convert("RGB")
    rgb8 = np.asarray(img.resize((img.width // 2, img.height // 2), Image.LANCZOS)).copy()
    truth = torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255
    L = rgb_to_lab(truth)[0, :1]
    auto = Colorize(weights="colorize", render_size=160, temporal=0).colorize_L(L[None])[0].float()
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, rgb8.shape[0], 20), rng.integers(0, rgb8.shape[1], 20)
    hints = [hint("points", [(x, y)], rgb=tuple(int(v) for v in rgb8[y, x])) for x, y in zip(xs, ys)]
    guided, conf = apply_hints(L, hints, auto)
    err = lambda ab: ciede2000(lab_to_rgb_keep_lightness(L[None], ab[None]), truth)  # noqa: E731
    assert guided.shape == auto.shape and conf.shape == (1, *L.shape[-2:])
    assert err(guided) < 0.9 * err(auto), (err(guided), err(auto))
