"""A realism score per frame from the discriminator of a ``vidcolor train`` run.

    from vidcolor.critic import load_critic
    critic = load_critic("runs/critic")          # the last checkpoint (or step=N)
    scores = critic.score(frames)                # (N, 3, H, W) RGB in [0, 1] -> (N,), higher = more real

Which discriminator (an unconditional PatchGAN, ``NLayerDiscriminator(3, ...)`` built from the
run's ``[discriminator]`` table):

* ``objective.kind = "critic"`` (``training/critic.py``): ``D`` trained alone to tell real frames
  from blurred, noisy, JPEG-compressed and resampled copies of them: a score of picture quality;
* ``"style"``: ``D`` of a painting style (real = crops of the painting): how painting-like a frame is;
* ``"cyclegan"``: ``D_B``, which judges domain B (real = the ``--data-b`` footage).

A pix2pix discriminator is conditional (it sees the input and the output together) and cannot
judge a frame alone; a run whose discriminator was never trained (``lambda_gan = 0``) has no critic.

**Scale.** D returns a map of patch logits ``(N, 1, H', W')`` (each patch about 70x70 pixels for
``n_layers = 3``, 34x34 for 2). The score is the mean over the patches of ``sigmoid(D)`` for
``gan_mode = "vanilla"`` runs: the mean probability that a patch is real, in (0, 1); and of ``D``
itself for ``"lsgan"`` runs, which D learns to push to 1 for real and 0 for fake (about [0, 1],
not bounded). Either way 0.5 is the critic's boundary between real and fake, and scores compare
frames judged by one critic, not critics with each other.

**Input.** Frames in [0, 1] are mapped to [-1, 1], as the training objectives feed D. By default
frames are first resized so their short side is the run's ``data.load_size`` (area averaging when
shrinking), the scale D saw in training: blur, noise and block sizes are judged in pixels, so a
full-HD frame would otherwise look far sharper and cleaner to D than the same picture at 144 px.
D runs in eval mode (batch norm with its running statistics), so a frame's score does not depend
on the other frames of the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.errors import InputError

# objective.kind -> the unconditional RGB discriminator of its checkpoint
CRITIC_NETS = {"critic": "D", "style": "D", "cyclegan": "D_B"}


def patch_scores(logits: torch.Tensor, gan_mode: str) -> torch.Tensor:
    """``(N, 1, H', W')`` D outputs -> ``(N,)`` scores on the scale of the module docstring."""
    patches = torch.sigmoid(logits.float()) if gan_mode == "vanilla" else logits.float()
    return patches.flatten(1).mean(1)


def min_size(n_layers: int) -> int:
    """The smallest side a PatchGAN of ``n_layers`` can judge (one output patch)."""
    return 3 * 2**n_layers


@dataclass
class Critic:
    """A trained discriminator in eval mode; :meth:`score` judges frames."""

    net: nn.Module
    gan_mode: str
    size: int          # data.load_size of the run: frames are judged at this short side
    kind: str          # the run's objective.kind
    step: int          # the checkpoint's step
    run_dir: str
    n_layers: int = 3
    device: torch.device = torch.device("cpu")
    chunk: int = 8     # frames per forward (bounds memory at full HD)

    @torch.no_grad()
    def score(self, frames: torch.Tensor, resize: bool = True) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in [0, 1] -> ``(N,)`` float32 on the CPU, higher = more real.
        ``resize``: judge the frames at the run's training scale (short side ``size``)."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise InputError(f"critic: frames must be (N, 3, H, W) RGB, got shape {tuple(frames.shape)}")
        h, w = frames.shape[-2:]
        if resize and min(h, w) != self.size:
            scale = self.size / min(h, w)
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
        if min(h, w) < min_size(self.n_layers):
            raise InputError(f"critic: frames of {h}x{w} are too small for this critic "
                             f"(at least {min_size(self.n_layers)} px a side)")
        out = []
        for part in frames.split(self.chunk):
            x = part.to(self.device, torch.float32)
            if tuple(x.shape[-2:]) != (h, w):
                shrink = h < x.shape[-2]
                x = F.interpolate(x, size=(h, w), mode="area" if shrink else "bilinear",
                                  **({} if shrink else {"align_corners": False}))
            out.append(patch_scores(self.net(x.clamp(0, 1) * 2 - 1), self.gan_mode).cpu())
        return torch.cat(out) if out else torch.zeros(0)


def load_critic(run_dir: str | Path, step: int | None = None, device: str | torch.device = "cpu") -> Critic:
    """The discriminator of ``run_dir``'s last checkpoint (or the one of ``step``) as a :class:`Critic`.
    One-line :class:`InputError` when the folder has no checkpoint or its discriminator cannot judge
    frames alone."""
    from vidcolor.models.networks import NLayerDiscriminator, get_norm_layer
    from vidcolor.training import checkpoint as ckpt
    from vidcolor.training.recipe import recipe_from_dict

    run_dir = Path(run_dir)
    path = ckpt.find_checkpoint(run_dir, step)
    data = ckpt.load_checkpoint(path)
    recipe = recipe_from_dict(data["recipe"], f"{path} (recipe)")
    o, d = recipe.objective, recipe.discriminator
    if o.kind not in CRITIC_NETS:
        raise InputError(f"{run_dir}: a {o.kind} run's discriminator is conditional (it judges input and output "
                         "together), not a critic of frames; train one with kind 'critic' (configs/train/critic.toml)")
    if o.kind != "critic" and o.lambda_gan == 0:
        raise InputError(f"{run_dir}: its discriminator was never trained (objective.lambda_gan = 0)")
    key = CRITIC_NETS[o.kind]
    net = NLayerDiscriminator(3, ndf=d.ndf, n_layers=d.n_layers, norm_layer=get_norm_layer(d.norm))
    try:
        net.load_state_dict(data["nets"][key])
    except (KeyError, RuntimeError) as exc:
        raise InputError(f"{path}: no usable discriminator {key!r} ({type(exc).__name__})") from None
    device = torch.device(device)
    return Critic(net.to(device).eval(), o.gan_mode, recipe.data.load_size, o.kind, int(data["step"]), str(run_dir),
                  d.n_layers, device)
