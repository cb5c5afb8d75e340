"""``objective.kind = "style"``: a painting style trained from one picture, for video.

The network (usually ``paintnet``) learns to repaint any frame in the manner of ``style_image``
(Johnson, Alahi, Fei-Fei 2016), steadily over time (ReCoNet: Gao et al. 2018). The losses, each
with its ``[objective]`` weight, on the output ``y = G(x)`` of every frame of a clip:

* ``lambda_content``: perceptual content — mean squared difference between the stride-8 features
  of ``y`` and of the colour frame (frozen ImageNet EfficientNet-Lite0, :mod:`vidcolor.models.features`),
  divided by the mean square of the frame's features (a relative error, so weights are unit-free);
* ``lambda_style``: the sum over strides 2, 4, 8 of the mean squared difference between the
  Gram matrices of ``y`` and of the painting (read once at short side ``style_size``), each divided
  by the mean square of the painting's Gram matrix;
* ``lambda_tv``: total variation of ``y`` (mean absolute horizontal + vertical difference);
* ``lambda_temporal``: output temporal loss — ``|y_t - warp(y_{t-1})|`` on pixels that the flow of
  the input frames marks visible in both (forward-backward occlusion check, ``objective.flow``);
* ``lambda_feature_temporal``: the same on the network's 1/8-size feature map with the flow and mask
  scaled down (ReCoNet's feature-map temporal loss): steadiness learnt before the decoder;
* ``lambda_gan`` (0 = off): an unconditional PatchGAN ``D`` learns to tell random crops of the
  painting from crops of outputs, and ``G`` is pushed to fool it (vanilla or LSGAN, ``gan_mode``);
  the content loss keeps the frame's content while it does; G and D steps alternate every batch;
* ``from_grey``: ``G`` sees the frame's grey version (L*, repeated on three channels) and must
  return it coloured and painted (one network for black-and-white film); ``lambda_color`` weighs the
  L1 distance of the output's a*b* to the colour frame's (/ 110, at 1/4 size: the colour, not the
  brush strokes). The content target stays the colour frame.

Clips come from :class:`vidcolor.training.datasets.ClipDataset` (``data.clip_len`` frames, 2 is
enough for the temporal terms); the checkpoint keeps ``G`` (exported as a stylize model) and ``D``
(``vidcolor eval --critic RUN`` scores with it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab, rgb_to_lightness
from vidcolor.errors import InputError
from vidcolor.models.features import CONTENT_TAP, STYLE_TAPS, PerceptualFeatures, gram
from vidcolor.training.losses import temporal_loss
from vidcolor.training.objectives import Objective, Wrap, set_requires_grad
from vidcolor.training.recipe import ObjectiveConfig


def read_painting(path: str, short_side: int) -> torch.Tensor:
    """``(1, 3, H, W)`` RGB in [0, 1], short side ``short_side``; one-line InputError when unreadable."""
    from pathlib import Path

    from vidcolor.training.decoding import read_image, resize_short

    if not Path(path).expanduser().is_file():
        raise InputError(f"style image not found: {path}")
    try:
        rgb = resize_short(read_image(str(Path(path).expanduser())), short_side)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the same user error
        raise InputError(f"{path}: cannot read the style image ({exc})") from None
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0


def grey_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] -> its lightness as grey RGB (the input of a joint style)."""
    return (rgb_to_lightness(rgb) / 100.0).expand(-1, 3, -1, -1).contiguous()


def scale_flow(flow: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow ``(N, 2, H, W)`` in pixels and mask ``(N, 1, H, W)`` resized to ``size``: the flow area-
    averaged and its vectors scaled, the mask kept only where every covered pixel was reliable."""
    h, w = flow.shape[-2:]
    small = F.adaptive_avg_pool2d(flow, size)
    small = small * torch.tensor([size[1] / w, size[0] / h], device=flow.device).view(1, 2, 1, 1)
    return small, -F.adaptive_max_pool2d(-mask, size)


class StyleObjective(Objective):
    """See the module docstring. ``step(batch)``: batch ``{"a": (B, T, 3, H, W)}`` colour clips in [0, 1]."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, cfg: ObjectiveConfig, device: torch.device,
                 wrap: Wrap | None = None, seed: int = 0, amp: bool = True):
        self.nets = {"G": G.to(device), "D": D.to(device)}
        self.groups = {"G": ["G"], "D": ["D"]} if cfg.lambda_gan > 0 else {"G": ["G"]}
        super().__init__(cfg, device, wrap, seed, amp)
        self.G_run = self.wrap(self.nets["G"])
        self.D_run = self.wrap(self.nets["D"]) if cfg.lambda_gan > 0 else None
        self.features = PerceptualFeatures(STYLE_TAPS).to(device)
        self.content_index = STYLE_TAPS.index(CONTENT_TAP)
        self.painting = read_painting(cfg.style_image, cfg.style_size).to(device)
        with torch.no_grad():
            self.style_grams = [gram(f) for f in self.features(self.painting)]
        self.style_scale = [g.pow(2).mean().clamp(min=1e-12) for g in self.style_grams]
        self.crops = torch.Generator().manual_seed(int(seed) + 7)  # painting patches for D

    def model_input(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` colour frames in [0, 1] -> what G sees, in [-1, 1]."""
        return (grey_rgb(frames) if self.cfg.from_grey else frames) * 2 - 1

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["G"](x)

    def _run_g(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.G_run
        if hasattr(self.nets["G"], "features") and net is self.nets["G"]:
            out, feat = net.features(self.model_input(frames))
        else:  # DDP-wrapped or a generator without a feature map: the output alone
            out, feat = net(self.model_input(frames)), None
        return (out.float() + 1) / 2, feat

    def painting_patches(self, n: int, size: tuple[int, int]) -> torch.Tensor:
        """``n`` random crops of the painting of ``size`` (resized up first when the painting is smaller)."""
        p = self.painting
        if p.shape[-2] < size[0] or p.shape[-1] < size[1]:
            scale = max(size[0] / p.shape[-2], size[1] / p.shape[-1])
            p = F.interpolate(p, scale_factor=scale, mode="bilinear", align_corners=False)
        ys = torch.randint(0, p.shape[-2] - size[0] + 1, (n,), generator=self.crops).tolist()
        xs = torch.randint(0, p.shape[-1] - size[1] + 1, (n,), generator=self.crops).tolist()
        return torch.cat([p[:, :, y:y + size[0], x:x + size[1]] for y, x in zip(ys, xs)])

    def step(self, batch: dict, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        cfg = self.cfg
        clips = batch["a"].to(self.device, non_blocking=True)
        B, T = clips.shape[:2]
        frames = clips.flatten(0, 1)
        out, feat = self._run_g(frames)
        feats = self.features(out)
        with torch.no_grad():
            target = self.features(frames)[self.content_index]
        logs: dict[str, float] = {}
        content = (feats[self.content_index] - target).pow(2).mean() / target.pow(2).mean().clamp(min=1e-12)
        style = sum(((gram(f) - g).pow(2).mean() / s) for f, g, s in zip(feats, self.style_grams, self.style_scale))
        loss = cfg.lambda_content * content + cfg.lambda_style * style
        logs.update(content=float(content.detach()), style=float(style.detach()))
        if cfg.lambda_tv > 0:
            tv = (out[..., 1:, :] - out[..., :-1, :]).abs().mean() + (out[..., 1:] - out[..., :-1]).abs().mean()
            loss = loss + cfg.lambda_tv * tv
            logs["tv"] = float(tv.detach())
        if self.temporal is not None and T >= 2:
            src = grey_rgb(frames).unflatten(0, (B, T)) if cfg.from_grey else clips
            flow, mask = self.temporal.flows(src)
            t_out = temporal_loss(out.unflatten(0, (B, T)), flow, mask)
            loss = loss + cfg.lambda_temporal * t_out
            logs["temporal"] = float(t_out.detach())
            if cfg.lambda_feature_temporal > 0 and feat is not None:
                f = feat.float().unflatten(0, (B, T))
                sf, sm = scale_flow(flow.flatten(0, 1), mask.flatten(0, 1), tuple(f.shape[-2:]))
                t_feat = temporal_loss(f, sf.unflatten(0, (B, T - 1)), sm.unflatten(0, (B, T - 1)))
                loss = loss + cfg.lambda_feature_temporal * t_feat
                logs["feature_temporal"] = float(t_feat.detach())
        if cfg.from_grey and cfg.lambda_color > 0:
            ab_out = F.avg_pool2d(rgb_to_lab(out)[:, 1:], 4)
            ab_true = F.avg_pool2d(rgb_to_lab(frames)[:, 1:], 4)
            color = (ab_out - ab_true).abs().mean() / 110.0
            loss = loss + cfg.lambda_color * color
            logs["color"] = float(color.detach())
        if self.D_run is not None:
            set_requires_grad([self.nets["D"]], False)
            g_gan = self.gan(self.D_run(out * 2 - 1), True)
            loss = loss + cfg.lambda_gan * g_gan
            logs["G_gan"] = float(g_gan.detach())
        self.backward_step("G", loss, opts["G"])
        logs["G"] = float(loss.detach())
        if self.D_run is not None:
            set_requires_grad([self.nets["D"]], True)
            real = self.painting_patches(out.shape[0], tuple(out.shape[-2:])) * 2 - 1
            fake = out.detach() * 2 - 1
            d_loss = 0.5 * (self.gan(self.D_run(real), True) + self.gan(self.D_run(fake), False))
            self.backward_step("D", d_loss, opts["D"])
            logs["D"] = float(d_loss.detach())
        return logs

    @torch.no_grad()
    def sample_rows(self, batch: dict, n: int) -> list[tuple[str, torch.Tensor]]:
        frames = batch["a"][:n, 0].to(self.device)
        out = (self.generate(self.model_input(frames)).float() + 1) / 2
        shown = grey_rgb(frames) if self.cfg.from_grey else frames
        painting = F.interpolate(self.painting, size=frames.shape[-2:], mode="bilinear", align_corners=False)
        return [("input", shown), ("output", out.clamp(0, 1)), ("painting", painting.expand(len(frames), -1, -1, -1))]

    def extra_state(self) -> dict:
        return {**super().extra_state(), "crops": self.crops.get_state()}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.crops.set_state(state["crops"])
