"""``objective.kind = "critic"``: a PatchGAN trained alone to tell real frames from damaged copies.

There is no generator. Each step, every frame of the batch's clips is a real sample, and a copy of
each frame damaged by one corruption, drawn per frame with equal probability, is its fake:

* ``blur``: Gaussian blur, sigma uniform in ``BLUR_SIGMA`` pixels;
* ``noise``: additive Gaussian noise per pixel and channel, sigma uniform in ``NOISE_SIGMA`` (on [0, 1]);
* ``jpeg``: JPEG compression (OpenCV) at a quality drawn uniformly from ``JPEG_QUALITY``;
* ``resample``: shrunk by a factor uniform in ``RESAMPLE_FACTOR`` (area), then enlarged back (bilinear).

The ranges reach down to barely visible damage, so D must look closely rather than only learn the
obvious cases. Fakes are rounded to 8-bit levels, as the real frames are (decoded 8-bit, resized
to ``data.load_size`` in 8 bits): quantisation alone tells nothing. The draws of step ``s`` on rank
``r`` come from ``numpy.random.default_rng([seed, 0, s, r])`` (and the noise from a torch generator
seeded by it), so a resumed run corrupts exactly as an uninterrupted one; the step count is saved
with the objective's state.

Loss: ``0.5 * (GAN(D(real), real) + GAN(D(fake), fake))`` with the recipe's ``gan_mode`` (BCE with
logits or LSGAN), D called once on real and fake together (one DDP forward; batch norm statistics
over the mixed batch, which is what its running statistics see). Logged: ``D``, ``D_real``,
``D_fake`` and ``acc_real`` / ``acc_fake``, the fraction of frames whose score
(:func:`vidcolor.critic.patch_scores`) is on the right side of 0.5. The checkpoint keeps ``D``,
which :func:`vidcolor.critic.load_critic` turns into ``vidcolor eval --critic RUN``'s realism score.
The ``lambda_*`` weights and ``pool_size`` of ``[objective]`` are not used.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.critic import patch_scores
from vidcolor.training.objectives import Objective, Wrap, build_discriminator
from vidcolor.training.recipe import ObjectiveConfig, Recipe

CORRUPTIONS = ("blur", "noise", "jpeg", "resample")
BLUR_SIGMA = (0.4, 2.0)
NOISE_SIGMA = (3 / 255, 20 / 255)
JPEG_QUALITY = (10, 60)
RESAMPLE_FACTOR = (1.3, 3.0)
NOISE_TOO = 0.5


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(N, C, H, W)`` blurred by a separable Gaussian of ``sigma`` px (reflected borders)."""
    radius = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] through an OpenCV JPEG round trip at ``quality``."""
    import cv2

    out = []
    for frame in x.detach().cpu():
        rgb = frame.permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        back = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append(torch.from_numpy(back).permute(2, 0, 1).float() / 255)
    return torch.stack(out).to(x.device, x.dtype)


def resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrunk by ``factor`` (area) and enlarged back to the same size (bilinear)."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def corrupt(frames: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, list[str]]:
    """A damaged copy of each frame of ``(N, 3, H, W)`` in [0, 1] (kinds and strengths drawn from
    ``rng``, see the module docstring), rounded to 8-bit levels; and the kind used for each frame."""
    out, kinds = [], []
    for frame in frames:
        kind = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
        x = frame[None].float()
        if kind != "noise" and rng.random() < NOISE_TOO:
            kind += "+noise"
        if kind.startswith("blur"):
            x = gaussian_blur(x, float(rng.uniform(*BLUR_SIGMA)))
        elif kind.startswith("jpeg"):
            x = jpeg(x, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
        elif kind.startswith("resample"):
            x = resample(x, float(rng.uniform(*RESAMPLE_FACTOR)))
        if kind.endswith("noise"):
            sigma = float(rng.uniform(*NOISE_SIGMA))
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            x = x + sigma * torch.randn(x.shape, generator=gen).to(x.device)
        out.append(x.clamp(0, 1).mul(255).round().div(255))
        kinds.append(kind)
    return torch.cat(out).to(frames.dtype), kinds


class CriticObjective(Objective):
    """D alone: real frames -> real, their corrupted copies -> fake (module docstring)."""

    groups = {"D": ["D"]}

    def __init__(self, D: torch.nn.Module, cfg: ObjectiveConfig, device: torch.device, wrap: Wrap | None = None,
                 seed: int = 0, amp: bool = True, rank: int = 0):
        self.nets = {"D": D.to(device)}
        super().__init__(cfg, device, wrap, seed, amp)
        self.D_run = self.wrap(self.nets["D"])
        self.seed, self.rank, self.steps_done = int(seed), int(rank), 0

    def step(self, batch: dict, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        real = batch["a"].to(self.device, non_blocking=True).flatten(0, 1)
        rng = np.random.default_rng([self.seed, 0, self.steps_done, self.rank])
        fake, _ = corrupt(real, rng)
        with self.autocast():
            pred = self.D_run(torch.cat([real, fake]) * 2 - 1)
            pred_real, pred_fake = pred[: len(real)], pred[len(real):]
            loss_real, loss_fake = self.gan(pred_real, True), self.gan(pred_fake, False)
            loss = 0.5 * (loss_real + loss_fake)
        self.backward_step("D", loss, opts["D"])
        self.steps_done += 1
        with torch.no_grad():
            s_real, s_fake = patch_scores(pred_real, self.cfg.gan_mode), patch_scores(pred_fake, self.cfg.gan_mode)
        return {"D": loss.item(), "D_real": loss_real.item(), "D_fake": loss_fake.item(),
                "acc_real": (s_real > 0.5).float().mean().item(), "acc_fake": (s_fake < 0.5).float().mean().item()}

    @torch.no_grad()
    def sample_rows(self, batch: dict, n: int) -> list[tuple[str, torch.Tensor]]:
        """The first frame of up to ``n`` clips and a corrupted copy of each (draws of their own)."""
        real = batch["a"][:n, 0].to(self.device)
        fake, _ = corrupt(real, np.random.default_rng([self.seed, 1, self.steps_done]))
        return [("real", real), ("corrupted", fake)]

    def extra_state(self) -> dict:
        return {**super().extra_state(), "steps_done": self.steps_done}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.steps_done = int(state["steps_done"])


def build_critic_objective(recipe: Recipe, device: torch.device, wrap: Wrap | None, seed: int,
                           amp: bool) -> CriticObjective:
    """A fresh ``NLayerDiscriminator(3, ...)`` of the recipe's ``[discriminator]`` and its objective."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    return CriticObjective(build_discriminator(recipe, 3), recipe.objective, device, wrap, seed, amp, rank)
