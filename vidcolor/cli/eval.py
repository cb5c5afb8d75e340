"""``vidcolor eval OUTPUT --source INPUT [--reference GT] [--style-image P] [--reference-set DIR] [--critic RUN]``:
temporal stability, colour and quality scores of an output."""

from __future__ import annotations

import json
import math

import click

from vidcolor.cli.common import STATE, handle_errors

FLOW_CHOICES = ("auto", "dis", "raft_small", "raft_large")  # kept in sync with vidcolor.flow.FLOW_CHOICES


def write_json(path: str, data: dict) -> None:
    """``data`` as JSON in ``path``, written to ``path.part`` and renamed: never a half-written report."""
    from pathlib import Path

    from vidcolor.errors import ProcessingError

    part = Path(f"{path}.part")
    try:
        part.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        part.replace(path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ProcessingError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


@click.command("eval")
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=str))
@click.option("--source", "-s", required=True, type=click.Path(path_type=str),
              help="The input video OUTPUT was made from (flow and occlusion are computed on it).")
@click.option("--reference", "-r", type=click.Path(path_type=str), default=None,
              help="Ground-truth video: adds PSNR, SSIM and CIEDE2000, and PSNR and CIEDE2000 of the grey "
                   "baseline (the reference's L* with a* = b* = 0) to compare them with.")
@click.option("--json", "json_path", type=click.Path(path_type=str, allow_dash=True), default=None,
              help="Write the report as JSON to this file ('-': stdout; the table then goes to stderr).")
@click.option("--sheet", type=click.Path(path_type=str), default=None,
              help="Write a contact sheet PNG (source / output / reference at evenly spaced frames).")
@click.option("--sheet-frames", type=click.IntRange(1, 32), default=6, show_default=True, help="Columns of the sheet.")
@click.option("--plot", type=click.Path(path_type=str), default=None,
              help="Write per-frame warping error, flicker and colorfulness curves, and the content and style "
                   "distances of the sampled frames (PNG, needs matplotlib).")
@click.option("--flow", type=click.Choice(FLOW_CHOICES), default="dis", show_default=True,
              help="Flow estimator; compare warping errors only between runs measured with the same one.")
@click.option("--style-image", type=click.Path(path_type=str), default=None,
              help="A painting: adds the Gram style distance of the output to it (painting read at a short side "
                   "of 256 px, frames at the same working size), the source's for scale, their ratio, and the "
                   "a*b* histogram distance (Hellinger) to it.")
@click.option("--reference-set", type=click.Path(path_type=str), default=None,
              help="A folder of images and/or videos (16 frames sampled from each, or --quality-frames): adds the "
                   "Fréchet distance of the output's EfficientNet-Lite0 pooled features to theirs (and the "
                   "source's). Not comparable with Inception FID; small sample counts bias it upward, so compare "
                   "runs with the same counts.")
@click.option("--critic", "critic_run", type=click.Path(path_type=str), default=None,
              help="A training run folder with a saved discriminator: adds realism, its mean score over the "
                   "sampled output frames (higher = more real), and the source's.")
@click.option("--quality-frames", type=click.IntRange(2, 256), default=16, show_default=True,
              help="Frames sampled evenly for the content, style, Fréchet and realism scores (the same frames "
                   "for all, at a short side of 256 px).")
@handle_errors
def eval_cmd(output: str, source: str, reference: str | None, json_path: str | None, sheet: str | None,
             sheet_frames: int, plot: str | None, flow: str, style_image: str | None, reference_set: str | None,
             critic_run: str | None, quality_frames: int) -> None:
    """Measure how stable and how colourful OUTPUT is, how much it flickers, how noisy it is, and
    how far it is from its source, a painting, a reference set and what a critic calls real.

    \b
    warping error  Lai et al. ECCV 2018 (lower = steadier; the source's own value is the floor)
    CDC            colour distribution consistency, TCVC (lower = steadier)
    colorfulness   Hasler & Süsstrunk 2003 (0 = grey, ~33 moderately, ~59 quite colourful)
    flicker index  mean over frames of |mean luma - mean of the flow-warped previous luma| /
                   mean luma, on reliable pixels (forward-backward check) at a short side of
                   240; pairs with < 20 % reliable pixels (cuts) skipped; 0 = steady exposure,
                   ±10 % random gain on still content gives ~0.067. Output, source, reference
    noise          luma noise sigma (0-255), Immerkaer 1996, median over frames; fine texture
                   counts too, so compare versions of the same clip. Output, source, reference
    PSNR/SSIM/ΔE00 against --reference, when given; PSNR and ΔE00 also for the
                   grey baseline (the reference in black and white: L* kept, a* = b* = 0),
                   so "colour helped" means the output is closer than no colour at all

    \b
    Quality scores, on --quality-frames evenly sampled frames at a short side of 256 px:
    content dist.  feature distance to the source (EfficientNet-Lite0, stride 8); 0 = same
    style dist.    Gram distance to --style-image, the source's, and output / source
    a*b* hist.     Hellinger distance of the a*b* histograms (10-unit bins) to --style-image
    Fréchet dist.  to --reference-set on EfficientNet-Lite0 pooled features (not Inception FID)
    realism        mean score of the --critic discriminator (higher = more real)

    \b
    Example:
      vidcolor eval colorized.mp4 --source old_film.mp4 --json report.json --sheet sheet.png
      vidcolor eval colorized.mp4 --source old_film.mp4 --json - | jq .warping_error
      vidcolor eval painted.mp4 -s film.mp4 --style-image starry_night.jpg --reference-set paintings/
    """
    from vidcolor.evaluate import evaluate, write_plot, write_sheet
    from vidcolor.quality import Quality

    quality = Quality(style_image=style_image, reference_set=reference_set, critic=critic_run, samples=quality_frames)
    report, picked = evaluate(output, source, reference, flow=flow, sheet_count=sheet_frames if sheet else 0,
                              quality=quality)
    if json_path == "-":
        click.echo(json.dumps(report.to_json(), indent=2))
    elif json_path:
        write_json(json_path, report.to_json())
    if sheet:
        write_sheet(sheet, picked, ["source", "output"] + (["reference"] if reference else []))
    if plot:
        write_plot(plot, report)
    if STATE.quiet:
        return
    from rich.table import Table

    from vidcolor.cli.common import console

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None or not math.isfinite(v) else format(v, spec)

    def verdict(value: float | None, grey: float | None, higher_is_better: bool) -> str:
        """': colour helped' when the output beats the grey baseline, ': colour made it worse' when it
        loses, '' when they tie at the printed precision or a figure is missing."""
        if value is None or grey is None or not (math.isfinite(value) and math.isfinite(grey)):
            return ""
        if round(value, 2) == round(grey, 2):
            return ": the same"
        return ": colour helped" if (value > grey) == higher_is_better else ": colour made it worse"

    t = Table(title=f"{output}  ({report.frames} frames, {report.width}x{report.height}; flow: {report.flow})",
              title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    t.add_row("warping error", fmt(report.warping_error, ".6f"),
              f"lower is steadier; source itself {fmt(report.warping_error_source, '.6f')}")
    t.add_row("CDC", fmt(report.cdc, ".6f"), "lower is steadier")
    ref_note = (lambda v, spec: f", reference {fmt(v, spec)}") if reference else (lambda v, spec: "")
    t.add_row("flicker index", fmt(report.flicker_index, ".4f"),
              f"lower is steadier exposure; source {fmt(report.flicker_index_source, '.4f')}"
              + ref_note(report.flicker_index_reference, ".4f"))
    t.add_row("noise σ", fmt(report.noise, ".2f"),
              f"luma, 0-255; source {fmt(report.noise_source, '.2f')}" + ref_note(report.noise_reference, ".2f"))
    t.add_row("colorfulness", fmt(report.colorfulness, ".2f"),
              f"reference {fmt(report.colorfulness_reference, '.2f')}" if reference else "0 = grey")
    if reference:
        t.add_row("PSNR", fmt(report.psnr, ".2f") + " dB",
                  f"vs reference (grey baseline {fmt(report.psnr_grey, '.2f')} dB{verdict(report.psnr, report.psnr_grey, True)})")
        t.add_row("SSIM", fmt(report.ssim, ".4f"), "vs reference")
        t.add_row("CIEDE2000", fmt(report.ciede2000, ".2f"),
                  f"vs reference (grey baseline {fmt(report.ciede2000_grey, '.2f')}"
                  f"{verdict(report.ciede2000, report.ciede2000_grey, False)}); ~1 is just noticeable")
    for row in report.quality.table_rows() if report.quality is not None else []:
        t.add_row(*row)
    console(stderr=json_path == "-").print(t)
