"""Objectives: the temporal loss on real frames, GAN loss, image pool, class rebalancing."""

from __future__ import annotations

import math

import numpy as np
import torch

from tests.conftest import REPO
from tests.training.conftest import train_clips
from vidcolor.metrics import delta_e_ciede2000
from vidcolor.training.decoding import decode_frames, resize_short
from vidcolor.training.losses import ABPrior, GANLoss, ImagePool, TemporalTerm, ciede2000_loss, temporal_loss
from vidcolor.training.objectives import build_objective
from vidcolor.training.recipe import load_recipe


def real_frames(n: int = 3, size: int = 64) -> torch.Tensor:
    """(1, n, 3, H, W) consecutive real frames in [0, 1]."""
    frames = np.stack([resize_short(f, size) for f in decode_frames(train_clips()[0], "decord", list(range(10, 10 + n)))])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None, :, :, :, :96]


def test_temporal_loss_is_zero_for_a_static_clip(data_dir):
    still = real_frames(1).expand(1, 4, -1, -1, -1).contiguous()  # the same frame four times
    flow, mask = TemporalTerm("dis").flows(still)
    assert flow.abs().max() < 1e-3 and mask.mean() == 1
    out = still * 2 - 1  # any per-frame function of a static input is static
    assert temporal_loss(out, flow, mask).item() < 1e-6  # zero up to float rounding in grid_sample


def test_temporal_loss_is_positive_for_flicker_and_small_for_consistent_motion(data_dir):
    clip = real_frames(4)
    flow, mask = TemporalTerm("dis").flows(clip)
    consistent = temporal_loss(clip, flow, mask).item()  # output = input: follows the motion
    flicker = clip + torch.tensor([0.0, 0.1, -0.1, 0.1]).view(1, 4, 1, 1, 1)
    flickering = temporal_loss(flicker, flow, mask).item()
    assert flickering > 0.1 and consistent < 0.05 and flickering > 3 * consistent


def test_temporal_loss_masks_occluded_pixels():
    out = torch.zeros(1, 2, 1, 8, 8)
    out[:, 1, :, :, :4] = 1.0  # change only in the left half
    flow = torch.zeros(1, 1, 2, 8, 8)
    mask = torch.ones(1, 1, 1, 8, 8)
    assert temporal_loss(out, flow, mask).item() == 0.5
    mask[..., :4] = 0  # left half occluded: nothing left to penalise
    assert temporal_loss(out, flow, mask).item() == 0.0


def test_gan_loss_modes():
    pred = torch.tensor([[2.0, -1.0]])
    assert GANLoss("lsgan")(pred, True).item() == ((1.0 + 4.0) / 2)
    assert abs(GANLoss("vanilla")(torch.zeros(3), False).item() - np.log(2)) < 1e-6


def test_image_pool_fills_then_swaps_and_round_trips():
    pool = ImagePool(size=4, seed=1)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    state = pool.state_dict()
    new = torch.full((6, 1, 1, 1), 9.0)
    a = pool.query(new)
    assert set(a.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0, 9.0} and (a != 9).any()
    pool2 = ImagePool(size=4, seed=1)
    pool2.load_state_dict(state)
    assert torch.equal(pool2.query(new), a)  # same history, same random draws


def test_rebalancing_weights_rare_colours_more():
    prior = ABPrior(lam=0.5)
    ab = torch.zeros(1, 2, 10, 10)
    ab[..., 0, :2] = torch.tensor([60.0, 40.0]).view(2, 1)  # 2 saturated pixels among 98 grey ones
    w = prior.weights(ab)
    assert w.shape == (1, 1, 10, 10)
    assert w[0, 0, 0, 0] > 5 * w[0, 0, 5, 5]
    assert abs(w.mean().item() - 1.0) < 1e-5  # mean 1 over the data seen: L1 keeps its scale


def _colours(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction/truth a*b* pairs covering the awkward cases: grey truth, (nearly) grey predictions, equal
    colours, nearly opposite hues, saturated blues (where CIEDE2000's rotation term R_T acts)."""
    g = torch.Generator().manual_seed(seed)
    truth, pred = torch.randn(6, 2, 12, 12, generator=g) * 40, torch.randn(6, 2, 12, 12, generator=g) * 40
    truth[0] = 0
    pred[1] *= 1e-3  # nearly grey
    pred[5, :, :3] = 0  # exactly grey
    pred[2, :, :6] = truth[2, :, :6]
    turn = torch.tensor(math.radians(170.0))  # nearly opposite hues (exactly opposite is the metric's knife edge)
    pred[3, 0] = truth[3, 0] * torch.cos(turn) - truth[3, 1] * torch.sin(turn)
    pred[3, 1] = truth[3, 0] * torch.sin(turn) + truth[3, 1] * torch.cos(turn)
    truth[4, 0], truth[4, 1] = 10.0, -60.0  # hue ~ 280 deg
    return pred, truth


def test_ciede2000_loss_is_the_eval_metric_with_finite_gradients_at_grey():
    pred, truth = _colours()
    L = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(1)) * 100
    metric = delta_e_ciede2000(torch.cat([L, pred], 1), torch.cat([L, truth], 1))
    pred.requires_grad_(True)
    loss = ciede2000_loss(pred, truth)
    assert loss.shape == (6, 12, 12)
    assert (loss.double() - metric).abs().max() < 1e-4
    loss.mean().backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[1].abs().min() > 0  # a nearly grey prediction of a coloured truth is pulled towards it


def test_ciede2000_loss_descends_to_the_truth():
    _, truth = _colours(2)
    ab = (torch.randn(truth.shape, generator=torch.Generator().manual_seed(3)) * 0.01).requires_grad_(True)  # ~grey
    opt = torch.optim.Adam([ab], lr=1.0)
    start = ciede2000_loss(ab, truth).mean().item()
    for _ in range(300):
        opt.zero_grad()
        ciede2000_loss(ab, truth).mean().backward()
        opt.step()
    assert ciede2000_loss(ab.detach(), truth).mean().item() < 0.05 * start


def test_pix2pix_step_with_the_ciede2000_term_logs_and_trains_it():
    r = load_recipe(REPO / "configs/train/colorize_tiny.toml",
                    {"objective.lambda_ciede": "1", "objective.lambda_l1": "0", "objective.lambda_gan": "0"})
    torch.manual_seed(0)
    obj = build_objective(r, torch.device("cpu"))
    opts = {g: torch.optim.Adam(obj.parameters(g), lr=1e-3) for g in obj.groups}
    g = torch.Generator().manual_seed(0)
    base = torch.tensor([0.7, 0.3, 0.2]).view(1, 1, 3, 1, 1)  # one warm colour under varying light
    batch = {"a": (base * torch.rand(4, 1, 1, 32, 32, generator=g) * 1.2).clamp(0, 1)}
    logs = [obj.step(batch, opts) for _ in range(30)]
    assert all("CIEDE2000" in x for x in logs) and logs[0]["G"] == logs[0]["CIEDE2000"]
    assert logs[-1]["CIEDE2000"] < 0.5 * logs[0]["CIEDE2000"]


def _effunet_recipe(**sets: str):
    return load_recipe(REPO / "configs/train/colorize_effunet.toml",
                       {"data.crop": "64", "data.load_size": "64", **sets})


def test_ab_bin_cross_entropy_learns_a_colour_the_encoder_cannot_see_in_grey():
    """The default colorizer's objective: soft-encoded cross-entropy over ab bins (no L1, no GAN). On a
    batch of one warm colour under varying light the decoded colour moves to it."""
    r = _effunet_recipe(**{"model.kwargs.frozen_blocks": "16"})
    torch.manual_seed(0)
    obj = build_objective(r, torch.device("cpu"))
    assert obj.prior is None and "D" not in obj.groups  # no rebalancing, no discriminator step
    opts = {g: torch.optim.Adam([p for p in obj.parameters(g) if p.requires_grad], lr=3e-3) for g in obj.groups}
    g = torch.Generator().manual_seed(0)
    base = torch.tensor([0.7, 0.3, 0.2]).view(1, 1, 3, 1, 1)
    batch = {"a": (base * torch.rand(4, 1, 1, 64, 64, generator=g) * 1.2).clamp(0, 1)}
    logs = [obj.step(batch, opts) for _ in range(15)]
    assert all("CE" in x for x in logs) and logs[0]["G"] == logs[0]["CE"]
    assert logs[-1]["CE"] < 0.75 * logs[0]["CE"]
    assert logs[-1]["L1"] < 0.9 * logs[0]["L1"]  # the decoded (annealed-mean) ab follows


def test_ab_bin_classifier_with_the_patchgan_term_updates_both_networks():
    """The adversarial term stays available for the classifier: D judges (L, decoded ab) pairs."""
    r = _effunet_recipe(**{"objective.lambda_gan": "1", "model.kwargs.frozen_blocks": "16"})
    torch.manual_seed(0)
    obj = build_objective(r, torch.device("cpu"))
    opts = {g: torch.optim.Adam([p for p in obj.parameters(g) if p.requires_grad], lr=1e-3) for g in obj.groups}
    d_before = [p.clone() for p in obj.nets["D"].parameters()]
    head_before = obj.nets["G"].head.weight.clone()
    batch = {"a": torch.rand(2, 1, 3, 64, 64, generator=torch.Generator().manual_seed(1))}
    logs = obj.step(batch, opts)
    assert {"D", "G_GAN", "CE"} <= set(logs)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, obj.nets["D"].parameters()))
    assert not torch.equal(head_before, obj.nets["G"].head.weight)
