from fractions import Fraction

import pytest

from tests.conftest import make_audio_only, make_clip
from vidcolor.errors import InputError, VideoError
from vidcolor.io.probe import probe


def test_probe_made_clip(tmp_path):
    path = make_clip(tmp_path / "c.mp4", frames=24, width=160, height=96, rate=24)
    m = probe(path)
    assert (m.width, m.height, m.display_width, m.display_height) == (160, 96, 160, 96)
    assert m.frame_rate == Fraction(24) and m.frame_count == 24 and not m.vfr
    assert m.duration == pytest.approx(1.0, abs=1 / 24)
    assert [s.type for s in m.audio_streams] == ["audio"]
    assert m.to_json()["frame_rate"] == "24/1"


def test_probe_real_ntsc_rate_is_exact(shared_data):
    m = probe(shared_data / "videos/sam2_01_dog.mp4")
    assert m.frame_rate == Fraction(30000, 1001)  # not rounded to 29.97 or 30
    assert m.frame_count == 289 and m.color_space == "bt709"


@pytest.mark.parametrize("name,rotation,size", [("decord_video_0.mov", 0, (568, 320)),
                                                ("decord_video_90.mov", 270, (320, 568)),
                                                ("decord_video_180.mov", 180, (568, 320)),
                                                ("decord_video_270.mov", 90, (320, 568))])
def test_probe_rotation(shared_data, name, rotation, size):
    m = probe(shared_data / "videos/edge_cases" / name)
    assert m.rotation == rotation
    assert (m.display_width, m.display_height) == size


def test_probe_vfr(tmp_path):
    pts = [0, 40, 80, 200, 240, 400, 440, 480]
    path = make_clip(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000), audio=False)
    assert probe(path).vfr


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="not a readable video"):
        probe(tmp_path / "text.mp4")
    # audio only
    make_audio_only(tmp_path / "audio.m4a")
    with pytest.raises(VideoError, match=r"no video stream \(streams: audio/aac\)"):
        probe(tmp_path / "audio.m4a")
