"""Write configs/styles/technicolor.cube: the period grade of the ``technicolor`` style.

    .venv/bin/python docs/models/make_technicolor_lut.py [--size 17] [--out configs/styles/technicolor.cube]

A three-strip-Technicolor-like look applied after the colorizer (the grade stage's ``lut`` preset,
trilinear): in CIE Lab, chroma x1.6 (rich, printed-dye primaries), hues of reds/oranges pulled
slightly towards red and of blues towards cyan, warm highlights and slightly cool shadows; L* is
kept (the grade stage's contrast curve adds the deeper blacks). Values out of the sRGB gamut are
brought back by desaturating towards the same L* (``lab_to_rgb_keep_lightness``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab

OUT = Path(__file__).resolve().parents[2] / "configs" / "styles" / "technicolor.cube"


def technicolor(rgb: torch.Tensor, chroma: float = 1.6, warm: float = 6.0, cool: float = 3.0) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> graded RGB."""
    lab = rgb_to_lab(rgb)
    L, a, b = lab[:, :1], lab[:, 1:2], lab[:, 2:3]
    C, h = torch.hypot(a, b), torch.atan2(b, a)
    # reds/oranges (h around 40 deg) a little towards red, blues (h around -100 deg) towards cyan
    h = h - 0.12 * torch.exp(-((h - math.radians(40)) ** 2) / 0.3) + 0.15 * torch.exp(-((h - math.radians(-100)) ** 2) / 0.3)
    C = C * chroma
    a, b = C * torch.cos(h), C * torch.sin(h)
    t = (L / 100.0).clamp(0, 1)
    a = a + warm * 0.5 * t**2
    b = b + warm * t**2 - cool * (1 - t) ** 2
    return lab_to_rgb_keep_lightness(L, torch.cat([a, b], 1)).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=17)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    n = args.size
    v = torch.linspace(0, 1, n)
    b, g, r = torch.meshgrid(v, v, v, indexing="ij")  # .cube order: red fastest
    rgb = torch.stack([r, g, b]).reshape(1, 3, 1, n**3)
    out = technicolor(rgb).reshape(3, -1).T
    lines = ['TITLE "vidcolor technicolor (docs/models/make_technicolor_lut.py)"', f"LUT_3D_SIZE {n}",
             "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    lines += [f"{x:.5f} {y:.5f} {z:.5f}" for x, y, z in out.tolist()]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
