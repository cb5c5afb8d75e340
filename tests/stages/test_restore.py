"""The restore stage (deflicker, dust, degrain): what it repairs, what it keeps, and that chunking,
segments, resume and cuts do not change its output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import decode_all, make_clip, packets, video_pts
from vidcolor.degrade import Degradation, defect_pixels, degrade
from vidcolor.errors import InputError
from vidcolor.metrics import psnr
from vidcolor.stages import build_stage
from vidcolor.stages.base import Chunk, StageContext
from vidcolor.stages.restore import Restore

H, W = 120, 160


def panned(n: int, seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    """(n, H, W, 3) uint8: a window moving 2 px right and 1 px down a frame over a textured image
    (smooth gradients, blobs and edges at several scales)."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + n + 8, width + 2 * n + 8
    noise = rng.random((big_h // 8 + 2, big_w // 8 + 2, 3)).astype(np.float32)
    import cv2

    img = cv2.resize(noise, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    img += 0.3 * cv2.resize(rng.random((big_h // 3, big_w // 3, 3)).astype(np.float32), (big_w, big_h))
    img = np.clip(0.15 + 0.6 * (img - img.min()) / (img.max() - img.min()), 0, 1)
    frames = [img[1 * i: 1 * i + height, 2 * i: 2 * i + width] for i in range(n)]
    return (np.stack(frames) * 255 + 0.5).astype(np.uint8)


def restore(frames: np.ndarray, chunk: int = 8, stage: Restore | None = None, start: int = 0,
            stop: int | None = None, **options) -> np.ndarray:
    """Frames ``start .. stop - 1`` through a restore stage, in chunks, with the frames after each
    chunk given as the run gives them (``Chunk.ahead``)."""
    stage = stage or Restore(**options)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    stop = len(frames) if stop is None else stop
    outs = []
    for i in range(start, stop, chunk):
        c = x[i:min(i + chunk, stop)]
        ahead = x[i + len(c): i + len(c) + stage.lookahead]
        outs.append(stage.process(Chunk(frames=c, index=i, source=c, ahead=ahead if len(ahead) else None)).frames)
    return torch.cat(outs).permute(0, 2, 3, 1).numpy()


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([psnr(x.astype(np.float32) / 255, y.astype(np.float32) / 255) for x, y in zip(a, b)]))


def test_restore_repairs_flicker_grain_and_specks():
    clean = panned(24)
    spec = Degradation(specks=6, scratches=1)
    bad, record = degrade(clean, spec, seed=3)
    out = restore(bad)
    assert out.shape == bad.shape and out.dtype == np.uint8
    assert mean_psnr(out, clean) > mean_psnr(bad, clean) + 3.0
    # flicker: the frame-to-frame change of mean brightness (the content barely changes its mean)
    def pumping(v):
        m = v.reshape(len(v), -1).mean(1)
        return np.abs(np.diff(np.log(m))).mean()
    assert pumping(out) < 0.4 * pumping(bad)
    # specks: a visible speck is removed when its error against the clean frame falls below 30 %
    visible = removed = 0
    for s in record["specks"]:
        f = s["frame"]  # the first and last frames too: they take the two frames after (before) them
        ys, xs = defect_pixels(s)
        e0 = np.abs(bad[f, ys, xs].astype(float) - clean[f, ys, xs]).mean() / 255
        e1 = np.abs(out[f, ys, xs].astype(float) - clean[f, ys, xs]).mean() / 255
        if e0 >= 0.1:
            visible += 1
            removed += e1 <= 0.3 * e0
    assert visible >= 40 and removed >= 0.8 * visible


def test_clean_footage_is_barely_touched():
    clean = panned(16)
    out = restore(clean)
    assert mean_psnr(out, clean) > 38.0


def test_output_does_not_depend_on_chunking_and_resumes_exactly():
    bad, _ = degrade(panned(20), Degradation(specks=4, scratches=1), seed=1)
    whole = restore(bad, chunk=20)
    for size in (1, 3, 8):
        assert np.array_equal(restore(bad, chunk=size), whole), size
    # the two pipeline steps in threads of their own give the same frames
    from vidcolor.pipelines.overlap import run_stages

    stage = Restore()
    assert [p.name for p in stage.phases()] == ["restore:motion", "restore:filters"]
    x = torch.from_numpy(bad).permute(0, 3, 1, 2)
    parts = [x[i:i + 4] for i in range(0, 20, 4)]
    chunks = [Chunk(frames=p, index=4 * k, source=p, ahead=x[4 * k + 4:4 * k + 4 + stage.lookahead] if k < 4 else None)
              for k, p in enumerate(parts)]
    piped = torch.cat([c.frames for c in run_stages([stage], chunks)]).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(piped, whole)
    first = Restore()
    restore(bad, chunk=4, stage=first, stop=12)
    state = first.state_dict()
    again = Restore()
    again.load_state_dict({k: v.clone() for k, v in state.items()})
    assert np.array_equal(restore(bad, chunk=4, stage=again, start=12), whole[12:])


def test_a_fade_is_kept_while_flicker_goes():
    base = panned(30).astype(np.float32)
    fade = np.exp(-0.02 * np.arange(30))  # a fade to black: 2 % darker every frame
    rng = np.random.default_rng(0)
    flicker = rng.uniform(0.92, 1.08, 30)
    clean = np.clip(base * fade[:, None, None, None], 0, 255).astype(np.uint8)
    bad = np.clip(base * (fade * flicker)[:, None, None, None], 0, 255).astype(np.uint8)
    out = restore(bad, dust=0, degrain=0)
    ratio = out.reshape(30, -1).mean(1) / clean.reshape(30, -1).mean(1)
    bad_ratio = bad.reshape(30, -1).mean(1) / clean.reshape(30, -1).mean(1)
    # away from the ends of the shot (where the line through the brightness is fitted on one side
    # only), the fade stays (no drift towards a constant brightness) and the pumping around it goes
    inner, bad_inner = np.log(ratio[5:25]), np.log(bad_ratio[5:25])
    assert abs(inner[-5:].mean() - inner[:5].mean()) < 0.015
    assert np.std(inner) < 0.35 * np.std(bad_inner)


def test_nothing_crosses_a_scene_cut():
    a, _ = degrade(panned(12, seed=1), Degradation(specks=3), seed=5)
    b, _ = degrade(panned(12, seed=2), Degradation(specks=3), seed=6)
    film = np.concatenate([a, b])
    stage = Restore()
    both = restore(film, chunk=5, stage=stage)
    assert stage.scene_cuts == [12]
    assert np.array_equal(both[12:], restore(b, chunk=5))
    assert np.array_equal(both[:12], restore(a, chunk=5))


def test_luma_channels_keep_the_chroma_and_take_grey_frames():
    bad, _ = degrade(panned(10), Degradation(specks=3), seed=2)
    out = restore(bad, channels="luma").astype(int)
    diff = out - bad.astype(int)
    inside = (bad > 8).all(-1) & (bad < 247).all(-1) & (out > 8).all(-1) & (out < 247).all(-1)
    spread = diff.max(-1) - diff.min(-1)  # the same change on R, G and B where nothing clips
    assert np.percentile(spread[inside], 99) <= 2 and np.abs(diff).mean() > 1
    stage = Restore(channels="luma")
    assert stage.accepts_grey and not Restore().accepts_grey
    grey = bad[..., :1].copy()
    g = restore(grey, channels="luma")
    assert g.shape == grey.shape


def test_the_single_filter_stages_and_bad_options():
    ctx = StageContext()
    assert build_stage({"type": "degrain"}, ctx).options.as_kwargs()["deflicker"] == 0.0
    dust = build_stage({"type": "dust", "dust": 0.5}, ctx)
    assert (dust.dust, dust.degrain, dust.deflicker, dust.lookahead) == (0.5, 0.0, 0.0, 2)
    assert build_stage({"type": "deflicker", "window": 7}, ctx).lookahead == 7
    with pytest.raises(InputError, match="window must be in"):
        build_stage({"type": "restore", "window": 40}, ctx)
    with pytest.raises(InputError, match="unknown key 'strength'"):
        build_stage({"type": "restore", "strength": 1}, ctx)
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(InputError, match="put it first"):
        Restore().process(Chunk(frames=x, index=0, source=x.clone()))


def test_cli_restore_keeps_length_timing_and_sound_and_segments_match(tmp_path):
    from vidcolor.pipelines.run import run
    from vidcolor.pipelines.segments import run_resumable
    from vidcolor.pipelines.split import run_split

    src = make_clip(tmp_path / "clip.mp4", frames=40, width=W, height=H)
    plain = run(src, tmp_path / "plain.mkv", "restore", codec="ffv1", resumable=False)
    assert plain.frames == 40
    run(src, tmp_path / "sepia.mkv", "sepia", codec="ffv1", resumable=False)
    assert video_pts(tmp_path / "plain.mkv") == video_pts(tmp_path / "sepia.mkv")  # timing as any style keeps it
    assert [b for _, b in packets(tmp_path / "plain.mkv", "audio")] == [b for _, b in packets(src, "audio")]
    want = decode_all(tmp_path / "plain.mkv")
    # chunks cut at segment boundaries, a resumable run's segments and a segment-parallel run with
    # warm-up: each frame still sees the frames after it, so the output is the plain run's
    res = run_resumable(src, tmp_path / "res.mkv", "restore", codec="ffv1", segment_frames=8)
    assert res.frames == 40 and np.array_equal(decode_all(tmp_path / "res.mkv"), want)
    par = run_split(src, tmp_path / "par.mkv", "restore", codec="ffv1", segment_frames=16)
    assert par.frames == 40 and np.array_equal(decode_all(tmp_path / "par.mkv"), want)


def test_cli_restore_noir_decodes_luma_only(tmp_path):
    from vidcolor.pipelines.run import run

    src = make_clip(tmp_path / "clip.mp4", frames=12, width=W, height=H)
    rep = run(src, tmp_path / "out.mkv", "restore-noir", codec="ffv1", resumable=False)
    out = decode_all(tmp_path / "out.mkv").astype(int)
    assert rep.frames == 12 and np.abs(out[..., 0] - out[..., 2]).max() <= 1  # grey


def test_regions_take_out_flicker_that_varies_across_the_frame():
    clean = panned(24).astype(np.float32)
    rng = np.random.default_rng(4)
    amp = rng.uniform(-0.12, 0.12, 24)
    ramp = 1 - np.linspace(0, 1, W)[None, None, :, None]  # pumping on the left, none on the right
    bad = np.clip(clean * (1 + amp[:, None, None, None] * ramp), 0, 255).astype(np.uint8)

    def pumping(out: np.ndarray) -> tuple[float, float]:  # log-ratio spread in the left and right quarters
        r = [np.log(out[:, :, s].reshape(24, -1).mean(1) / clean[:, :, s].reshape(24, -1).mean(1))[5:19]
             for s in (slice(0, W // 4), slice(3 * W // 4, W))]
        return float(np.std(r[0])), float(np.std(r[1]))

    left_bad, _ = pumping(bad)
    left_global, right_global = pumping(restore(bad, dust=0, degrain=0, regions=1))
    left_regions, right_regions = pumping(restore(bad, dust=0, degrain=0, regions=4))
    assert left_regions < 0.35 * left_bad and left_regions < 0.6 * left_global
    assert right_regions < 0.01 and right_regions < right_global  # the steady side is left steady
