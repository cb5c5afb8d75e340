"""Region masks (``vidcolor.masks``) and the ``Masked`` wrapper stage: weights, feather, frame ranges,
mask images and videos, bad mask files, the blend's exactness outside the mask, chunk invariance,
state, pipeline steps and masks in style files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import encode_frames, natural_frames
from vidcolor.errors import InputError
from vidcolor.masks import load_mask, mask_fingerprint
from vidcolor.pipelines.frames import to_uint8
from vidcolor.pipelines.overlap import run_stages
from vidcolor.stages import Chunk, Stage, StageContext, build_stage
from vidcolor.stages.masked import Masked
from vidcolor.styles import load_style_file

H, W = 48, 80


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def chunks_of(frames: torch.Tensor, size: int) -> list[Chunk]:
    return [Chunk(frames=frames[i:i + size], index=i, pts=list(range(i, min(i + size, len(frames)))),
                  source=frames[i:i + size]) for i in range(0, len(frames), size)]


def test_rect_with_feather_is_zero_outside_one_inside_and_ramps_inward(tmp_path):
    m = load_mask(write(tmp_path / "m.toml", "feather = 4\n[[region]]\nrect = [10, 8, 40, 30]\n"))
    w = m.weights(0, H, W)
    region = np.zeros((H, W), bool)
    region[8:38, 10:50] = True
    assert w.dtype == np.float32 and w.shape == (H, W)
    assert (w[~region] == 0).all()  # exactly 0 outside the rectangle: the feather lies inside
    assert (w[region] > 0).all()
    assert (w[8 + 5:38 - 5, 10 + 5:50 - 5] == 1).all()  # beyond the feather: 1
    row = w[23, 10:20]  # from the left edge inward: rising to 1 over the feather
    assert np.all(np.diff(row) >= 0) and 0 < row[0] < 0.3 and row[5] == 1


def test_fractions_frames_polygon_and_invert(tmp_path):
    px = load_mask(write(tmp_path / "px.toml", "[[region]]\nframes = [2, 3]\nrect = [20, 12, 40, 24]\n"))
    fr = load_mask(write(tmp_path / "fr.toml",
                         'units = "fraction"\n[[region]]\nframes = [2, 3]\nrect = [0.25, 0.25, 0.5, 0.5]\n'))
    assert not px.weights(1, H, W).any() and not px.weights(4, H, W).any()  # outside its frame range
    assert np.array_equal(px.weights(2, H, W), fr.weights(3, H, W)) and px.weights(2, H, W).sum() == 40 * 24
    inv = load_mask(write(tmp_path / "inv.toml", "invert = true\n[[region]]\nrect = [20, 12, 40, 24]\n"))
    assert np.array_equal(inv.weights(0, H, W), 1 - px.weights(2, H, W))
    tri = load_mask(write(tmp_path / "tri.toml", "[[region]]\npolygon = [[0, 0], [79, 0], [0, 47]]\n"))
    w = tri.weights(0, H, W)
    assert w[2, 2] == 1 and w[45, 77] == 0 and 0.4 < w.mean() < 0.6


def test_png_grey_and_alpha_resized_to_the_frame(tmp_path):
    grey = np.zeros((24, 40), np.uint8)
    grey[:, 20:] = 255
    grey[:, 10:20] = 128
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    rgba = np.zeros((24, 40, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: the alpha channel decides
    rgba[..., 3] = grey
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    for name in ("g.png", "a.png"):
        w = load_mask(tmp_path / name).weights(5, H, W)  # upscaled 2x to the frame
        assert w.shape == (H, W)
        assert (w[:, :18] == 0).all() and (w[:, 42:] == 1).all() and abs(w[0, 30] - 128 / 255) < 1e-6


def test_mask_video_frame_by_frame_holding_its_last_frame(tmp_path):
    frames = np.zeros((4, 24, 40, 3), np.uint8)
    for i in range(4):
        frames[i, :, i * 10:(i + 1) * 10] = 255  # frame i: a white band at columns 10i..10i+9
    m = load_mask(encode_frames(tmp_path / "m.mkv", frames))
    try:
        def band(index: int) -> set[int]:
            return set(np.nonzero(m.weights(index, 24, 40)[12] == 1)[0] // 10)
        assert [band(i) for i in (0, 1, 2, 3)] == [{0}, {1}, {2}, {3}]
        assert band(9) == {3}  # after its end: the last frame
        assert band(1) == {1}  # an earlier frame again: reopened
    finally:
        m.close()


@pytest.mark.parametrize("name,text,message", [
    ("k.toml", "feathr = 3\n[[region]]\nrect = [0, 0, 4, 4]\n", "unknown key 'feathr'"),
    ("r.toml", "[[region]]\nrectangle = [0, 0, 4, 4]\n", "[[region]] 1: unknown key 'rectangle'"),
    ("n.toml", "[[region]]\nframes = [0, 3]\n", "needs one of the keys 'rect' or 'polygon'"),
    ("e.toml", "feather = 2\n", "the mask is empty"),
    ("f.toml", "[[region]]\nframes = [5, 1]\nrect = [0, 0, 4, 4]\n", "frames must be [first, last]"),
    ("b.toml", "[[region\n", "invalid TOML"),
    ("c.png", "not a png", "cannot read the mask image"),
    ("c.mp4", "not a video", "c.mp4"),
])
def test_bad_mask_files_are_one_line_input_errors(tmp_path, name, text, message):
    with pytest.raises(InputError) as exc:
        load_mask(write(tmp_path / name, text))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_and_empty_masks(tmp_path):
    with pytest.raises(InputError, match="mask file not found"):
        load_mask(tmp_path / "nope.png")
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="the mask is empty"):
        load_mask(tmp_path / "black.png")


def grade(preset: str = "sepia", **kw) -> Stage:
    return build_stage({"type": "grade", "preset": preset, **kw}, StageContext())


@pytest.mark.parametrize("uint8", [True, False])
def test_masked_grade_keeps_the_input_outside_exactly(tmp_path, uint8):
    mask = load_mask(write(tmp_path / "m.toml", "feather = 6\n[[region]]\nrect = [16, 8, 40, 30]\n"))
    raw = torch.from_numpy(natural_frames(6, H, W)).permute(0, 3, 1, 2)
    x = raw.contiguous() if uint8 else raw.float() / 255
    stage = Masked([grade()], mask)
    assert stage.accepts_uint8 and not stage.accepts_grey  # never luma: outside keeps the input's chroma
    out = to_uint8(stage.process(Chunk(frames=x, index=0, source=x)).frames)
    styled = to_uint8(grade().process(Chunk(frames=x, index=0, source=x)).frames)
    w = mask.weights(0, H, W)
    inp = raw.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(out[:, w == 0], inp[:, w == 0])  # bit-identical outside
    assert np.array_equal(out[:, w == 1], styled[:, w == 1])  # the grade inside
    assert (out[:, w == 1] != inp[:, w == 1]).any()
    soft = (w > 0) & (w < 1)
    between = np.abs(out[:, soft].astype(int) - inp[:, soft]) <= np.abs(styled[:, soft].astype(int) - inp[:, soft]) + 1
    assert between.all()


class TwoSteps(Stage):
    """A stateful stage in two pipeline steps (like Colorize): adds the running frame count to the red
    channel, so order, state and the steps all show in the output."""

    name = "twosteps"

    def __init__(self) -> None:
        self.count = 0

    def process(self, chunk: Chunk) -> Chunk:
        return self.second(self.first(chunk))

    def first(self, chunk: Chunk) -> Chunk:
        out = chunk.frames.float().clone()
        for k in range(len(chunk)):
            self.count += 1
            out[k, 0] = (out[k, 0] + self.count * 10).clamp(0, 255)
        return chunk.with_frames(out.to(torch.uint8))

    def second(self, chunk: Chunk) -> Chunk:
        return chunk.with_frames(255 - chunk.frames)

    def phases(self) -> list[Stage]:
        parent = self

        class Step(Stage):
            def __init__(self, fn) -> None:
                self.fn = fn

            def process(self, chunk: Chunk) -> Chunk:
                return self.fn(chunk)

        return [Step(parent.first), Step(parent.second)]

    def state_dict(self) -> dict:
        return {"count": torch.tensor(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])


def test_steps_chunking_and_state_go_through(tmp_path):
    mask_file = write(tmp_path / "m.toml", "feather = 3\n[[region]]\nframes = [0, 4]\nrect = [0, 0, 40, 48]\n"
                                          "[[region]]\nframes = [5, 9]\nrect = [40, 0, 40, 48]\n")
    x = torch.from_numpy(natural_frames(10, H, W)).permute(0, 3, 1, 2).contiguous()
    whole = Masked([TwoSteps()], load_mask(mask_file)).process(Chunk(frames=x, index=0, source=x)).frames
    for size in (1, 3, 4):  # pipeline steps in threads, a grade after them: same frames
        stage = Masked([TwoSteps(), grade("none")], load_mask(mask_file))
        assert len(stage.phases()) == 3
        got = torch.cat([c.frames for c in run_stages([stage], chunks_of(x, size))])
        ref = Masked([TwoSteps(), grade("none")], load_mask(mask_file)).process(Chunk(frames=x, index=0, source=x))
        assert torch.equal(got, ref.frames)
        assert torch.equal(got[:5, :, :, 44:], x[:5, :, :, 44:]) and torch.equal(got[5:, :, :, :36], x[5:, :, :, :36])
    # a resumed run: state after 6 frames, loaded into a new wrapper, gives the same last 4 frames
    first = Masked([TwoSteps()], load_mask(mask_file))
    first.process(Chunk(frames=x[:6], index=0, source=x[:6]))
    assert first.state_dict() == {"count": torch.tensor(6)}  # a single stage's own state, as it is
    resumed = Masked([TwoSteps()], load_mask(mask_file))
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(resumed.process(Chunk(frames=x[6:], index=6, source=x[6:])).frames, whole[6:])
    pair = Masked([TwoSteps(), TwoSteps()], load_mask(mask_file))
    pair.process(Chunk(frames=x[:3], index=0, source=x[:3]))
    assert [int(s["count"]) for s in pair.state_dict()["stages"]] == [3, 3]


def test_a_stage_mask_in_a_style_file_is_relative_to_it(tmp_path):
    (tmp_path / "looks").mkdir()
    write(tmp_path / "looks/m.toml", "[[region]]\nrect = [0, 0, 40, 48]\n")
    style = load_style_file(write(tmp_path / "looks/half.toml", '[[stages]]\ntype = "grade"\npreset = "sepia"\n'
                                                                'mask = "m.toml"\n'))
    [stage] = style.build(StageContext())
    assert isinstance(stage, Masked) and stage.describe()["mask"]["file"] == str(tmp_path / "looks/m.toml")
    assert style.mask_files() == [str(tmp_path / "looks/m.toml")]
    assert mask_fingerprint(tmp_path / "looks/m.toml").startswith("sha256-ends:")
    [whole] = load_style_file(tmp_path / "looks/half.toml").build(
        StageContext(overrides={"mask": str(tmp_path / "looks/m.toml")}))
    assert isinstance(whole, Masked) and isinstance(whole.stages[0], Masked)
    bad = load_style_file(write(tmp_path / "looks/bad.toml", '[[stages]]\ntype = "grade"\nmask = "nope.png"\n'))
    with pytest.raises(InputError, match=r"\[\[stages\]\] 1 \(grade\): mask file not found"):
        bad.check()


def test_a_stage_that_resizes_cannot_be_masked(tmp_path):
    class Double(Stage):
        name = "double"

        def output_size(self, height: int, width: int) -> tuple[int, int]:
            return 2 * height, 2 * width

    mask = load_mask(write(tmp_path / "m.toml", "[[region]]\nrect = [0, 0, 4, 4]\n"))
    with pytest.raises(InputError, match="stage 'double' resizes"):
        Masked([grade(), Double()], mask)
