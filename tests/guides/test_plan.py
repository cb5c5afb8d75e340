"""The planning pass (``vidcolor.guides.plan.build_plan``) on a generated two-shot clip: shots,
which frames get a backward carrier and from which guide, the colour it carries, the spool folder's
life, and keyframe images that do not fit the film."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.guides.test_guided_run import CUT, FRAMES, colour_scene, grey_of, tinted, write_clip, write_png
from vidcolor.errors import InputError
from vidcolor.guides.keyframes import Keyframe
from vidcolor.guides.plan import build_plan
from vidcolor.io.probe import probe

RENDER = 96


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    truth = np.concatenate([colour_scene(CUT, 3, 1), colour_scene(FRAMES - CUT, 4, -1)])
    grey = grey_of(truth)
    src = write_clip(d / "film.mkv", grey)
    return src, probe(src), grey


def painted(tmp_path, grey, frame: int, a: float = 50, b: float = 30, source: int | None = None) -> Keyframe:
    """A keyframe for ``frame``: the grey of frame ``source`` (default: the same) in one colour."""
    img = tinted(grey[frame if source is None else source], a, b)
    return Keyframe(frame, write_png(tmp_path / "kf" / f"{frame:06d}.png", img))


def test_shots_guides_and_backward_stretches(clip, tmp_path) -> None:
    src, meta, grey = clip
    kfs = [painted(tmp_path, grey, 5, 50, 30), painted(tmp_path, grey, 9, -40, 20),
           painted(tmp_path, grey, 20, 10, -45)]
    plan = build_plan(src, meta, RENDER, kfs, spool_dir=tmp_path)
    try:
        assert plan.shot_starts == [0, CUT]
        assert sorted(plan.guides) == [5, 9, 20]
        assert plan.shot_guides(3) == [5] and plan.shot_guides(7) == [5, 9] and plan.shot_guides(10) == [9]
        assert plan.shot_guides(CUT) == [20] and plan.shot_guides(23) == [20]
        expected = {**{i: 5 for i in range(0, 5)}, **{i: 9 for i in range(5, 9)},
                    **{i: 20 for i in range(CUT, 20)}}
        got = {}
        for i in range(FRAMES):
            back = plan.backward(i)
            if back is not None:
                got[i] = back[2]
        # after a shot's last guide (9..11, 21..23) nothing comes back; nothing crosses the cut
        assert got == expected
        ab, conf, _ = plan.backward(4)
        assert ab.shape == (2, *plan.size) and conf.shape == (1, *plan.size)
        assert float(conf.min()) >= 0 and float(conf.max()) <= 1
        sure = conf[0] > 0.5
        assert sure.float().mean() > 0.5                       # one frame from the guide: mostly trusted
        a, b = ab[0][sure].mean(), ab[1][sure].mean()          # and carrying the guide's colour
        assert abs(float(a) - 50) < 4 and abs(float(b) - 30) < 4, (a, b)
        ab8, conf8, _ = plan.backward(8)
        assert float(ab8[0][conf8[0] > 0.5].mean()) < -30      # the second guide's colour, not the first's
        ab12, conf12, _ = plan.backward(CUT)
        assert float(ab12[1][conf12[0] > 0.5].mean()) < -30
    finally:
        plan.close()


def test_close_removes_the_spool_folder(clip, tmp_path) -> None:
    src, meta, grey = clip
    spool = tmp_path / "spool"
    spool.mkdir()
    plan = build_plan(src, meta, RENDER, [painted(tmp_path, grey, 6)], spool_dir=spool)
    folders = list(spool.iterdir())
    assert folders == [plan.folder] and plan.folder.name.startswith("vidcolor-guides-")
    assert (plan.folder / "carried.bin").stat().st_size > 0  # frames 0..5 carried back
    plan.close()
    assert list(spool.iterdir()) == []


def test_a_plan_without_guides_has_shots_and_nothing_to_carry(clip, tmp_path) -> None:
    src, meta, _ = clip
    plan = build_plan(src, meta, RENDER, [], spool_dir=tmp_path)
    try:
        assert plan.shot_starts == [0, CUT] and plan.guides == {}
        assert all(plan.backward(i) is None for i in range(FRAMES))
        assert plan.shot_guides(0) == [] and plan.shot_guides(FRAMES - 1) == []
    finally:
        plan.close()


def test_a_keyframe_of_another_aspect_ratio_is_refused(clip, tmp_path) -> None:
    src, meta, grey = clip
    spool = tmp_path / "spool"
    spool.mkdir()
    square = tinted(grey[0], 40, 0)[:, :96]  # 96x96 from a 160x96 film
    kf = Keyframe(0, write_png(tmp_path / "kf" / "000000.png", square))
    with pytest.raises(InputError) as err:
        build_plan(src, meta, RENDER, [kf], spool_dir=spool)
    message = str(err.value)
    assert "\n" not in message and str(kf.path) in message
    assert "96x96" in message and "aspect ratio" in message and "160x96" in message
    assert list(spool.iterdir()) == []


def test_a_keyframe_for_the_wrong_frame_names_the_best_match(clip, tmp_path) -> None:
    src, meta, grey = clip
    spool = tmp_path / "spool"
    spool.mkdir()
    kf = painted(tmp_path, grey, 3, source=CUT + 4)  # frame 16's picture, named for frame 3
    with pytest.raises(InputError, match=r"does not match frame 3 .* best-matching frame is 16 ") as err:
        build_plan(src, meta, RENDER, [kf], spool_dir=spool)
    assert str(kf.path) in str(err.value)
    assert list(spool.iterdir()) == []
    # a keyframe past the end of the film
    late = Keyframe(FRAMES + 3, kf.path)
    with pytest.raises(InputError, match="the film ends before it"):
        build_plan(src, meta, RENDER, [late], spool_dir=spool)
    assert list(spool.iterdir()) == []


def test_a_hinted_frame_is_a_guide_carried_back(clip, tmp_path) -> None:
    from vidcolor.guides.hints import Hint

    src, meta, _ = clip
    hint = Hint(frame=4, kind="polygon", coords=((0.0, 0.0), (159.0, 0.0), (159.0, 95.0), (0.0, 95.0)),
                rgb=(40, 80, 220), width=4.0)
    plan = build_plan(src, meta, RENDER, [], {4: [hint]}, spool_dir=tmp_path)
    try:
        assert sorted(plan.guides) == [4] and plan.guides[4].hints == [hint]
        assert plan.guides[4].L is not None and tuple(plan.guides[4].L.shape) == (1, *plan.size)
        assert [plan.backward(i)[2] for i in range(4)] == [4] * 4 and plan.backward(4) is None
        b = plan.guides[4].ab[1]
        assert float(torch.median(b)) < -40  # blue over the whole frame
    finally:
        plan.close()


def test_frames_after_the_last_guide_are_not_spooled(clip, tmp_path, monkeypatch) -> None:
    """No guide can carry colour back to them, so their lightness never goes to disk."""
    from vidcolor.guides.plan import GuidePlan

    src, meta, grey = clip
    sizes: list[int] = []
    publish = GuidePlan._publish

    def spy(self, scanned=None, done=False, error=None) -> None:  # after each chunk of the pass
        if scanned is not None:
            sizes.extend(p.stat().st_size for p in tmp_path.glob("vidcolor-guides-*/moves.bin"))
        publish(self, scanned, done, error)

    monkeypatch.setattr(GuidePlan, "_publish", spy)
    plan = build_plan(src, meta, RENDER, [painted(tmp_path, grey, 2)], spool_dir=tmp_path)
    try:
        record = 6 * plan.size[0] * plan.size[1]  # a move: flow and confidence in float16
        assert len(sizes) == -(-FRAMES // 16) and max(sizes) <= record, (sizes, record)
        assert [plan.backward(i)[2] for i in range(2)] == [2, 2] and plan.backward(2) is None
    finally:
        plan.close()


def test_hints_on_a_keyframe_correct_its_colour(clip, tmp_path) -> None:
    from vidcolor.guides.hints import Hint

    src, meta, grey = clip
    hint = Hint(frame=5, kind="polygon", coords=((0.0, 0.0), (159.0, 0.0), (159.0, 95.0), (0.0, 95.0)),
                rgb=(40, 80, 220), width=4.0)
    plain = build_plan(src, meta, RENDER, [painted(tmp_path, grey, 5, 50, 30)], spool_dir=tmp_path)
    try:
        before = plain.guides[5].ab.clone()
    finally:
        plain.close()
    plan = build_plan(src, meta, RENDER, [painted(tmp_path, grey, 5, 50, 30)], {5: [hint]}, spool_dir=tmp_path)
    try:
        g = plan.guides[5]
        assert not g.hints and float(g.conf.min()) == 1.0  # still the keyframe's guide
        assert float(torch.median(before[1])) > 20 and float(torch.median(g.ab[1])) < -30  # the hint's blue wins
    finally:
        plan.close()
