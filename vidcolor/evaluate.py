"""``evaluate(output, source, reference=None)``: stream videos in lockstep and measure the output.

Steps: (1) open the videos and check they can be compared, (2) read them a chunk at a time and
feed the streaming meters of ``vidcolor.metrics`` and ``vidcolor.defect_metrics`` (only the last
few frames and small thumbnails are kept; the flicker index and noise estimate are measured on each
video, output, source and reference, with its own flow; a ``vidcolor.quality.Quality`` given as
``quality`` samples output and source frames for its scores), (3) return an ``EvalReport``;
``write_sheet`` and ``write_plot`` draw the contact sheet and the per-frame curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor import metrics
from vidcolor.color import lab_to_rgb, rgb_to_lab
from vidcolor.defect_metrics import FlickerMeter, noise_sigma
from vidcolor.errors import InputError, VideoError
from vidcolor.quality import Quality, QualityScores, plot_quality

SHEET_THUMB_HEIGHT = 160


@dataclass
class EvalReport:
    """What ``vidcolor eval`` measured. Metrics that need a reference are None without one.

    ``psnr_grey`` and ``ciede2000_grey`` score the grey baseline, the reference's own L* with
    a* = b* = 0 (what showing a black-and-white version would score): an output whose colour helps
    has a lower CIEDE2000 (and a higher PSNR) than it."""

    output: str
    source: str
    reference: str | None
    frames: int
    width: int
    height: int
    flow: str
    warping_error: float          # Lai et al. 2018, output; lower = more stable
    warping_error_source: float   # the same on the source: what flow errors alone give
    cdc: float                    # TCVC colour distribution consistency, output; lower = more stable
    colorfulness: float           # Hasler & Süsstrunk 2003, mean over frames
    psnr: float | None = None
    ssim: float | None = None
    ciede2000: float | None = None
    psnr_grey: float | None = None       # the grey baseline: the reference's L* with a* = b* = 0
    ciede2000_grey: float | None = None
    colorfulness_reference: float | None = None
    flicker_index: float = math.nan       # vidcolor.defect_metrics.FlickerMeter, per video on its own flow
    flicker_index_source: float = math.nan
    flicker_index_reference: float | None = None
    noise: float = math.nan               # Immerkaer 1996 luma sigma (0-255), median over frames
    noise_source: float = math.nan
    noise_reference: float | None = None
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    sheet_frames: list[int] = field(default_factory=list)
    quality: QualityScores | None = None  # vidcolor.quality: content, style, Fréchet, realism

    def summary(self) -> dict[str, float | None]:
        return {
            "warping_error": self.warping_error, "warping_error_source": self.warping_error_source,
            "cdc": self.cdc, "colorfulness": self.colorfulness, "colorfulness_reference": self.colorfulness_reference,
            "psnr": self.psnr, "ssim": self.ssim, "ciede2000": self.ciede2000,
            "psnr_grey": self.psnr_grey, "ciede2000_grey": self.ciede2000_grey,
            "flicker_index": self.flicker_index, "flicker_index_source": self.flicker_index_source,
            "flicker_index_reference": self.flicker_index_reference,
            "noise": self.noise, "noise_source": self.noise_source, "noise_reference": self.noise_reference,
            **(self.quality.summary() if self.quality is not None else {}),
        }

    def to_json(self) -> dict[str, Any]:
        def clean(v):  # JSON has no nan/inf
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "output": self.output, "source": self.source, "reference": self.reference,
            "frames": self.frames, "size": [self.width, self.height], "flow": self.flow,
            "metrics": {k: clean(v) for k, v in self.summary().items()},
            "per_frame": {k: [clean(v) for v in vals] for k, vals in self.per_frame.items()},
            "quality": self.quality.to_json() if self.quality is not None else None,
        }


def grey_of(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] -> the same frames with a* = b* = 0 and L* kept, rounded to
    8 bits like a decoded video: the black-and-white version of a colour reference."""
    L = rgb_to_lab(rgb)[:, :1]
    grey = lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1))
    return grey.mul(255).round_().div_(255)


def _chunks_pyav(path: str, size: int) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: cannot open ({getattr(exc, 'strerror', None) or exc})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        buf: list[np.ndarray] = []
        try:
            for frame in container.decode(video=0):
                rgb = frame.to_ndarray(format="rgb24")
                k = (getattr(frame, "rotation", 0) or 0) // 90 % 4
                buf.append(np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb)
                if len(buf) == size:
                    yield np.stack(buf)
                    buf = []
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: corrupt data ({exc})") from None
        if buf:
            yield np.stack(buf)


def read_chunks(path: str | Path, size: int = 8) -> Iterator[np.ndarray]:
    """Upright RGB frames of a video as uint8 ``(T, H, W, 3)`` chunks: ``vidcolor.io.reader.VideoReader``
    (threaded decode) when available, PyAV directly otherwise."""
    path = str(path)
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    try:
        from vidcolor.io.reader import VideoReader
    except ImportError:
        yield from _chunks_pyav(path, size)
        return
    with VideoReader(path) as reader:
        for chunk in reader.chunks(size):
            yield chunk.frames


class _Thumbnails:
    """Evenly spaced small frames without knowing the frame count: keep every ``stride``-th frame and
    double the stride (dropping every other kept frame) when more than ``2 * count`` are held."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.stride = 1
        self.kept: list[tuple[int, list[np.ndarray]]] = []

    def offer(self, index: int, images: list[np.ndarray]) -> None:
        if self.count <= 0 or index % self.stride:
            return
        import cv2

        thumbs = []
        for im in images:
            h, w = im.shape[:2]
            tw = max(1, round(w * SHEET_THUMB_HEIGHT / h))
            thumbs.append(cv2.resize(im, (tw, SHEET_THUMB_HEIGHT), interpolation=cv2.INTER_AREA))
        self.kept.append((index, thumbs))
        if len(self.kept) > 2 * self.count:
            self.stride *= 2
            self.kept = [k for k in self.kept if k[0] % self.stride == 0]

    def pick(self) -> list[tuple[int, list[np.ndarray]]]:
        if len(self.kept) <= self.count:
            return self.kept
        idx = np.linspace(0, len(self.kept) - 1, self.count).round().astype(int)
        return [self.kept[i] for i in idx]


def _check_counts_and_sizes(names: dict[str, str]) -> None:
    """Fail before decoding when the containers already say the videos cannot be compared."""
    try:
        from vidcolor.io.probe import probe
    except ImportError:
        return  # checked while streaming instead
    metas = {k: probe(p) for k, p in names.items()}
    sizes = {k: (m.display_width, m.display_height) for k, m in metas.items()}
    if len(set(sizes.values())) > 1:
        raise InputError("frame sizes differ: " + ", ".join(f"{names[k]} is {w}x{h}" for k, (w, h) in sizes.items()))
    counts = {k: m.frame_count for k, m in metas.items() if m.frame_count_exact and m.frame_count}
    if len(counts) == len(metas) and len(set(counts.values())) > 1:
        raise InputError("frame counts differ: " + ", ".join(f"{names[k]} has {n}" for k, n in counts.items()))


def evaluate(output: str | Path, source: str | Path, reference: str | Path | None = None, *,
             flow: str = "dis", chunk_size: int = 8, sheet_count: int = 0,
             progress: Callable[[int], None] | None = None, quality: Quality | None = None) -> tuple[EvalReport, list[tuple[int, list[np.ndarray]]]]:
    """Measure ``output`` against its ``source`` (and ``reference`` ground truth when given).

    Returns the report and, when ``sheet_count > 0``, up to that many evenly spaced
    ``(frame index, [source, output, reference] thumbnails)`` for ``write_sheet``; with ``quality``,
    the report's ``quality`` holds its scores on frames sampled from the stream.
    Raises ``InputError`` (exit 2) when the videos differ in frame count or size.
    """
    from vidcolor.flow import get_flow_estimator

    # 1. Open and check.
    names = {"output": str(output), "source": str(source)}
    if reference is not None:
        names["reference"] = str(reference)
    for p in names.values():
        if not Path(p).is_file():
            raise InputError(f"{p}: no such file")
    _check_counts_and_sizes(names)
    estimator, flow_desc = get_flow_estimator(flow)
    readers = {k: read_chunks(p, chunk_size) for k, p in names.items()}

    # 2. Stream.
    warp_meter = metrics.WarpingErrorMeter(estimator)
    cdc_meter = metrics.CDCMeter()
    flicker = {k: FlickerMeter(estimator) for k in names}
    noise: dict[str, list[float]] = {k: [] for k in names}
    per_frame: dict[str, list[float]] = {"colorfulness": []}
    if reference is not None:
        per_frame.update({"psnr": [], "ssim": [], "ciede2000": [], "colorfulness_reference": [],
                          "psnr_grey": [], "ciede2000_grey": []})
    thumbs = _Thumbnails(sheet_count)
    count, size = 0, None
    while True:
        got = {}
        for key, it in readers.items():
            got[key] = next(it, None)
        ended = [k for k, v in got.items() if v is None]
        if ended:
            if len(ended) != len(got):
                extra = {k: len(v) for k, v in got.items() if v is not None}
                raise InputError(
                    f"frame counts differ: {', '.join(names[k] for k in ended)} ended after {count} frames "
                    f"but {', '.join(f'{names[k]} has more' for k in extra)}")
            break
        shapes = {k: v.shape for k, v in got.items()}
        if size is None:
            size = shapes["output"][1:3]
            bad = {k: s for k, s in shapes.items() if s[1:3] != size}
            if bad:
                raise InputError("frame sizes differ: " + ", ".join(
                    f"{names[k]} is {s[2]}x{s[1]}" for k, s in shapes.items()))
        if len({s[0] for s in shapes.values()}) != 1:  # a reader returned a short chunk: one video ended
            n = min(s[0] for s in shapes.values())
            raise InputError("frame counts differ: " + ", ".join(
                f"{names[k]} has " + (f"{count + s[0]}" if s[0] == n else f"at least {count + s[0]}")
                for k, s in shapes.items()))
        frames = {k: metrics.as_frames(v) for k, v in got.items()}
        warp_meter.update(frames["output"], frames["source"])
        cdc_meter.update(frames["output"])
        for k, f in frames.items():
            flicker[k].update(f)
            noise[k].extend(noise_sigma(f))
        grey = grey_of(frames["reference"]) if reference is not None else None
        for i in range(frames["output"].shape[0]):
            out_i = frames["output"][i]
            per_frame["colorfulness"].append(metrics.colorfulness(out_i))
            if reference is not None:
                ref_i = frames["reference"][i]
                per_frame["psnr"].append(metrics.psnr(out_i, ref_i))
                per_frame["ssim"].append(metrics.ssim(out_i, ref_i))
                per_frame["ciede2000"].append(metrics.ciede2000(out_i, ref_i))
                per_frame["colorfulness_reference"].append(metrics.colorfulness(ref_i))
                per_frame["psnr_grey"].append(metrics.psnr(grey[i], ref_i))
                per_frame["ciede2000_grey"].append(metrics.ciede2000(grey[i], ref_i))
            thumbs.offer(count + i, [got[k][i] for k in ("source", "output", "reference") if k in got])
            if quality is not None:
                quality.offer(count + i, {k: got[k][i] for k in ("output", "source")})
        count += frames["output"].shape[0]
        if progress is not None:
            progress(count)
    if count == 0:
        raise InputError(f"{names['output']}: no frames")

    # 3. Report.
    per_frame["warping_error"] = list(warp_meter.per_pair)
    per_frame["warping_error_source"] = list(warp_meter.per_pair_input)
    for k in names:
        suffix = "" if k == "output" else f"_{k}"
        per_frame[f"flicker{suffix}"] = list(flicker[k].per_pair)
        per_frame[f"noise{suffix}"] = noise[k]
    ref = reference is not None
    ref_mean = (lambda k: metrics.mean_or_nan(per_frame[k])) if reference is not None else (lambda k: None)
    report = EvalReport(
        output=names["output"], source=names["source"], reference=names.get("reference"), frames=count,
        width=int(size[1]), height=int(size[0]), flow=flow_desc,
        warping_error=warp_meter.value, warping_error_source=warp_meter.input_value, cdc=cdc_meter.value,
        colorfulness=metrics.mean_or_nan(per_frame["colorfulness"]),
        psnr=ref_mean("psnr"), ssim=ref_mean("ssim"), ciede2000=ref_mean("ciede2000"),
        psnr_grey=ref_mean("psnr_grey"), ciede2000_grey=ref_mean("ciede2000_grey"),
        colorfulness_reference=ref_mean("colorfulness_reference"),
        flicker_index=flicker["output"].value, flicker_index_source=flicker["source"].value,
        flicker_index_reference=flicker["reference"].value if ref else None,
        noise=float(np.median(noise["output"])), noise_source=float(np.median(noise["source"])),
        noise_reference=float(np.median(noise["reference"])) if ref else None, per_frame=per_frame,
        quality=quality.scores() if quality is not None else None,
    )
    picked = thumbs.pick()
    report.sheet_frames = [i for i, _ in picked]
    return report, picked


def write_sheet(path: str | Path, picked: list[tuple[int, list[np.ndarray]]], labels: list[str]) -> None:
    """Contact sheet PNG: one row per video (``labels``: source / output / reference), one column per
    picked frame, frame numbers on the first row."""
    import cv2

    if not picked:
        raise InputError("no frames for the contact sheet")
    gap = 4
    rows = []
    for r, label in enumerate(labels):
        cells = [thumbs[r] for _, thumbs in picked]
        row = np.concatenate([np.pad(c, ((0, 0), (0, gap), (0, 0)), constant_values=255) for c in cells], axis=1)
        band = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(band, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        if r == 0:
            x = 0
            for (index, _), c in zip(picked, cells):
                cv2.putText(band, f"#{index}", (x + c.shape[1] - 60, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                            (80, 80, 80), 1, cv2.LINE_AA)
                x += c.shape[1] + gap
        rows.extend([band, row])
    sheet = np.concatenate(rows, axis=0)
    if not cv2.imwrite(str(path), np.ascontiguousarray(sheet[..., ::-1])):
        raise InputError(f"{path}: cannot write the contact sheet")


def write_plot(path: str | Path, report: EvalReport) -> None:
    """Per-frame curves, PNG via matplotlib: warping error (output and source), flicker (each video;
    skipped pairs are gaps), colorfulness and, with quality scores, content and style distance."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install 'vidcolor[eval]')") from None
    pf = report.per_frame
    q = report.quality
    fig, axes = plt.subplots(3 + (q is not None), 1, figsize=(10, 8.5 + 2.8 * (q is not None)), sharex=True)
    ax1, ax3, ax2 = axes[:3]
    xs = np.arange(1, len(pf["warping_error"]) + 1)
    ax1.plot(xs, pf["warping_error"], label=f"output (mean {report.warping_error:.5f})")
    ax1.plot(xs, pf["warping_error_source"], label=f"source (mean {report.warping_error_source:.5f})", alpha=0.7)
    ax1.set_ylabel("warping error (Lai et al.)")
    ax1.legend(loc="upper right")
    for key, label in (("flicker", "output"), ("flicker_source", "source"), ("flicker_reference", "reference")):
        if key in pf:
            mean = {"flicker": report.flicker_index, "flicker_source": report.flicker_index_source,
                    "flicker_reference": report.flicker_index_reference}[key]
            ax3.plot(xs, pf[key], label=f"{label} (index {mean:.4f})", alpha=1.0 if key == "flicker" else 0.7)
    ax3.set_ylabel("flicker (|Δ mean luma| / mean)")
    ax3.legend(loc="upper right")
    ax2.plot(np.arange(len(pf["colorfulness"])), pf["colorfulness"], label="output")
    if "colorfulness_reference" in pf:
        ax2.plot(np.arange(len(pf["colorfulness_reference"])), pf["colorfulness_reference"], label="reference", alpha=0.7)
    ax2.set_ylabel("colorfulness (Hasler-Süsstrunk)")
    ax2.set_xlabel("frame")
    ax2.legend(loc="upper right")
    if q is not None:
        plot_quality(axes[3], q)
    fig.suptitle(Path(report.output).name)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
