"""warp, resize_flow and occlusion_mask: geometry on real images and Lai et al.'s occlusion rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.flow.conftest import to_tensor
from vidcolor.flow import flow_gradients, occlusion_mask, resize_flow, warp

MARGIN = 40  # pixels left out at the borders, where the shifted image had no data


def _affine_pair(img: np.ndarray, angle: float, shift: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``moved = img`` rotated by ``angle`` degrees about the centre and shifted by a sub-pixel
    ``shift`` (bicubic), and the exact flow with ``warp(moved, flow) == img``."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += shift
    moved = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # cv2.warpAffine: moved(m p) = img(p)  ->  img(p) = moved(p + flow(p)) with flow(p) = m p - p
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    fx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - xs
    fy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - ys
    flow = torch.from_numpy(np.stack([fx, fy])[None].astype(np.float32))
    return to_tensor(moved), flow


@pytest.mark.parametrize("which", ["sintel", "kodak"])
@pytest.mark.parametrize("angle,shift", [(0.0, (2.37, -1.61)), (4.0, (0.43, 0.71))], ids=["translation", "rotation"])
def test_warp_undoes_known_motion_of_a_real_image(request, which, angle, shift):
    img = request.getfixturevalue(which)
    img = img[0] if isinstance(img, list) else img
    # A camera image is band-limited; bilinear resampling of unfiltered pixel-level detail alone
    # costs ~1.5-4/255 whatever the geometry, so the test image gets a mild optical blur.
    img = np.ascontiguousarray(cv2.GaussianBlur(img, (0, 0), 1.0))
    moved, flow = _affine_pair(img, angle, shift)
    back = warp(moved, flow)
    inner = (slice(None), slice(None), slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    mae = (back - to_tensor(img))[inner].abs().mean().item()
    assert mae < 1 / 255
    # The test can tell a wrong convention: the opposite flow or a half-pixel offset is far worse.
    assert (warp(moved, -flow) - to_tensor(img))[inner].abs().mean().item() > 5 / 255
    assert (warp(moved, flow + 0.5) - to_tensor(img))[inner].abs().mean().item() > 2 * mae


def test_warp_zero_flow_is_identity_and_mask_marks_out_of_frame():
    x = torch.rand(2, 3, 9, 11)
    out, mask = warp(x, torch.zeros(2, 2, 9, 11), return_mask=True)
    assert torch.allclose(out, x, atol=1e-6)
    assert mask.shape == (2, 1, 9, 11) and bool((mask == 1).all())
    flow = torch.zeros(1, 2, 9, 11)
    flow[:, 0] = 3.0  # sample 3 px to the right: the last 3 columns fall outside
    out, mask = warp(x, flow, return_mask=True)  # one flow for the whole batch
    assert mask.shape == (2, 1, 9, 11)
    assert bool((mask[..., :8] == 1).all()) and bool((mask[..., 8:] == 0).all())
    assert torch.allclose(out[..., :8], x[..., 3:], atol=1e-6)
    assert torch.allclose(out[..., 8:], x[..., 10:11].expand(-1, -1, -1, 3), atol=1e-6)  # border replicate


def test_warp_validates_inputs():
    with pytest.raises(TypeError, match="torch.Tensor"):
        warp(np.zeros((1, 3, 4, 4)), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="does not match x size"):
        warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="batch"):
        warp(torch.zeros(3, 3, 4, 4), torch.zeros(2, 2, 4, 4))


def test_resize_flow_scales_vectors():
    flow = torch.zeros(1, 2, 10, 20)
    flow[:, 0], flow[:, 1] = 1.5, -2.0
    big = resize_flow(flow, (30, 80))
    assert big.shape == (1, 2, 30, 80)
    assert torch.allclose(big[:, 0], torch.full((1, 30, 80), 6.0)) and torch.allclose(big[:, 1], torch.full((1, 30, 80), -6.0))


def _lai_detect_occlusion(fw_flow: np.ndarray, bw_flow: np.ndarray) -> np.ndarray:
    """Lai et al.'s ``utils.detect_occlusion`` (fast_blind_video_consistency), re-typed in numpy with
    their argument names; (H, W, 2) flows; returns 1 = occluded. Their Resample2d warp is our warp."""
    t = lambda a: torch.from_numpy(a.transpose(2, 0, 1)[None].copy())
    fw_flow_w = warp(t(fw_flow), t(bw_flow))[0].numpy().transpose(1, 2, 0)
    fb_flow_sum = fw_flow_w + bw_flow
    mag = lambda f: f[:, :, 0] ** 2 + f[:, :, 1] ** 2
    mask1 = mag(fb_flow_sum) > 0.01 * (mag(fw_flow_w) + mag(bw_flow)) + 0.5
    h, w = bw_flow.shape[:2]
    du, dv = np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32)
    du[:, :-1] = bw_flow[:, :-1] - bw_flow[:, 1:]
    dv[:-1, :] = bw_flow[:-1, :] - bw_flow[1:, :]
    mask2 = (du[..., 0] ** 2 + dv[..., 0] ** 2 + du[..., 1] ** 2 + dv[..., 1] ** 2) > 0.01 * mag(bw_flow) + 0.002
    return np.logical_or(mask1, mask2).astype(np.float32)


def test_occlusion_mask_matches_lai_et_al_reference():
    # A square moving 6 px right over a still background: frame a -> b.
    h, w = 48, 64
    fw = np.zeros((h, w, 2), np.float32)   # a -> b
    bw = np.zeros((h, w, 2), np.float32)   # b -> a
    fw[16:32, 10:26, 0] = 6.0
    bw[16:32, 16:32, 0] = -6.0
    rng = np.random.default_rng(0)
    fw += rng.normal(0, 0.005, fw.shape).astype(np.float32)
    bw += rng.normal(0, 0.005, bw.shape).astype(np.float32)
    t = lambda a: torch.from_numpy(a.transpose(2, 0, 1)[None].copy())
    ours = occlusion_mask(t(fw), t(bw))[0, 0].numpy()
    # compute_flow_occlusion.py: the mask of frame t-1 is detect_occlusion(bw_flow, fw_flow).
    theirs = 1 - _lai_detect_occlusion(bw, fw)
    assert ours.shape == (h, w) and set(np.unique(ours)) <= {0.0, 1.0}
    assert np.array_equal(ours, theirs)
    assert ours[5, 5] == 1 and ours[40, 60] == 1            # still background: reliable
    assert ours[24, 9] == 0                                   # the square's left edge: motion boundary
    assert ours[24, 26:32].max() == 0                         # background the square covers in b: occluded
    assert ours[24, 12:24].min() == 1                         # the square itself is visible in both


def test_occlusion_mask_consistent_translation_is_reliable():
    fw = torch.zeros(1, 2, 20, 30)
    fw[:, 0] = 2.5
    assert bool((occlusion_mask(fw, -fw) == 1).all())
    gx, gy = flow_gradients(fw)
    assert gx.abs().max() == 0 and gy.abs().max() == 0
    with pytest.raises(ValueError, match="same shape"):
        occlusion_mask(fw, torch.zeros(1, 2, 20, 31))
