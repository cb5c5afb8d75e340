"""RAFT (Teed & Deng, ECCV 2020) from ``torchvision.models.optical_flow``, with a small weights resolver.

Weights are torchvision's published checkpoints (URL and sha256 prefix from the
``Raft_Small_Weights`` / ``Raft_Large_Weights`` enums). torchvision names each file
``<name>-<first 8 hex of sha256>.pth`` (e.g. ``raft_small_C_T_V2-01064c6d.pth``); ``torch.hub``
checks that prefix when it downloads. The resolver looks, in order, in

1. ``$VIDCOLOR_HOME/weights/torchvision/`` (``vidcolor.paths.home_dir()``),
2. torch's own cache, ``$TORCH_HOME/hub/checkpoints/`` (``torch.hub.get_dir()``), where files
   fetched by ``torchvision.models.optical_flow.raft_small(weights=...)`` already live,

and downloads into (1) with ``check_hash=True`` only when the file is in neither. Like torchvision,
a file already in a cache is trusted (its hash is checked on download, not on every load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidcolor.errors import WeightsError
from vidcolor.flow.base import check_pair

SIZES = ("small", "large")
MIN_SIZE = 128  # torchvision's Raft_*_Weights meta["min_size"]


def _weights_enum(size: str):
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    if size not in SIZES:
        raise ValueError(f"RAFT size must be one of {SIZES}, got {size!r}")
    return Raft_Small_Weights if size == "small" else Raft_Large_Weights


def raft_weights(size: str = "small", weights: Any = None):
    """The torchvision ``Weights`` entry for ``size``: ``weights`` may be None (the enum's
    ``DEFAULT``), a member name such as ``"C_T_V2"``, or a member of the enum."""
    enum = _weights_enum(size)
    if weights is None or weights == "DEFAULT":
        return enum.DEFAULT
    if isinstance(weights, enum):
        return weights
    if isinstance(weights, str) and weights in enum.__members__:
        return enum[weights]
    raise ValueError(f"unknown RAFT-{size} weights {weights!r} (known: {', '.join(enum.__members__)})")


def cache_dirs() -> list[Path]:
    """Where cached torchvision checkpoints are looked for, first match wins."""
    from vidcolor.paths import home_dir

    return [home_dir() / "weights" / "torchvision", Path(torch.hub.get_dir()) / "checkpoints"]


def weights_filename(size: str = "small", weights: Any = None) -> str:
    """File name torchvision gives the checkpoint, e.g. ``raft_small_C_T_V2-01064c6d.pth``."""
    return raft_weights(size, weights).url.rsplit("/", 1)[-1]


def find_cached_weights(size: str = "small", weights: Any = None) -> Path | None:
    """Path of the cached checkpoint, or None. Never touches the network."""
    name = weights_filename(size, weights)
    for folder in cache_dirs():
        if (folder / name).is_file():
            return folder / name
    return None


def load_raft_state_dict(size: str = "small", weights: Any = None, *, allow_download: bool = True,
                         progress: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """Resolve and load a RAFT state dict (``weights_only=True``, on CPU).

    ``weights`` may also be a path to a ``.pth`` state dict. Returns ``(state_dict, where)`` with
    ``where`` the file it came from. Raises ``WeightsError`` when the file is missing and cannot
    be downloaded (offline, checksum mismatch).
    """
    if isinstance(weights, (str, Path)) and str(weights).endswith((".pth", ".pt")):
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"RAFT weights file {path} not found")
    else:
        entry = raft_weights(size, weights)
        path = find_cached_weights(size, weights)
        if path is None:
            target = cache_dirs()[0]
            if not allow_download:
                raise WeightsError(f"RAFT-{size} weights {weights_filename(size, weights)} not cached "
                                   f"(looked in {', '.join(map(str, cache_dirs()))})")
            try:
                state = torch.hub.load_state_dict_from_url(entry.url, model_dir=str(target), map_location="cpu",
                                                           progress=progress, check_hash=True, weights_only=True)
            except Exception as exc:  # noqa: BLE001  (URLError, HTTPError, hash mismatch: all one message)
                raise WeightsError(
                    f"RAFT-{size} weights {weights_filename(size, weights)} are not cached and the download from "
                    f"{entry.url} failed ({type(exc).__name__}: {exc}); put the file in {target} or use --flow dis"
                ) from None
            return state, str(target / weights_filename(size, weights))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (zip, pickle and unpickling errors: all one message)
        raise WeightsError(f"{path}: cannot read RAFT weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state, str(path)


class RAFTFlow:
    """``FlowEstimator`` backed by torchvision's RAFT.

    Args:
        size: ``"small"`` (1M parameters) or ``"large"`` (5.3M).
        weights: None (torchvision's recommended ``DEFAULT``), an enum member name (``"C_T_V2"``),
            an enum member, or a path to a ``.pth`` state dict.
        device: where the model runs (default: CUDA when available, else CPU).
        num_flow_updates: refinement iterations (torchvision default 12).
        batch_size: at most this many pairs per forward pass.
        allow_download: fetch missing weights from torchvision's URL (checksum verified).

    Frames are converted to [-1, 1] as torchvision's ``OpticalFlow`` transform does (grey frames are
    repeated to 3 channels) and padded with edge replication to a multiple of 8 and at least 128x128
    (centred, as in the RAFT authors' ``InputPadder``); the flow is cropped back to the input size.
    """

    def __init__(self, size: str = "small", weights: Any = None, device: str | torch.device | None = None,
                 num_flow_updates: int = 12, batch_size: int = 8, allow_download: bool = True) -> None:
        from torchvision.models.optical_flow import raft_large, raft_small

        if size not in SIZES:
            raise ValueError(f"RAFT size must be one of {SIZES}, got {size!r}")
        if num_flow_updates < 1 or batch_size < 1:
            raise ValueError(f"num_flow_updates and batch_size must be >= 1, got {num_flow_updates}, {batch_size}")
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        state, self.weights_path = load_raft_state_dict(size, weights, allow_download=allow_download)
        model = (raft_small if size == "small" else raft_large)(weights=None, progress=False)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise WeightsError(f"{self.weights_path}: does not fit RAFT-{size} ({first})") from None
        self.model = model.eval().to(self.device)
        self.size = size
        self.num_flow_updates = int(num_flow_updates)
        self.batch_size = int(batch_size)
        self.name = f"RAFT-{size} (torchvision, {Path(self.weights_path).name}, {self.device.type})"

    @torch.inference_mode()
    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor:
        check_pair(frames_a, frames_b)
        out_device = frames_a.device
        n, c, h, w = frames_a.shape
        # Multiple of 8 (the feature maps are 1/8 size), and at least 128: the 4-level correlation
        # pyramid needs 16x16 feature maps (torchvision raises below that, meta "min_size").
        ph, pw = max(MIN_SIZE, h + (-h) % 8) - h, max(MIN_SIZE, w + (-w) % 8) - w
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # left, right, top, bottom
        flows = []
        for start in range(0, n, self.batch_size):
            pair = []
            for frames in (frames_a, frames_b):
                x = frames[start:start + self.batch_size].to(self.device, torch.float32)
                if c == 1:
                    x = x.expand(-1, 3, -1, -1)
                x = x.clamp(0, 1) * 2 - 1  # torchvision OpticalFlow transform: normalize(0.5, 0.5)
                if ph or pw:
                    x = F.pad(x, pad, mode="replicate")
                pair.append(x.contiguous())
            flow = self.model(pair[0], pair[1], num_flow_updates=self.num_flow_updates)[-1]
            flows.append(flow[..., pad[2]:pad[2] + h, pad[0]:pad[0] + w].float())
        return torch.cat(flows).to(out_device)

    def __repr__(self) -> str:
        return f"RAFTFlow(size={self.size!r}, weights={self.weights_path!r}, device={str(self.device)!r})"
