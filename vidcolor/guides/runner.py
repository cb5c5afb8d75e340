"""The main pass of a guided run: what the Colorize stage calls around its model.

:class:`GuidedChroma` reads the keyframes and hints for the film (``prepare``: the planning pass of
:mod:`vidcolor.guides.plan`), then for each chunk takes the automatic colorizer's (stabilized)
a*b* at the working size and gives the guided a*b* (``apply``): in shots with guides the fusion of
:func:`vidcolor.guides.propagate.fuse` (forward carrier kept here, backward from the plan, exemplar
colour from the model's features), elsewhere the automatic colour untouched. Frames must come in
order; the forward carrier is the state a resumed run restores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidcolor.guides.plan import GuidePlan, start_plan
from vidcolor.guides.propagate import FEATURE_STRIDE, Carrier, exemplar_chroma, flow_test, fuse, pooled
from vidcolor.io.probe import VideoMeta
from vidcolor.models.networks import crop_to, pad_to_multiple
from vidcolor.models.runtime import autocast

_PREFIX = "guide."


def model_outputs(model: torch.nn.Module, x: torch.Tensor, multiple: int,
                  dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.ab_and_features`` on model-space L ``(N, 1, h, w)`` of any size (padded, autocast,
    cropped): (ab float32 ``(N, 2, h, w)``, features ``(N, C, ceil(h / 4), ceil(w / 4))``)."""
    padded, (h, w) = pad_to_multiple(x, multiple)
    padded = padded.contiguous(memory_format=torch.channels_last)
    with autocast(padded.device, dtype):
        ab, feats = model.ab_and_features(padded)
    s = FEATURE_STRIDE
    return crop_to(ab, (h, w)).float(), feats[..., :-(-h // s), :-(-w // s)].float().contiguous()


class GuidedChroma:
    """Keyframes (a folder or TOML map) and hints (a JSON file) for one film; see the module doc.
    ``feature_fn(L (N, 1, h, w) L*)`` gives the model's features of working-size frames, or is None
    (a model without them: the automatic colour fills where no carrier reaches)."""

    def __init__(self, keyframes: str | None, hints: str | None, render_size: int, flow: str = "dis",
                 scene_cut: float = 0.35, device: str | torch.device | None = None) -> None:
        self.keyframes_path, self.hints_path = keyframes or None, hints or None
        self.render_size, self.flow, self.scene_cut = int(render_size), flow, float(scene_cut)
        self.test = flow_test(flow, device=device)
        self.plan: GuidePlan | None = None
        self.feature_fn = None
        self.frame_shape = (0, 0)
        self.reset()

    model_outputs = staticmethod(model_outputs)

    @classmethod
    def for_stage(cls, stage: Any, keyframes: str, hints: str, flow: str, scene_cut: float) -> GuidedChroma:
        """The guides of a Colorize ``stage``, with exemplar colour from its model's features when the
        model gives them (``ab_and_features``; not with mirrored test-time views)."""
        guide = cls(keyframes, hints, stage.render_size, flow, scene_cut, stage.device)
        if hasattr(stage.model, "ab_and_features") and not stage.flip_tta:
            guide.feature_fn = lambda L: model_outputs(stage.model, (L - stage.l_center) / stage.l_scale,
                                                       stage.multiple, stage.dtype)[1]
        return guide

    def prepare(self, path: str | Path, meta: VideoMeta, allow_truncated: bool = False) -> None:
        """Read the guides (a one-line ``InputError`` for a bad file) and start the planning pass, which
        runs ahead of the main pass in a thread of its own (``apply`` waits for it where it must)."""
        from vidcolor.guides.hints import load_hints
        from vidcolor.guides.keyframes import load_keyframes

        self.close()
        self.frame_shape = (meta.display_height, meta.display_width)
        keyframes = load_keyframes(self.keyframes_path, meta) if self.keyframes_path else []
        hints = load_hints(self.hints_path, meta) if self.hints_path else {}
        self.plan = start_plan(path, meta, self.render_size, keyframes, hints, flow=self.flow,
                               scene_cut=self.scene_cut, allow_truncated=allow_truncated)

    def guided(self, index: int, n: int) -> bool:
        """Whether any of frames ``index .. index + n - 1`` lies in a shot with guides."""
        if self.plan is None:
            return False
        self.plan.settle(index + n - 1)
        return any(self.plan.shot_guides(i) for i in range(index, index + n))

    def apply(self, ab: torch.Tensor, L_small: torch.Tensor, index: int, features: torch.Tensor | None = None,
              motion: tuple[int, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Automatic a*b* ``(N, 2, h, w)`` of frames ``index ..`` and their L* -> the guided a*b*
        (in place where guided). ``features``: the model's features of these frames, or None;
        ``motion``: ``(first frame, flows (M, 2, h, w), confidences (M, 1, h, w))`` of the
        stabilizer's test of these frames against their previous ones (``Stabilize.last_motion``),
        which the forward carrier then reuses instead of computing the same flow again."""
        plan = self.plan
        if plan is None:
            raise RuntimeError("GuidedChroma.apply before prepare")
        for k in range(len(ab)):
            i = index + k
            plan.settle(i)
            if self._next is not None and i != self._next:
                self._forward = None  # not the continuation of the last frame: no carrier to follow
            self._next = i + 1
            if plan.shot_start(i) == i:  # (bisect: a list scan per frame grows with the film)
                self._forward, self._cache = None, {}
            guides = plan.shot_guides(i)
            if not guides:
                continue
            if self._forward is not None:
                known = motion is not None and motion[0] <= i < motion[0] + len(motion[1])
                if known:  # the stabilizer's flow and test of this very pair of frames
                    j = i - motion[0]
                    self._forward.advance(motion[1][j], motion[2][j], L_small[k])
                else:
                    self._forward.step(self.test, L_small[k])
            if i in plan.guides:
                self._forward = self._start(plan.guides[i], ab[k], L_small[k])
            exemplar = None
            # exemplars come from keyframes: a frame with hints alone has a colour only near its hints
            painted = [g for g in guides if not plan.guides[g].hints]
            if features is not None and self.feature_fn is not None and painted:
                feats, abs_ = zip(*(self._guide_features(g) for g in painted))
                exemplar = exemplar_chroma(features[k], list(feats), list(abs_), tuple(ab.shape[-2:]))
            ab[k] = fuse(ab[k], self._forward, plan.backward(i), i, exemplar)
        return ab

    def _start(self, guide, auto_ab: torch.Tensor, L: torch.Tensor) -> Carrier:
        if guide.hints:  # hints (without a keyframe) over the automatic colour of this frame
            from vidcolor.guides.hints import rasterize, spread

            h_ab, mask = rasterize(guide.hints, *L.shape[-2:], *self.frame_shape)
            g_ab, conf = spread(L, h_ab, mask, prior_ab=auto_ab)
            return Carrier(g_ab, conf, L, guide.frame)
        return Carrier(guide.ab.clone(), guide.conf.clone(), L, guide.frame)

    def _guide_features(self, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
        if frame not in self._cache:
            g = self.plan.guides[frame]
            self._cache[frame] = (pooled(self.feature_fn(g.L[None])[0]), g.ab)
        return self._cache[frame]

    # -- state -------------------------------------------------------------------------------------------
    def reset(self) -> None:
        self._forward: Carrier | None = None
        self._next: int | None = None
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self._next is not None:
            state[_PREFIX + "next"] = torch.tensor(self._next, dtype=torch.int64)
        if self._forward is not None:
            f = self._forward
            state.update({_PREFIX + "ab": f.ab.clone(), _PREFIX + "conf": f.conf.clone(), _PREFIX + "L": f.L.clone(),
                          _PREFIX + "source": torch.tensor(f.source, dtype=torch.int64)})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state`` (the keys ``state_dict`` made; others are ignored)."""
        self.reset()
        if _PREFIX + "next" in state:
            self._next = int(state[_PREFIX + "next"])
        if _PREFIX + "ab" in state:
            self._forward = Carrier(state[_PREFIX + "ab"].float(), state[_PREFIX + "conf"].float(),
                                    state[_PREFIX + "L"].float(), int(state[_PREFIX + "source"]))

    @staticmethod
    def split(state: dict[str, Any]) -> dict[str, Any]:
        """``state`` without this class's keys."""
        return {k: v for k, v in state.items() if not k.startswith(_PREFIX)}

    def close(self) -> None:
        """Remove the planning pass's spool (also on failure and Ctrl-C: the run calls it in ``finally``)."""
        if self.plan is not None:
            self.plan.close()
            self.plan = None
