"""Measure film restoration (issue #19's bars) with the real pipeline on degraded eval clips and B&W films.

    .venv/bin/python docs/models/evaluate_restore.py                          # /tmp/degraded, --style restore
    .venv/bin/python docs/models/evaluate_restore.py --degraded DIR --style restore --json restore.json

**Eval clips.** ``--degraded DIR`` holds ``NAME.clean.mkv``, ``NAME.degraded.mkv`` and
``NAME.defects.json`` as ``docs/models/degrade.py`` writes them (it is run with its defaults,
``--out DIR``, when DIR has no ``*.defects.json``). Each clip goes through ``vidcolor run --style
STYLE --codec ffv1 --pix-fmt bgr0 --json`` (the CLI; lossless RGB out) twice: the degraded version
and the clean one. Everything is decoded with vidcolor's reader; per clip and over the clips:

* PSNR (RGB, data range 1, mean over frames) and SSIM (``vidcolor.metrics``) of the degraded and of
  the restored clip against the clean one, and the gains;
* defects from the clip's own list (``defects.json``), each with its exact pixel set
  (``vidcolor.degrade.defect_pixels``): ``err_deg`` = mean |degraded - clean| of the Rec.709 luma
  over its pixels, ``err_out`` the same for the restored frame. A defect is *visible* when
  ``err_deg >= 0.1`` and a visible one is *removed* when ``err_out <= 0.3 err_deg``; specks and line
  scratches are counted apart, and invisible specks (on a background of their own grey) are counted;
* no harm: PSNR of restore(clean) against clean, beside the PSNR of the clean clip through libx264
  crf 18 yuv420p (preset veryfast, vidcolor's default output) as a yardstick; both from the MSE over
  the whole clip (a frame restore leaves unchanged would make the mean of per-frame PSNRs infinite),
  and the count of clean frames restore leaves bit-identical;
* flicker index (``vidcolor.defect_metrics.FlickerMeter``, DIS flow, as ``vidcolor eval``) and noise
  (median over frames of ``noise_sigma``) of the clean, degraded and restored clips;
* frames/s of the restore run of the degraded clip, from the run report (48 frames: start-up counts).

**B&W films.** The first ``--bw-frames`` (240) frames of each film in ``videos/bw/`` of the shared data
(``$VIDCOLOR_SHARED_DATA``) are copied losslessly (FFV1 ``bgr0``, ``degrade.py``'s writer) and run
through the same style; reported: flicker index and noise before and after, and the per-pair flicker
values (``--json``). A table goes to stdout, everything to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from vidcolor.color import LUMA_709
from vidcolor.defect_metrics import FlickerMeter, noise_sigma
from vidcolor.degrade import Degradation, defect_pixels, degrade
from vidcolor.flow import get_flow_estimator
from vidcolor.metrics import mean_or_nan, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
import degrade as degrade_script  # noqa: E402  (the clip writer and reader of the test material)

DATA = degrade_script.DATA
LUMA = np.array(LUMA_709, dtype=np.float32)
VISIBLE, REMOVED = 0.1, 0.3


def decode(path: Path) -> np.ndarray:
    """All frames of ``path`` as (N, H, W, 3) uint8 RGB, through vidcolor's reader."""
    return np.stack(degrade_script.read_first(path, 1 << 30)[0])


def restore(src: Path, dst: Path, style: str) -> dict:
    """``vidcolor run SRC --style STYLE`` into lossless RGB ``dst``; the run report."""
    vidcolor = str(Path(sys.executable).with_name("vidcolor"))
    out = subprocess.run([vidcolor, "-q", "run", str(src), "--style", style, "--codec", "ffv1",
                          "--pix-fmt", "bgr0", "-o", str(dst), "--overwrite", "--json"],
                         capture_output=True, text=True)
    if out.returncode:
        lines = out.stderr.strip().splitlines() or [f"exit code {out.returncode}"]
        raise SystemExit(f"evaluate_restore.py: error: vidcolor run {src.name}: {lines[-1]}")
    return json.loads(out.stdout)


def x264_roundtrip(frames: np.ndarray, tmp: Path, crf: int = 18) -> np.ndarray:
    """The frames through libx264 crf ``crf``, yuv420p, preset veryfast, decoded by vidcolor's reader."""
    import av

    path = tmp / "x264.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return decode(path)


def psnr_pooled(output: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (data range 1) of the MSE over every frame at once: finite unless the clips are identical
    (``vidcolor.metrics.psnr`` averages per-frame values, and one identical frame makes that inf)."""
    mse = float(np.mean([np.mean(((o.astype(np.float64) - r) / 255) ** 2) for o, r in zip(output, reference)]))
    return 10 * np.log10(1 / mse) if mse else float("inf")


def flicker(frames: np.ndarray, chunk: int = 16) -> tuple[float, list[float]]:
    """Flicker index and its per-pair values (nan: a pair skipped as a cut or black)."""
    meter = FlickerMeter(get_flow_estimator("dis")[0])
    for i in range(0, len(frames), chunk):
        meter.update(frames[i:i + chunk])
    return meter.value, meter.per_pair


def noise(frames: np.ndarray, chunk: int = 16) -> float:
    return float(np.median([s for i in range(0, len(frames), chunk) for s in noise_sigma(frames[i:i + chunk])]))


def defect_scores(entries: list[dict], clean: np.ndarray, bad: np.ndarray, out: np.ndarray) -> dict:
    """Visible / removed / invisible counts of recorded defects (see the module docstring)."""
    luma = [f.astype(np.float32) @ LUMA / 255 for f in (clean, bad, out)]
    visible = removed = invisible = 0
    for e in entries:
        ys, xs = defect_pixels(e)
        c, d, o = (y[e["frame"]][ys, xs] for y in luma)
        err_deg, err_out = float(np.abs(d - c).mean()), float(np.abs(o - c).mean())
        if err_deg < VISIBLE:
            invisible += 1
            continue
        visible += 1
        removed += err_out <= REMOVED * err_deg
    return {"visible": visible, "removed": removed, "invisible": invisible,
            "share": removed / visible if visible else float("nan")}


def eval_clip(name: str, folder: Path, style: str, tmp: Path) -> dict:
    record = json.loads((folder / f"{name}.defects.json").read_text(encoding="utf-8"))
    clean, bad = decode(folder / f"{name}.clean.mkv"), decode(folder / f"{name}.degraded.mkv")
    run_bad = restore(folder / f"{name}.degraded.mkv", tmp / f"{name}.restored.mkv", style)
    run_clean = restore(folder / f"{name}.clean.mkv", tmp / f"{name}.clean-restored.mkv", style)
    out, out_clean = decode(tmp / f"{name}.restored.mkv"), decode(tmp / f"{name}.clean-restored.mkv")
    x264 = x264_roundtrip(clean, tmp)
    r = {"clip": name, "frames": len(clean),
         "psnr_degraded": psnr(bad, clean), "psnr_restored": psnr(out, clean),
         "ssim_degraded": ssim(bad, clean), "ssim_restored": ssim(out, clean),
         "specks": defect_scores(record["specks"], clean, bad, out),
         "scratches": defect_scores(record["scratches"], clean, bad, out),
         "psnr_clean_restored": psnr_pooled(out_clean, clean), "psnr_clean_x264_crf18": psnr_pooled(x264, clean),
         "clean_frames_unchanged": int(sum(np.array_equal(o, c) for o, c in zip(out_clean, clean))),
         "fps": run_bad["fps"], "fps_clean": run_clean["fps"]}
    r["psnr_gain"] = r["psnr_restored"] - r["psnr_degraded"]
    r["ssim_gain"] = r["ssim_restored"] - r["ssim_degraded"]
    r["no_harm"] = r["psnr_clean_restored"] > r["psnr_clean_x264_crf18"]
    for key, frames in (("clean", clean), ("degraded", bad), ("restored", out)):
        r[f"flicker_{key}"], r[f"flicker_pairs_{key}"] = flicker(frames)
        r[f"noise_{key}"] = noise(frames)
    return r


def eval_film(film: Path, count: int, style: str, tmp: Path) -> dict:
    frames, pts, time_base, rate = degrade_script.read_first(film, count)
    src = tmp / f"{film.stem}.first.mkv"
    degrade_script.write_lossless(src, np.stack(frames), pts, time_base, rate)
    report = restore(src, tmp / f"{film.stem}.restored.mkv", style)
    before, after = np.stack(frames), decode(tmp / f"{film.stem}.restored.mkv")
    r = {"film": film.name, "frames": len(before), "fps": report["fps"]}
    for key, f in (("before", before), ("after", after)):
        r[f"flicker_{key}"], r[f"flicker_pairs_{key}"] = flicker(f)
        r[f"noise_{key}"] = noise(f)
    r["flicker_drop"] = 1 - r["flicker_after"] / r["flicker_before"]
    # the same film with exposure flicker added (vidcolor.degrade: gains uniform in [0.9, 1.1], nothing
    # else): whether restore takes flicker out of real black-and-white footage
    flickered, _ = degrade(np.stack(frames), Degradation(flicker=0.10, grain=0.0, specks=0, scratches=0), seed=0)
    src = tmp / f"{film.stem}.flickered.mkv"
    degrade_script.write_lossless(src, flickered, pts, time_base, rate)
    restore(src, tmp / f"{film.stem}.flickered.restored.mkv", style)
    r["flicker_added"], _ = flicker(flickered)
    r["flicker_added_restored"], _ = flicker(decode(tmp / f"{film.stem}.flickered.restored.mkv"))
    r["flicker_added_drop"] = 1 - r["flicker_added_restored"] / r["flicker_added"]
    return r


SCALARS = ("psnr_degraded", "psnr_restored", "psnr_gain", "ssim_degraded", "ssim_restored", "ssim_gain",
           "psnr_clean_restored", "psnr_clean_x264_crf18", "flicker_clean", "flicker_degraded",
           "flicker_restored", "noise_clean", "noise_degraded", "noise_restored", "fps", "fps_clean")


def summarise(clips: list[dict]) -> dict:
    mean = {k: mean_or_nan([c[k] for c in clips]) for k in SCALARS}
    for kind in ("specks", "scratches"):
        tot = {k: sum(c[kind][k] for c in clips) for k in ("visible", "removed", "invisible")}
        tot["share"] = tot["removed"] / tot["visible"] if tot["visible"] else float("nan")
        mean[kind] = tot
    mean["no_harm"] = all(c["no_harm"] for c in clips)
    mean["clean_frames_unchanged"] = sum(c["clean_frames_unchanged"] for c in clips)
    return mean


def print_tables(clips: list[dict], mean: dict, films: list[dict]) -> None:
    print("| clip | PSNR deg → restored (gain) | SSIM deg → restored (gain) | specks removed / visible "
          "(invisible) | scratches | clean: restore / x264 crf18 PSNR (frames unchanged) | flicker clean / deg / restored "
          "| noise clean / deg / restored | fps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in [*clips, {"clip": "mean", **mean}]:
        s, k = c["specks"], c["scratches"]
        print(f"| {c['clip']} | {c['psnr_degraded']:.2f} → {c['psnr_restored']:.2f} ({c['psnr_gain']:+.2f}) "
              f"| {c['ssim_degraded']:.3f} → {c['ssim_restored']:.3f} ({c['ssim_gain']:+.3f}) "
              f"| {s['removed']} / {s['visible']} = {100 * s['share']:.1f} % ({s['invisible']}) "
              f"| {k['removed']} / {k['visible']} "
              f"| {c['psnr_clean_restored']:.2f} / {c['psnr_clean_x264_crf18']:.2f} ({c['clean_frames_unchanged']}) "
              f"| {c['flicker_clean']:.4f} / {c['flicker_degraded']:.4f} / {c['flicker_restored']:.4f} "
              f"| {c['noise_clean']:.2f} / {c['noise_degraded']:.2f} / {c['noise_restored']:.2f} | {c['fps']:.1f} |")
    if films:
        print("\n| film | frames | flicker before → after (drop) | with ±10 % flicker added: before → after (drop) "
              "| noise before → after | fps |")
        print("|---|---|---|---|---|---|")
        for f in films:
            print(f"| {f['film']} | {f['frames']} | {f['flicker_before']:.4f} → {f['flicker_after']:.4f} "
                  f"({100 * f['flicker_drop']:.0f} %) | {f['flicker_added']:.4f} → {f['flicker_added_restored']:.4f} "
                  f"({100 * f['flicker_added_drop']:.0f} %) | {f['noise_before']:.2f} → {f['noise_after']:.2f} "
                  f"| {f['fps']:.1f} |")


def finite(x):
    """nan -> None, so the JSON is strict (a skipped flicker pair is null, as in ``vidcolor eval``)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if isinstance(x, np.generic):  # numpy bools and numbers: their Python values
        x = x.item()
    return None if isinstance(x, float) and x != x else x


def clip_names(folder: Path) -> list[str]:
    return sorted(p.name[: -len(".defects.json")] for p in folder.glob("*.defects.json"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--degraded", type=Path, default=Path(tempfile.gettempdir()) / "degraded",
                    help="folder made by docs/models/degrade.py (made with its defaults when empty)")
    ap.add_argument("--style", default="restore")
    ap.add_argument("--json", type=Path, help="write every figure, per clip, per film and per frame pair")
    ap.add_argument("--clips", nargs="*", help="clip names in --degraded (default: all)")
    ap.add_argument("--bw-frames", type=int, default=240, help="first N frames of each B&W film (0: skip them)")
    args = ap.parse_args(argv)
    if not clip_names(args.degraded):
        print(f"making test material in {args.degraded}", file=sys.stderr)
        degrade_script.main(["--out", str(args.degraded)])
    names = args.clips or clip_names(args.degraded)
    missing = [n for n in names if not (args.degraded / f"{n}.defects.json").is_file()]
    if missing:
        ap.error(f"not in {args.degraded}: {', '.join(missing)}")
    films = sorted((DATA / "videos" / "bw").glob("*.mp4")) if args.bw_frames > 0 else []
    with tempfile.TemporaryDirectory(prefix="vidcolor-restore-eval-") as tmp:
        clips = []
        for n in names:
            clips.append(eval_clip(n, args.degraded, args.style, Path(tmp)))
            print(f"{n}: done", file=sys.stderr, flush=True)
        film_results = [eval_film(f, args.bw_frames, args.style, Path(tmp)) for f in films]
    mean = summarise(clips)
    print_tables(clips, mean, film_results)
    if args.json:
        doc = {"style": args.style, "degraded": str(args.degraded), "clips": clips, "mean": mean,
               "films": film_results}
        args.json.write_text(json.dumps(finite(doc)) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
