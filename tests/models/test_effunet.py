"""The ImageNet-encoder colorizer (vidcolor.models.effunet): bins, soft targets, decoding, the pretrained
encoder, frozen blocks, batch-norm folding, and the cross-entropy objective training it."""

from __future__ import annotations

import copy

import pytest
import torch

from vidcolor.color import lab_to_rgb
from vidcolor.models.efficientnet import EfficientNetLite0Weights
from vidcolor.models.effunet import AB_SCALE, ab_bin_centers, soft_encode
from vidcolor.models.registry import build_model
from vidcolor.models.runtime import fold_batch_norm, prepare_model


def test_bins_are_the_in_gamut_cells_of_the_ab_grid():
    c = ab_bin_centers(10.0)
    assert c.shape[1] == 2 and 200 < c.shape[0] < 330  # Zhang et al. count 313 on their gamut sampling
    assert (c % 10 == 0).all() and [0.0, 0.0] in c.tolist()
    # every centre is the rounded ab of some sRGB colour: at a mid lightness most are displayable
    lab = torch.cat([torch.full((1, 1, len(c), 1), 60.0), c.T.reshape(1, 2, -1, 1)], 1)
    assert lab_to_rgb(lab, clip=False).isfinite().all()
    # and cells far outside sRGB (saturated green-blue corner) are not bins
    assert [-110.0, -110.0] not in c.tolist()


def test_soft_encoding_is_a_distribution_peaked_at_the_nearest_bin():
    c = ab_bin_centers()
    ab = torch.tensor([[12.0, 40.0], [-31.0, 3.0]]).view(1, 2, 1, 2)  # two pixels: (12, -31) and (40, 3)
    t = soft_encode(ab, c)
    assert t.shape == (1, len(c), 1, 2)
    assert torch.allclose(t.sum(1), torch.ones(1, 1, 2))
    for j in range(2):
        best = int(t[0, :, 0, j].argmax())
        nearest = int(((c - ab[0, :, 0, j]) ** 2).sum(1).argmin())
        assert best == nearest
        assert (t[0, :, 0, j] > 0).sum() == 5


def _model(**kw):
    torch.manual_seed(0)
    return build_model("effunet", **kw)


def test_decode_annealed_mean_and_gain():
    m = _model()
    q = m.bins
    centres = m.centers
    k = int(((centres - torch.tensor([30.0, 20.0])) ** 2).sum(1).argmin())
    z = torch.zeros(1, q, 2, 3)
    z[:, k] = 8.0  # a confident prediction of bin k
    mode = m.decode(z, temperature=0.01)
    assert torch.allclose(mode * AB_SCALE, centres[k].view(1, 2, 1, 1).expand(1, 2, 2, 3), atol=1e-3)
    mean = m.decode(z, temperature=1.0)
    # the mean is pulled towards the other bins: less chroma than the mode
    assert mean.norm(dim=1).mean() < mode.norm(dim=1).mean()
    half = m.decode(z, temperature=0.01, chroma_gain=0.5)
    assert torch.allclose(half, mode * 0.5, atol=1e-6)
    assert m.decode(z, size=(8, 12)).shape == (1, 2, 8, 12)
    # uniform logits decode to the mean of the bins, and the output is at the input size
    out = m(torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 2, 64, 96)


def test_confidence_gain_boosts_sure_pixels_and_leaves_uniform_ones():
    m = _model()
    q = m.bins
    z = torch.zeros(1, q, 1, 2)
    k = int(((m.centers - torch.tensor([30.0, 20.0])) ** 2).sum(1).argmin())
    z[0, k, 0, 0] = 40.0  # pixel 0: all mass on one bin; pixel 1: uniform
    plain = m.decode(z, temperature=0.3)
    bold = m.decode(z, temperature=0.3, confidence_gain=1.0)
    assert torch.allclose(bold[..., 0], plain[..., 0] * 2, atol=1e-5)   # confidence 1: gain 1 + 1
    assert torch.allclose(bold[..., 1], plain[..., 1], atol=1e-6)       # confidence 0: unchanged
    assert torch.equal(m.decode(z, temperature=0.3, confidence_gain=0.0), plain)
    with pytest.raises(ValueError, match="confidence_gain"):
        _model(confidence_gain=-1)


def test_init_weights_loads_the_imagenet_encoder_and_a_neutral_head():
    m = _model()
    m.init_weights()
    ref = EfficientNetLite0Weights.DEFAULT.value.state_dict()
    own = m.encoder.state_dict()
    assert own and all(torch.equal(v, ref[k]) for k, v in own.items())
    assert not any(k.startswith(("_fc", "_conv_head")) for k in own)
    assert m.head.weight.abs().sum() == 0  # every bin equally likely before training


def test_frozen_blocks_get_no_gradient_and_encoder_batch_norm_keeps_imagenet_statistics():
    m = _model(frozen_blocks=9)
    m.init_weights()
    m.train()
    bn_before = m.encoder._blocks[12]._bn1.running_mean.clone()
    with torch.no_grad():
        m.head.weight.normal_(0, 0.1)  # the zero head of a fresh model passes no gradient back yet
    z = m(torch.randn(2, 1, 64, 64), logits=True)
    z.square().mean().backward()
    assert all(p.grad is None for p in m.encoder._blocks[8].parameters())
    assert m.encoder._conv_stem.weight.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder._blocks[9].parameters())
    assert m.head.weight.grad is not None
    assert torch.equal(m.encoder._blocks[12]._bn1.running_mean, bn_before)
    assert m.up8.body[1].training  # the decoder's batch norm does train


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_inference_preparation_folds_encoder_batch_norm_without_changing_the_output(dtype):
    m = _model()
    m.init_weights()
    with torch.no_grad():
        m.head.weight.normal_(0, 0.2)
    m.eval()
    x = torch.randn(2, 1, 64, 96)
    with torch.inference_mode():
        ref = m(x)
        assert fold_batch_norm(copy.deepcopy(m)) >= 1 + 16 * 2 + 6  # stem, every block, decoder
        fast = prepare_model(copy.deepcopy(m), torch.device("cpu"), dtype=dtype)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = fast(x.contiguous(memory_format=torch.channels_last)).float()
    tol = 1e-5 if dtype is None else 0.03
    assert (out - ref).abs().max() < tol * max(1.0, float(ref.abs().max()) * 10)


def test_bad_keywords_are_clear():
    with pytest.raises(ValueError, match="encoder"):
        build_model("effunet", encoder="resnet50")
    with pytest.raises(ValueError, match="out_stride"):
        build_model("effunet", out_stride=8)
    with pytest.raises(ValueError, match="temperature"):
        build_model("effunet", temperature=0)
