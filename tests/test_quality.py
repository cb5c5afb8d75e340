"""``vidcolor.quality`` and ``vidcolor eval``'s quality scores: content, style and a*b* histogram
distances, the Fréchet distance to a reference set, frame sampling, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import encode_frames, natural_frames
from vidcolor.cli import main
from vidcolor.errors import InputError
from vidcolor.quality import FrameSampler, Quality, ab_histogram, hellinger, read_reference_set, to_tensor

SIZE = 128  # working size of the unit tests (the CLI uses 256)


def blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    return frames.copy() if sigma == 0 else np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def write_pngs(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.ascontiguousarray(f[..., ::-1]))
    return folder


def score(output: np.ndarray, source: np.ndarray, **options):
    q = Quality(size=options.pop("size", SIZE), **options)
    for i, (o, s) in enumerate(zip(output, source)):
        q.offer(i, {"output": o, "source": s})
    return q.scores()


def painting_like(h: int = 160, w: int = 200) -> np.ndarray:
    """Bold swirls of saturated blue and yellow: nothing like a photo's statistics."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = np.sin(xx / 6 + 3 * np.sin(yy / 11)) * np.cos(yy / 5 - 2 * np.cos(xx / 9))
    blue, yellow = np.array([30, 60, 200], np.float32), np.array([240, 210, 40], np.float32)
    t = (phase[..., None] + 1) / 2
    return (blue * t + yellow * (1 - t)).astype(np.uint8)


def test_frame_sampler_spreads_over_the_whole_clip():
    s = FrameSampler(count=16, size=32)
    frame = np.zeros((48, 64, 3), np.uint8)
    for i in range(300):
        s.offer(i, {"output": frame, "source": frame})
    idx, frames = s.pick()
    assert len(idx) == 16 and idx == sorted(idx) and idx[0] == 0 and idx[-1] >= 270
    assert max(np.diff(idx)) <= 2 * 300 / 16
    assert frames["output"].shape == (16, 3, 32, 43)
    short = FrameSampler(count=16, size=32)
    for i in range(5):
        short.offer(i, {"output": frame, "source": frame})
    assert short.pick()[0] == [0, 1, 2, 3, 4]


def test_content_distance_zero_for_identical_frames_and_grows_with_blur():
    frames = natural_frames(6, 96, 160)
    same = score(frames, frames)
    assert same.content_distance == 0.0 and same.per_frame["content_distance"] == [0.0] * 6
    assert same.style_distance is None and same.frechet_distance is None and same.realism is None
    d1, d3 = (score(blur(frames, s), frames).content_distance for s in (1.0, 3.0))
    assert 0 < d1 < d3


def test_style_distance_painting_to_itself_is_zero_and_a_photo_is_far(tmp_path):
    painting = painting_like()
    path = tmp_path / "painting.png"
    cv2.imwrite(str(path), painting[..., ::-1])
    photos = natural_frames(4, 96, 160)
    itself = score(np.stack([painting] * 2), photos[:2], style_image=path)
    assert itself.style_distance == pytest.approx(0.0, abs=1e-6 * itself.style_distance_source)
    assert itself.style_ratio < 1e-6
    assert itself.ab_hist_distance == pytest.approx(0.0, abs=1e-6)
    assert itself.ab_hist_distance_source > 0.5
    photo = score(photos, photos, style_image=path)
    assert photo.style_distance > 0 and photo.style_ratio == pytest.approx(1.0)
    assert photo.colorfulness_style > 50


def test_style_distance_of_real_paintings(shared_data, tmp_path):
    styles = shared_data / "images" / "styles_public_domain"
    night = cv2.imread(str(styles / "starry_night.jpg"))[..., ::-1]
    photo = cv2.imread(str(shared_data / "images" / "color_kodak24" / "kodim03.png"))[..., ::-1]
    frames = {"painting": cv2.resize(night, (320, 240)), "photo": cv2.resize(photo, (320, 240))}
    s = score(np.stack([frames["painting"]]), np.stack([frames["photo"]]), style_image=styles / "starry_night.jpg",
              size=256)
    # the painting resized to another aspect ratio is still its own style; a photo is far from it
    assert s.style_distance < 0.2 * s.style_distance_source
    assert s.ab_hist_distance < 0.5 * s.ab_hist_distance_source


def test_ab_histogram_hellinger():
    grey = to_tensor([np.full((8, 8, 3), 128, np.uint8)])
    red = to_tensor([np.tile(np.array([200, 30, 30], np.uint8), (8, 8, 1))])
    hg, hr = ab_histogram(grey), ab_histogram(red)
    assert hg.sum() == pytest.approx(1.0) and hr.sum() == pytest.approx(1.0)
    assert hellinger(hg, hg) == pytest.approx(0.0, abs=1e-7)
    assert hellinger(hg, hr) == pytest.approx(1.0)
    half = ab_histogram(to_tensor([np.concatenate([np.full((4, 8, 3), 128, np.uint8),
                                                   np.tile(np.array([200, 30, 30], np.uint8), (4, 8, 1))])]))
    assert 0.2 < hellinger(hg, half) < 0.8


def frechet_by_degradation(clean_ref: np.ndarray, clean_out: np.ndarray, folder: Path, degrade, levels,
                           size: int) -> list[float]:
    write_pngs(folder, clean_ref)
    q = Quality(reference_set=folder, samples=len(clean_out), size=size)
    values = []
    for level in levels:
        out = degrade(clean_out, level)
        q.sampler = FrameSampler(len(out), size)
        for i, f in enumerate(out):
            q.offer(i, {"output": f, "source": clean_out[i]})
        values.append(q.scores().frechet_distance)
    return values


def add_noise(frames: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("degrade, levels", [(blur, (0, 1, 2, 4)), (add_noise, (0, 8, 20, 40))],
                         ids=["blur", "noise"])
def test_frechet_distance_grows_with_degradation(tmp_path, degrade, levels):
    frames = natural_frames(24, 96, 160, seed=3)
    fd = frechet_by_degradation(frames[::2], frames[1::2], tmp_path / "ref", degrade, levels, SIZE)
    assert all(a < b for a, b in zip(fd, fd[1:])), fd
    assert fd[-1] > 3 * fd[0]


def test_frechet_distance_grows_with_blur_on_real_frames(shared_data, tmp_path):
    folder = shared_data / "frames" / "sintel_raft_demo"
    frames = np.stack([cv2.resize(cv2.imread(str(p))[..., ::-1], (256, 109), interpolation=cv2.INTER_AREA)
                       for p in sorted(folder.glob("*.png"))])
    fd = frechet_by_degradation(frames[::2], frames[1::2], tmp_path / "ref", blur, (0, 1, 2, 4), 109)
    assert all(a < b for a, b in zip(fd, fd[1:])), fd


def test_reference_set_reads_images_and_videos(tmp_path):
    folder = write_pngs(tmp_path / "set", natural_frames(3, 40, 60))
    encode_frames(folder / "clip.mkv", natural_frames(30, 48, 64, seed=1))
    (folder / "notes.txt").write_text("not a picture")
    pictures = read_reference_set(folder, per_video=5, size=32)
    assert len(pictures) == 3 + 5
    assert all(min(p.shape[:2]) == 32 for p in pictures)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such folder"),
    (lambda d: (d / "file.png").write_bytes(b"x") and d / "file.png", "no such folder"),
    (lambda d: d, "at least 2 pictures, found 0"),
    (lambda d: (d / "bad.jpg").write_text("not an image") and d, "cannot read the image"),
    (lambda d: (d / "bad.mp4").write_text("not a video") and d, "bad.mp4"),
])
def test_reference_set_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        read_reference_set(make(tmp_path))


def cli_clips(tmp_path: Path) -> dict[str, Path]:
    frames = natural_frames(12, 64, 96)
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), painting_like()[..., ::-1])
    return {"src": encode_frames(tmp_path / "src.mkv", frames),
            "out": encode_frames(tmp_path / "out.mkv", blur(frames, 2.0)),
            "painting": painting,
            "set": write_pngs(tmp_path / "set", natural_frames(6, 64, 96, seed=5))}


def test_cli_eval_writes_quality_scores(tmp_path):
    c = cli_clips(tmp_path)
    report, plot = tmp_path / "r.json", tmp_path / "p.png"
    res = CliRunner().invoke(main, ["eval", str(c["out"]), "-s", str(c["src"]), "--style-image", str(c["painting"]),
                                    "--reference-set", str(c["set"]), "--quality-frames", "8", "--json", str(report),
                                    "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    m = data["metrics"]
    assert m["content_distance"] > 0
    assert m["style_distance"] > 0 and m["style_distance_source"] > 0
    assert m["style_ratio"] == pytest.approx(m["style_distance"] / m["style_distance_source"])
    assert 0 < m["ab_hist_distance"] <= 1 and 0 < m["ab_hist_distance_source"] <= 1
    assert m["frechet_distance"] > m["frechet_distance_source"] > 0  # blurred output is further from the set
    assert m["realism"] is None and m["colorfulness_style"] > 0
    q = data["quality"]
    assert len(q["frames"]) == 8 and q["working_size"] == 256 and q["reference_count"] == 6
    assert len(q["per_frame"]["style_distance"]) == 8
    assert plot.stat().st_size > 0
    for name in ("content distance", "style distance", "a*b* histogram distance", "Fréchet distance"):
        assert name in res.output


def test_cli_eval_reports_content_distance_without_options(tmp_path):
    c = cli_clips(tmp_path)
    res = CliRunner().invoke(main, ["eval", str(c["src"]), "-s", str(c["src"]), "--json", "-", "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)["metrics"]
    assert m["content_distance"] == 0.0 and m["style_distance"] is None and m["frechet_distance"] is None


@pytest.mark.parametrize("args, message", [
    (["--style-image", "{tmp}/nope.jpg"], "nope.jpg: no such file"),
    (["--style-image", "{tmp}/set/../src.mkv"], "cannot read the image"),
    (["--reference-set", "{tmp}/nothing"], "no such folder"),
    (["--reference-set", "{tmp}/empty"], "at least 2 pictures, found 0"),
    (["--critic", "{tmp}/no_run"], "no such training run folder"),
])
def test_cli_eval_bad_quality_input_is_one_line(tmp_path, args, message):
    c = cli_clips(tmp_path)
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path) for a in args]
    res = CliRunner().invoke(main, ["eval", str(c["out"]), "-s", str(c["src"])] + args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: ") and message in lines[0], res.output
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def critic_run(tmp_path_factory, shared_data):
    """A critic_tiny run cut to 4 steps: an untrained critic, enough to test the --critic plumbing."""
    from vidcolor.training import load_recipe, train
    from vidcolor.training.recipe import find_recipe

    run = tmp_path_factory.mktemp("critic") / "run"
    clips = [str(shared_data / "videos" / "intel_asl_eat.mkv")]
    overrides = {"data.paths": str(clips).replace("'", '"'), "data.cache_dir": f'"{run.parent / "cache"}"',
                 "train.steps": "4", "train.decay_start": "4", "train.checkpoint_every": "4",
                 "train.sample_every": "1000"}
    train(load_recipe(find_recipe("critic_tiny"), overrides), run, progress=False)
    return run


def test_cli_eval_critic_realism(tmp_path, critic_run):
    from vidcolor.critic import load_critic

    c = cli_clips(tmp_path)
    res = CliRunner().invoke(main, ["eval", str(c["out"]), "-s", str(c["src"]), "--critic", str(critic_run),
                                    "--quality-frames", "6", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    m, q = data["metrics"], data["quality"]
    assert q["critic"] == str(critic_run) and len(q["per_frame"]["realism"]) == 6
    assert 0 < m["realism"] < 1 and 0 < m["realism_source"] < 1
    assert m["realism"] == pytest.approx(np.mean(q["per_frame"]["realism"]))
    # the same score as the critic gives the sampled frames itself
    import av

    with av.open(str(c["src"])) as f:
        src = np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
    frames = to_tensor([cv2.resize(src[i], (384, 256), interpolation=cv2.INTER_LINEAR) for i in q["frames"]])
    assert m["realism_source"] == pytest.approx(float(load_critic(critic_run).score(frames).mean()), abs=1e-4)
    assert "realism" in res.output


def test_cli_eval_critic_folder_without_checkpoint_is_one_line(tmp_path):
    c = cli_clips(tmp_path)
    (tmp_path / "run").mkdir()
    res = CliRunner().invoke(main, ["eval", str(c["out"]), "-s", str(c["src"]), "--critic", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: ") and "no checkpoints" in lines[0], res.output
