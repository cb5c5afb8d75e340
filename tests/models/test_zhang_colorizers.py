"""Zhang et al. ECCV16 / SIGGRAPH17 state dicts (their key layout) import, run, and change ab only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reference_layouts import make_state_dict, zhang_eccv16, zhang_siggraph17
from vidcolor.color import rgb_to_lab
from vidcolor.models.importers import import_checkpoint
from vidcolor.stages import Chunk
from vidcolor.stages.colorize import Colorize


def grey_frame(shared_data: Path) -> torch.Tensor:
    from PIL import Image

    path = shared_data / "images" / "bw_historical_deoldify" / "1888Slum.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rgb = np.array(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()  # (1, 3, H, W)


@pytest.mark.parametrize("arch,layout", [("eccv16", zhang_eccv16), ("siggraph17", zhang_siggraph17)])
def test_zhang_checkpoint_colorizes_real_grey_frame(arch, layout, tmp_path: Path, vidcolor_home: Path,
                                                    shared_data: Path) -> None:
    # the released file is a bare state dict: {"model1.0.weight": ..., ...}
    ckpt = tmp_path / f"{arch}.pth"
    state = make_state_dict(layout(), seed=1, std=0.02)
    # Random trunks give near-uniform class scores; make the ab read-out non-trivial (a warm tint)
    # so "ab changed" is a real check: ECCV16 maps the 313-way softmax through model_out (the bin
    # centres / 110), SIGGRAPH17 regresses through model_out.0 + tanh.
    if arch == "eccv16":
        state["model_out.weight"][0] += 0.3
        state["model_out.weight"][1] -= 0.2
    else:
        state["model_out.0.bias"] = torch.tensor([0.3, -0.2])
    torch.save(state, ckpt)
    del state
    result = import_checkpoint(ckpt, name=f"test-{arch}")
    assert (result.arch, result.task) == (arch, "colorize")
    stage = Colorize(weights=f"test-{arch}", render_size=64)
    assert stage.config["l_norm"] == [50.0, 100.0] and stage.config["ab_scale"] == 110.0

    x = grey_frame(shared_data)
    out = stage.process(Chunk(x, 0)).frames
    assert out.shape == x.shape
    lab_in, lab_out = rgb_to_lab(x), rgb_to_lab(out)
    # L untouched (within float rounding, far below one 8-bit code value), ab changed
    assert (lab_out[:, :1] - lab_in[:, :1]).abs().max() < 0.25
    assert lab_in[:, 1:].abs().mean() < 2.0  # the photo really is grey
    assert (lab_out[:, 1:] - lab_in[:, 1:]).abs().mean() > 0.5
