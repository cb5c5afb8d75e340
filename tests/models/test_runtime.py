"""Inference preparation: batch norm folded into convolutions, weights in the autocast dtype."""

from __future__ import annotations

import copy

import torch
from torch import nn

from vidcolor.models.registry import build_model
from vidcolor.models.runtime import fold_batch_norm, prepare_model, run_padded


def _trained_looking(model: nn.Module) -> nn.Module:
    """Random running statistics and affine parameters, as after training (fresh ones are 0/1)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def test_folding_keeps_the_unet_function() -> None:
    torch.manual_seed(0)
    model = _trained_looking(build_model("unet", input_nc=1, output_nc=2, num_downs=5, ngf=8, norm="batch"))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 1, 64, 96)
    with torch.inference_mode():
        ref = model(x)
        folded = copy.deepcopy(model)
        assert fold_batch_norm(folded) == n_bn > 0
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        out = folded(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_instance_norm_and_training_mode_are_left_alone() -> None:
    model = build_model("resnet", input_nc=3, output_nc=3, ngf=8, n_blocks=2, norm="instance").eval()
    assert fold_batch_norm(model) == 0
    unet = build_model("unet", input_nc=1, output_nc=2, num_downs=5, ngf=8, norm="batch").train()
    assert fold_batch_norm(unet) == 0  # batch statistics are used while training: nothing to fold


def test_prepare_model_bf16_weights_match_autocast() -> None:
    torch.manual_seed(0)
    model = _trained_looking(build_model("unet", input_nc=1, output_nc=2, num_downs=5, ngf=8, norm="batch"))
    x = torch.randn(2, 1, 64, 96)
    with torch.inference_mode():
        ref = model(x)
        fp32 = prepare_model(copy.deepcopy(model), torch.device("cpu"))
        torch.testing.assert_close(run_padded(fp32, x, 32, None), ref, atol=1e-5, rtol=1e-4)
        bf16 = prepare_model(copy.deepcopy(model), torch.device("cpu"), dtype=torch.bfloat16)
        convs = [m for m in bf16.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
        out = run_padded(bf16, x, 32, torch.bfloat16)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05  # bf16 rounding of a tanh output in [-1, 1]
