"""Training objectives: pix2pix, CycleGAN and the flow-warped temporal loss.

* pix2pix (Isola et al., CVPR 2017, eq. 4): a conditional PatchGAN sees (input, output) pairs;
  G minimises ``lambda_gan * GAN(D(x, G(x)), real) + lambda_l1 * |y - G(x)|_1`` (λ_L1 = 100).
* CycleGAN (Zhu et al., ICCV 2017, §3-4 and §7.1): LSGAN losses for G_A: A -> B (judged by D_A)
  and G_B: B -> A (judged by D_B), cycle consistency λ_cyc = 10, identity
  ``λ_id * λ_cyc`` with λ_id = 0.5, discriminators fed from a history pool of 50 fakes
  (Shrivastava et al. 2017, as upstream ``util/image_pool.py``).
* Temporal (as Lai et al., ECCV 2018, §3.2 short-term loss, and the ARCHITECTURE note):
  ``mean(M ⊙ |G(x_t) − warp(G(x_{t−1}), F_{t→t−1})|)`` with F computed on the *input* frames
  (DIS, or RAFT frozen) and M the forward-backward occlusion mask of Lai et al.
* Optional CIEDE2000 term (``lambda_ciede``): the eval metric's per-pixel colour difference
  (Sharma et al. 2005) between output and truth, made differentiable at grey (``ciede2000_loss``).
* Optional class rebalancing of the colour regression (Zhang et al., ECCV 2016, §2.2, eq. 4):
  each target pixel's L1 is weighted by ``((1-λ) p̃(bin) + λ/Q)^-1`` (normalised to mean 1 over
  the data seen), with p̃ the smoothed empirical ab distribution, so rare saturated colours are not averaged
  into brown (the L1 minimiser is the conditional median, which desaturates multimodal colours).

Models see tensors in their own ranges: colorize input ``(L - 50) / 50`` ``(N, 1, H, W)`` in
[-1, 1] and output ``ab / 110`` ``(N, 2, H, W)`` in [-1, 1] (the convention of our weights'
``l_norm = [50, 50]``, ``ab_scale = 110``); stylize RGB in [-1, 1] both ways.

Each objective owns its networks and does one full optimisation step per batch. Networks that
must synchronise gradients across processes are called through ``wrap`` (DistributedDataParallel
under torchrun): one wrapped forward per backward, so every module pair that is evaluated twice
(a discriminator on real and fake) is wrapped as one module.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.flow import occlusion_mask, warp
from vidcolor.metrics import ciede2000_g, ciede2000_weights
from vidcolor.models.networks import NLayerDiscriminator, get_norm_layer
from vidcolor.training.recipe import ObjectiveConfig, Recipe

L_NORM = (50.0, 50.0)
AB_SCALE = 110.0


# -- building blocks -------------------------------------------------------------------------------
def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Upstream ``init_weights(init_type="normal")``: conv/linear weights N(0, gain), biases 0,
    batch-norm weights N(1, gain)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


class GANLoss(nn.Module):
    """Upstream ``networks.GANLoss``: ``lsgan`` = MSE to 1/0 (Mao et al. 2017), ``vanilla`` = BCE with
    logits (Goodfellow et al. 2014). Takes discriminator logits of any shape."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"gan mode must be 'lsgan' or 'vanilla', got {mode!r}")
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


class ImagePool:
    """History of generated images (upstream ``util/image_pool.py``): ``query`` returns, per image,
    either the new image or (with probability 1/2, once the pool is full) a stored one that the new
    image replaces. Its random draws come from its own generator, saved with the pool."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images = int(size), []
        self.rng = np.random.default_rng([seed, 50])

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                i = int(self.rng.integers(self.size))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])
        self.rng.bit_generator.state = state["rng"]


class PairForward(nn.Module):
    """``forward(x, y) -> (net(x), net(y))``: one module call for two inputs (one DDP forward)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), self.net(y)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


# -- temporal loss -----------------------------------------------------------------------------------
def temporal_loss(outputs: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Short-term temporal loss of a clip of outputs.

    Args:
        outputs: ``(B, T, C, H, W)`` generator outputs (any range), T >= 2.
        flow: ``(B, T-1, 2, H, W)`` pixels: entry t-1 is F_{t→t−1}, so ``warp(frame_{t-1}, F) ~= frame_t``.
        mask: ``(B, T-1, 1, H, W)`` in {0, 1}: 1 where frame t is visible in frame t-1.

    Returns:
        scalar: mean over masked values of ``|out_t − warp(out_{t−1}, F_{t→t−1})|`` (0 when no pixel
        is reliable).
    """
    if outputs.dim() != 5 or outputs.shape[1] < 2:
        raise ValueError(f"outputs must be (B, T>=2, C, H, W), got {tuple(outputs.shape)}")
    b, t, c, h, w = outputs.shape
    prev = outputs[:, :-1].reshape(b * (t - 1), c, h, w)
    cur = outputs[:, 1:].reshape(b * (t - 1), c, h, w)
    warped = warp(prev, flow.reshape(b * (t - 1), 2, h, w))
    m = mask.reshape(b * (t - 1), 1, h, w)
    diff = (cur - warped).abs() * m
    return diff.sum() / (m.sum() * c).clamp(min=1.0)


# -- colour-difference loss ----------------------------------------------------------------------------
def _sqrt0(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` with a zero (not NaN) gradient where ``x <= 0``."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def ciede2000_loss(ab: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between ``(L, ab)`` and ``(L, ab_true)`` for any shared L*: the eval
    metric as a loss (a colorizer keeps the input's L*, so ΔL' = 0 and S_L does not enter).

    Args:
        ab, ab_true: ``(N, 2, H, W)`` a*, b* in CIE units (prediction, truth).

    Returns:
        ``(N, H, W)`` float32: the value of ``vidcolor.metrics.delta_e_ciede2000`` (Sharma et al.
        2005), with finite gradients everywhere, grey and exactly matching pixels included. Two
        changes make it differentiable: ΔH' comes from ``2 (C1' C2' − a1' a2' − b1 b2)`` (= ΔH'²,
        eq. 11 without the hue angles; its sign from the cross product), and the weights that
        depend on the colours' mean chroma and hue (G, S_C, S_H, R_T) are held constant in the
        backward pass, so the gradient pulls the prediction towards the truth in the metric's own
        weighting and never rewards adding chroma just to enlarge S_C. Computed in float64 (ΔH'²
        is a difference of nearly equal products).
    """
    a1, b1 = ab_true.double().unbind(1)
    a2, b2 = ab.double().unbind(1)
    with torch.no_grad():
        g = ciede2000_g(a1, b1, a2, b2)                                                    # (4)
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)                                                  # (5)
    c1p, c2p = _sqrt0(a1p * a1p + b1 * b1), _sqrt0(a2p * a2p + b2 * b2)                    # (6)
    dCp = c2p - c1p                                                                        # (9)
    cross = a1p * b2 - b1 * a2p  # sign of h2' - h1'
    dHp = torch.where(cross < 0, -1.0, 1.0) * _sqrt0(2 * (c1p * c2p - a1p * a2p - b1 * b2))  # (11)
    with torch.no_grad():
        h1p = torch.atan2(b1, a1p) % (2 * math.pi)                                          # (7)
        h2p = torch.atan2(b2, a2p) % (2 * math.pi)
        s_c, s_h, r_t = ciede2000_weights(c1p, c2p, h1p, h2p)
    c_term, h_term = dCp / s_c, dHp / s_h
    return _sqrt0(c_term**2 + h_term**2 + r_t * c_term * h_term).float()                  # (22)


class TemporalTerm:
    """Flow and occlusion mask for clips, from a frozen estimator (``dis``, ``raft_small``, ``raft_large``)."""

    def __init__(self, flow: str = "dis", device: str | torch.device = "cpu"):
        import cv2

        from vidcolor.flow import get_flow_estimator

        # OpenCV's thread pool next to torch's on the same cores stalled training steps for seconds
        # under load (measured: 60 tiny steps 7.7 s without the temporal term, 49 s with it);
        # the flows of small training crops gain nothing from threads.
        cv2.setNumThreads(1)
        self.estimator, self.name = get_flow_estimator(flow, device=device)

    @torch.no_grad()
    def flows(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` ``(B, T, C, H, W)`` in [0, 1] (C = 1 or 3) -> (F_{t→t−1} ``(B, T-1, 2, H, W)``,
        mask ``(B, T-1, 1, H, W)``)."""
        b, t, c, h, w = frames.shape
        cur = frames[:, 1:].reshape(-1, c, h, w).float()
        prev = frames[:, :-1].reshape(-1, c, h, w).float()
        back = self.estimator(cur, prev).to(frames.device)   # warp(prev, back) ~= cur
        fwd = self.estimator(prev, cur).to(frames.device)
        mask = occlusion_mask(back, fwd)                      # reliable pixels of frame t
        return back.view(b, t - 1, 2, h, w), mask.view(b, t - 1, 1, h, w)


# -- class rebalancing (Zhang et al. 2016) --------------------------------------------------------------
class ABPrior:
    """Running distribution of target ab over 10x10 bins in [-110, 110]^2 and Zhang's rebalancing
    weights. The histogram is a running sum (checkpointed), so weights follow the data seen."""

    BINS, STEP = 22, 10.0
    Q = 313  # in-gamut bins of the 10-unit ab grid (Zhang et al. 2016 §2.1)

    def __init__(self, lam: float = 0.5, sigma: float = 5.0):
        self.lam, self.sigma = float(lam), float(sigma)
        self.counts = torch.zeros(self.BINS * self.BINS, dtype=torch.float64)

    def bins(self, ab: torch.Tensor) -> torch.Tensor:
        """ab in Lab units ``(N, 2, H, W)`` -> bin index ``(N, 1, H, W)``."""
        q = ((ab + 110.0) / self.STEP).floor().clamp(0, self.BINS - 1).long()
        return q[:, :1] * self.BINS + q[:, 1:]

    def weights(self, ab: torch.Tensor) -> torch.Tensor:
        """Update the histogram with ``ab`` ``(N, 2, H, W)`` (Lab units) and return the per-pixel
        weights ``(N, 1, H, W)`` (mean 1 under the smoothed prior)."""
        idx = self.bins(ab)
        self.counts += torch.bincount(idx.flatten().cpu(), minlength=self.counts.numel()).double()
        p = (self.counts / self.counts.sum()).view(1, 1, self.BINS, self.BINS).float()
        k = torch.arange(-2, 3, dtype=torch.float32) * self.STEP
        g = torch.exp(-k**2 / (2 * self.sigma**2))
        g = g / g.sum()
        p = F.conv2d(F.conv2d(p, g.view(1, 1, 5, 1), padding=(2, 0)), g.view(1, 1, 1, 5), padding=(0, 2)).flatten()
        w = 1.0 / ((1 - self.lam) * p + self.lam / self.Q)
        # Zhang eq. 4 normalises E_p~[w] = 1 under the smoothed prior; we normalise under the
        # empirical distribution instead, so the weighted L1 keeps the scale of the plain L1 (and
        # lambda_l1 its meaning).
        emp = (self.counts / self.counts.sum()).float()
        w = w / (emp * w).sum()
        return w.to(ab.device)[idx]

    def state_dict(self) -> dict:
        return {"counts": self.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()


# -- the objectives ------------------------------------------------------------------------------------
Wrap = Callable[[nn.Module], nn.Module]


class Objective:
    """Common parts: networks by name, optimizer groups, autocast, extra state."""

    nets: dict[str, nn.Module]
    groups: dict[str, list[str]]  # optimizer name -> names of the nets it updates

    def __init__(self, cfg: ObjectiveConfig, device: torch.device, wrap: Wrap | None, seed: int, amp: bool):
        self.cfg, self.device = cfg, device
        self.wrap = wrap or (lambda m: m)
        self.gan = GANLoss(cfg.gan_mode)
        self.temporal = TemporalTerm(cfg.flow, device) if cfg.lambda_temporal > 0 else None
        self.use_amp = bool(amp and device.type == "cuda")
        self.scalers = {name: torch.amp.GradScaler("cuda", enabled=self.use_amp) for name in self.groups}

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else contextlib.nullcontext()

    def parameters(self, group: str) -> list[nn.Parameter]:
        return [p for name in self.groups[group] for p in self.nets[name].parameters()]

    def backward_step(self, group: str, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        scaler = self.scalers[group]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def extra_state(self) -> dict:
        return {"scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_extra_state(self, state: dict) -> None:
        for k, s in self.scalers.items():
            s.load_state_dict(state["scalers"][k])

    def train(self, flag: bool = True) -> None:
        for net in self.nets.values():
            net.train(flag)


class Pix2Pix(Objective):
    """Conditional GAN + L1 (+ temporal, + rebalancing) on paired data.

    ``step(batch, opts)``: batch ``{"a": (B, T, 3, H, W)}`` colour clips for colorize (L -> ab
    pairs made here) or ``{"a", "b"}`` aligned RGB clips for stylize; both in [0, 1].
    """

    groups = {"G": ["G"], "D": ["D"]}

    def __init__(self, G: nn.Module, D: nn.Module, cfg: ObjectiveConfig, device: torch.device,
                 wrap: Wrap | None = None, seed: int = 0, amp: bool = True):
        self.nets = {"G": G.to(device), "D": D.to(device)}
        if cfg.lambda_gan == 0:  # plain regression: D is kept (uniform checkpoints) but never trained
            self.groups = {"G": ["G"]}
        super().__init__(cfg, device, wrap, seed, amp)
        self.G_run = self.wrap(self.nets["G"])
        self.D_pair = self.wrap(PairForward(self.nets["D"])) if cfg.lambda_gan > 0 else None
        self.prior = ABPrior(cfg.rebalance) if cfg.rebalance > 0 and cfg.task == "colorize" else None

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (model input, target, frames for flow), each ``(B, T, C, H, W)``."""
        a = batch["a"].to(self.device, non_blocking=True)
        if self.cfg.task == "colorize":
            lab = rgb_to_lab(a)
            L, ab = lab[:, :, :1], lab[:, :, 1:]
            return (L - L_NORM[0]) / L_NORM[1], ab / AB_SCALE, L / 100.0
        b = batch["b"].to(self.device, non_blocking=True)
        return a * 2 - 1, b * 2 - 1, a

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        """Generator on ``(N, C, H, W)`` model-space input (inference helper for samples and eval)."""
        return self.nets["G"](x)

    def step(self, batch: dict, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        cfg = self.cfg
        inp, target, flow_src = self.prepare(batch)
        B, T = inp.shape[:2]
        x, y = inp.flatten(0, 1), target.flatten(0, 1)
        with self.autocast():
            fake = self.G_run(x)
        logs: dict[str, float] = {}
        D = self.nets["D"]
        if self.D_pair is not None:  # 1. update D: real pairs -> 1, fake pairs -> 0 (eq. 1)
            set_requires_grad([D], True)
            with self.autocast():
                pred_real, pred_fake = self.D_pair(torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1))
                loss_D = 0.5 * (self.gan(pred_real, True) + self.gan(pred_fake, False))
            self.backward_step("D", loss_D, opts["D"])
            logs["D"] = loss_D.item()
            set_requires_grad([D], False)
        # 2. update G: fool D (D called unwrapped: its gradients are not needed) + L1 + temporal
        with self.autocast():
            total = torch.zeros((), device=self.device)
            if self.D_pair is not None:
                loss_gan = self.gan(D(torch.cat([x, fake], 1)), True)
                total = total + cfg.lambda_gan * loss_gan
                logs["G_GAN"] = loss_gan.item()
            err = (fake.float() - y).abs()
            if self.prior is not None:
                weights = self.prior.weights(y * AB_SCALE)
                loss_l1 = (err * weights).mean()
                logs["L1_plain"] = err.mean().item()
            else:
                loss_l1 = err.mean()
            total = total + cfg.lambda_l1 * loss_l1
            logs["L1"] = loss_l1.item()
            if cfg.lambda_ciede > 0:  # the eval metric itself, in CIE units (outputs keep the input's L*)
                loss_de = ciede2000_loss(fake.float() * AB_SCALE, y * AB_SCALE).mean()
                total = total + cfg.lambda_ciede * loss_de
                logs["CIEDE2000"] = loss_de.item()
            # The L1 of a grey / identity answer on this batch: batches differ a lot in colour, so
            # L1 / L1_base is the comparable measure of progress across steps.
            logs["L1_base"] = (y - (0 if cfg.task == "colorize" else x)).abs().mean().item()
            if self.temporal is not None:
                flow, mask = self.temporal.flows(flow_src)
                loss_t = temporal_loss(fake.float().view(B, T, *fake.shape[1:]), flow, mask)
                total = total + cfg.lambda_temporal * loss_t
                logs["temporal"] = loss_t.item()
        self.backward_step("G", total, opts["G"])
        set_requires_grad([D], True)
        logs["G"] = total.item()
        return logs

    def extra_state(self) -> dict:
        state = super().extra_state()
        if self.prior is not None:
            state["prior"] = self.prior.state_dict()
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        if self.prior is not None:
            self.prior.load_state_dict(state["prior"])


class GeneratorPair(nn.Module):
    """Both CycleGAN generators in one forward: ``(a, b) -> fake_b, rec_a, fake_a, rec_b, idt_a, idt_b``
    (idt_a = G_A(b), idt_b = G_B(a); None when ``identity`` is off)."""

    def __init__(self, G_A: nn.Module, G_B: nn.Module, identity: bool):
        super().__init__()
        self.G_A, self.G_B, self.identity = G_A, G_B, identity

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        fake_b, fake_a = self.G_A(a), self.G_B(b)
        rec_a, rec_b = self.G_B(fake_b), self.G_A(fake_a)
        idt_a = self.G_A(b) if self.identity else None
        idt_b = self.G_B(a) if self.identity else None
        return fake_b, rec_a, fake_a, rec_b, idt_a, idt_b


class DiscriminatorPair(nn.Module):
    """``(real_b, fake_b, real_a, fake_a) -> D_A(real_b), D_A(fake_b), D_B(real_a), D_B(fake_a)``."""

    def __init__(self, D_A: nn.Module, D_B: nn.Module):
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, real_b, fake_b, real_a, fake_a):
        return self.D_A(real_b), self.D_A(fake_b), self.D_B(real_a), self.D_B(fake_a)


class CycleGAN(Objective):
    """Unpaired A <-> B translation; ``step(batch, opts)`` with ``{"a", "b"}`` RGB clips in [0, 1].
    G_A (A -> B) is the exported generator; the temporal term applies to G_A on clips of A."""

    groups = {"G": ["G_A", "G_B"], "D": ["D_A", "D_B"]}

    def __init__(self, G_A: nn.Module, G_B: nn.Module, D_A: nn.Module, D_B: nn.Module, cfg: ObjectiveConfig,
                 device: torch.device, wrap: Wrap | None = None, seed: int = 0, amp: bool = True, rank: int = 0):
        self.nets = {"G_A": G_A.to(device), "G_B": G_B.to(device), "D_A": D_A.to(device), "D_B": D_B.to(device)}
        super().__init__(cfg, device, wrap, seed, amp)
        self.G_pair = self.wrap(GeneratorPair(G_A, G_B, cfg.lambda_identity > 0))
        self.D_pair = self.wrap(DiscriminatorPair(D_A, D_B))
        self.pool_a = ImagePool(cfg.pool_size, seed * 1000 + 2 * rank)
        self.pool_b = ImagePool(cfg.pool_size, seed * 1000 + 2 * rank + 1)

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["G_A"](x)

    def step(self, batch: dict, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        cfg = self.cfg
        a_clip = batch["a"].to(self.device, non_blocking=True)
        B, T = a_clip.shape[:2]
        real_a = a_clip.flatten(0, 1) * 2 - 1
        real_b = batch["b"].to(self.device, non_blocking=True).flatten(0, 1) * 2 - 1
        D_A, D_B = self.nets["D_A"], self.nets["D_B"]
        logs: dict[str, float] = {}
        # 1. generators (upstream order: G first, with the discriminators frozen)
        set_requires_grad([D_A, D_B], False)
        with self.autocast():
            fake_b, rec_a, fake_a, rec_b, idt_a, idt_b = self.G_pair(real_a, real_b)
            loss_g_a = self.gan(D_A(fake_b), True)
            loss_g_b = self.gan(D_B(fake_a), True)
            loss_cyc = (rec_a - real_a).abs().mean() + (rec_b - real_b).abs().mean()
            total = cfg.lambda_gan * (loss_g_a + loss_g_b) + cfg.lambda_cycle * loss_cyc
            if idt_a is not None:
                loss_idt = (idt_a - real_b).abs().mean() + (idt_b - real_a).abs().mean()
                total = total + cfg.lambda_cycle * cfg.lambda_identity * loss_idt
                logs["idt"] = loss_idt.item()
            if self.temporal is not None:
                flow, mask = self.temporal.flows(a_clip)
                loss_t = temporal_loss(fake_b.float().view(B, T, *fake_b.shape[1:]), flow, mask)
                total = total + cfg.lambda_temporal * loss_t
                logs["temporal"] = loss_t.item()
        self.backward_step("G", total, opts["G"])
        logs.update(G_A=loss_g_a.item(), G_B=loss_g_b.item(), cycle=loss_cyc.item(), G=total.item())
        # 2. discriminators on real vs pooled fakes
        set_requires_grad([D_A, D_B], True)
        pooled_b, pooled_a = self.pool_b.query(fake_b.detach()), self.pool_a.query(fake_a.detach())
        with self.autocast():
            pr_b, pf_b, pr_a, pf_a = self.D_pair(real_b, pooled_b, real_a, pooled_a)
            loss_d_a = 0.5 * (self.gan(pr_b, True) + self.gan(pf_b, False))
            loss_d_b = 0.5 * (self.gan(pr_a, True) + self.gan(pf_a, False))
        self.backward_step("D", loss_d_a + loss_d_b, opts["D"])
        logs.update(D_A=loss_d_a.item(), D_B=loss_d_b.item())
        return logs

    def extra_state(self) -> dict:
        return {**super().extra_state(), "pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])


# -- construction from a recipe ----------------------------------------------------------------------
def generator_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The generator's builder keywords, with channel counts from the task."""
    kw = dict(recipe.model.kwargs)
    if recipe.model.arch in ("unet", "resnet"):
        cin, cout = (1, 2) if recipe.objective.task == "colorize" else (3, 3)
        kw.setdefault("input_nc", cin)
        kw.setdefault("output_nc", cout)
    return kw


def build_generator(recipe: Recipe) -> nn.Module:
    from vidcolor.models.registry import build_model

    try:
        net = build_model(recipe.model.arch, **generator_kwargs(recipe))
    except (TypeError, ValueError) as exc:
        from vidcolor.errors import InputError

        raise InputError(f"recipe {recipe.name!r}: model: {exc}") from None
    multiple = int(getattr(net, "size_multiple", 1))
    if recipe.data.crop % multiple:
        from vidcolor.errors import InputError

        raise InputError(f"data.crop must be a multiple of {multiple} for this {recipe.model.arch} "
                         f"(2**num_downs for a U-Net), got {recipe.data.crop}")
    if recipe.model.init_from:
        from vidcolor.models.pretrained import load_pretrained

        pretrained, _ = load_pretrained(recipe.model.init_from)
        net.load_state_dict(pretrained.state_dict())
        return net
    return init_weights(net, recipe.model.init_gain)


def build_discriminator(recipe: Recipe, input_nc: int) -> nn.Module:
    d = recipe.discriminator
    return init_weights(NLayerDiscriminator(input_nc, ndf=d.ndf, n_layers=d.n_layers, norm_layer=get_norm_layer(d.norm)),
                        recipe.model.init_gain)


def build_objective(recipe: Recipe, device: torch.device, wrap: Wrap | None = None, rank: int = 0) -> Objective:
    """Networks initialised from the recipe's seed (call after seeding torch) and the objective."""
    o, seed, amp = recipe.objective, recipe.train.seed, recipe.train.amp
    if o.kind == "pix2pix":
        G = build_generator(recipe)
        d_in = 3 if o.task == "colorize" else 6  # conditional D sees (input, output) concatenated
        return Pix2Pix(G, build_discriminator(recipe, d_in), o, device, wrap, seed, amp)
    G_A, G_B = build_generator(recipe), build_generator(recipe)
    return CycleGAN(G_A, G_B, build_discriminator(recipe, 3), build_discriminator(recipe, 3), o, device, wrap, seed,
                    amp, rank)
