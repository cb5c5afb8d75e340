"""Training objectives: pix2pix and CycleGAN, with the loss terms of ``training/losses.py``.

* pix2pix (Isola et al., CVPR 2017, eq. 4): a conditional PatchGAN sees (input, output) pairs;
  G minimises ``lambda_gan * GAN(D(x, G(x)), real) + lambda_l1 * |y - G(x)|_1`` (λ_L1 = 100),
  optionally with the class-rebalanced L1, the CIEDE2000 term and the temporal loss.
* CycleGAN (Zhu et al., ICCV 2017, §3-4 and §7.1): LSGAN losses for G_A: A -> B (judged by D_A)
  and G_B: B -> A (judged by D_B), cycle consistency λ_cyc = 10, identity
  ``λ_id * λ_cyc`` with λ_id = 0.5, discriminators fed from a history pool of 50 fakes
  (Shrivastava et al. 2017, as upstream ``util/image_pool.py``).

Models see tensors in their own ranges: colorize input ``(L - 50) / 50`` ``(N, 1, H, W)`` in
[-1, 1] and output ``ab / 110`` ``(N, 2, H, W)`` in [-1, 1] (the convention of our weights'
``l_norm = [50, 50]``, ``ab_scale = 110``); stylize RGB in [-1, 1] both ways;
superres and restoration RGB in [0, 1] both ways.

Each objective owns its networks and does one full optimisation step per batch. Networks that
must synchronise gradients across processes are called through ``wrap`` (DistributedDataParallel
under torchrun): one wrapped forward per backward, so every module pair that is evaluated twice
(a discriminator on real and fake) is wrapped as one module.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.models.networks import NLayerDiscriminator, get_norm_layer
from vidcolor.training.losses import (ABPrior, GANLoss, ImagePool, TemporalTerm, ciede2000_loss,
                                      temporal_loss)
from vidcolor.training.recipe import ObjectiveConfig, Recipe
from vidcolor.training.restoration import restoration_pair

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
    pairs made here), for superres (the crop area-downscaled by ``G.scale`` -> the crop, RGB in
    [0, 1]; L1 alone), ``{"a", "b"}`` aligned RGB clips for stylize, or degraded and clean clips for
    restoration (``training/restoration.py``); all in [0, 1].
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
        if self.cfg.task == "superres":  # the crop area-downscaled by the network's scale -> the crop
            scale = self.nets["G"].scale
            low = F.avg_pool2d(a.flatten(0, 1), scale).unflatten(0, a.shape[:2])
            return low, a, a
        if self.cfg.task == "colorize":
            lab = rgb_to_lab(a)
            L, ab = lab[:, :, :1], lab[:, :, 1:]
            return (L - L_NORM[0]) / L_NORM[1], ab / AB_SCALE, L / 100.0
        b = batch["b"].to(self.device, non_blocking=True)
        if self.cfg.task == "restoration":  # the degraded clip on channels -> the clean middle frame
            return (*restoration_pair(a, b), a)
        return a * 2 - 1, b * 2 - 1, a

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        """Generator on ``(N, C, H, W)`` model-space input (inference helper for samples and eval)."""
        return self.nets["G"](x)

    def step(self, batch: dict, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        cfg = self.cfg
        inp, target, flow_src = self.prepare(batch)
        B, T = inp.shape[:2]
        x, y = inp.flatten(0, 1), target.flatten(0, 1)
        logits = None
        with self.autocast():
            if cfg.lambda_class > 0:  # ab-bin logits (effunet); the decoded annealed mean is the output
                logits = self.G_run(x, logits=True)
                fake = self.nets["G"].decode(logits, tuple(x.shape[-2:]))
            else:
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
            if logits is not None:
                loss_cls = self.class_loss(logits.float(), y * AB_SCALE)
                total = total + cfg.lambda_class * loss_cls
                logs["CE"] = loss_cls.item()
            err = (fake.float() - y).abs()
            if self.prior is not None and logits is None:
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
            base = 0 if cfg.task == "colorize" else x
            if cfg.task == "superres":  # bicubic upsampling is the baseline
                base = F.interpolate(x, size=y.shape[-2:], mode="bicubic", align_corners=False)
            if cfg.task == "restoration":  # the degraded middle frame is the baseline
                base = self.nets["G"].middle(x)
            logs["L1_base"] = (y - base).abs().mean().item()
            if self.temporal is not None:
                flow, mask = self.temporal.flows(flow_src)
                loss_t = temporal_loss(fake.float().view(B, T, *fake.shape[1:]), flow, mask)
                total = total + cfg.lambda_temporal * loss_t
                logs["temporal"] = loss_t.item()
        self.backward_step("G", total, opts["G"])
        set_requires_grad([D], True)
        logs["G"] = total.item()
        return logs

    def class_loss(self, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Zhang et al. 2016 eq. 2: cross-entropy between the bin logits and the soft-encoded true ab
        (area-averaged to the logits' resolution), each pixel weighted by the class rebalancing of
        eq. 3-4 when ``rebalance`` > 0."""
        from vidcolor.models.effunet import soft_encode

        ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
        target = soft_encode(ab_small, self.nets["G"].centers)
        ce = -(target * torch.log_softmax(logits, dim=1)).sum(1, keepdim=True)
        if self.prior is not None:
            ce = ce * self.prior.weights(ab_small)
        return ce.mean()

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
    if hasattr(net, "init_weights"):  # networks with pretrained parts (effunet: its ImageNet encoder)
        net.init_weights(recipe.model.init_gain)
        return net
    return init_weights(net, recipe.model.init_gain)


def build_discriminator(recipe: Recipe, input_nc: int) -> nn.Module:
    d = recipe.discriminator
    return init_weights(NLayerDiscriminator(input_nc, ndf=d.ndf, n_layers=d.n_layers, norm_layer=get_norm_layer(d.norm)),
                        recipe.model.init_gain)


def build_objective(recipe: Recipe, device: torch.device, wrap: Wrap | None = None, rank: int = 0) -> Objective:
    """Networks initialised from the recipe's seed (call after seeding torch) and the objective."""
    o, seed, amp = recipe.objective, recipe.train.seed, recipe.train.amp
    if o.kind in ("style", "critic"):
        raise ValueError(f"kind {o.kind!r} objectives are built by vidcolor.training.trainer.make_objective")
    if o.kind == "pix2pix":
        G = build_generator(recipe)
        d_in = 3 if o.task == "colorize" else 6  # conditional D sees (input, output) concatenated
        return Pix2Pix(G, build_discriminator(recipe, d_in), o, device, wrap, seed, amp)
    G_A, G_B = build_generator(recipe), build_generator(recipe)
    return CycleGAN(G_A, G_B, build_discriminator(recipe, 3), build_discriminator(recipe, 3), o, device, wrap, seed,
                    amp, rank)
