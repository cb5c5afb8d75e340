"""What the output carries besides pictures, on both encoder backends: colour tags, container and
stream tags, provenance, subtitles converted for mp4/mov, the hvc1 tag, 10-bit sources, and encoder
options checked before anything is written."""

import hashlib
import json
from fractions import Fraction

import av
import pytest

from tests.conftest import add_subtitles, ffmpeg_exe, make_clip, natural_frames, packets
from tests.io.test_roundtrip import WRITERS, copy_video
from vidcolor.errors import InputError
from vidcolor.io.containers import output_metadata, subtitle_fallback
from vidcolor.io.probe import probe
from vidcolor.io.writer_base import encoder_tag


def tagged_clip(path, *, codes=(6, 1, 6, 6), tags=None, audio_tags=None, frames=6, codec="libx264",
                pix_fmt="yuv420p"):
    """A small clip whose video carries colour codes (space, range, primaries, trc), with container
    ``tags`` and an AAC stream with ``audio_tags``."""
    c = av.open(str(path), "w")
    for k, v in (tags or {}).items():
        c.metadata[k] = v
    v = c.add_stream(codec, rate=24)
    v.width, v.height, v.pix_fmt = 64, 48, pix_fmt
    cc = v.codec_context
    cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = codes
    a = c.add_stream("aac", rate=48000)
    a.layout = "mono"
    for k, val in (audio_tags or {}).items():
        a.metadata[k] = val
    for i, img in enumerate(natural_frames(frames, 48, 64)):
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt, dst_colorspace=1)
        f.pts, f.time_base = i, Fraction(1, 24)
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    af = av.AudioFrame(format="fltp", layout="mono", samples=1024)
    af.sample_rate, af.pts = 48000, 0
    for plane in af.planes:
        plane.update(bytes(plane.buffer_size))
    for p in list(a.encode(af)) + list(a.encode()):
        c.mux(p)
    c.close()
    return path


def lower(d):
    return {k.lower(): v for k, v in d.items()}


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("codes", [(1, 1, 1, 1), (6, 1, 6, 6), (9, 1, 9, 16)])
def test_colour_tags_kept(tmp_path, backend, codes):
    src = tagged_clip(tmp_path / "in.mp4", codes=codes)
    assert probe(src).color_codes == codes
    out = tmp_path / "out.mp4"
    copy_video(src, out, backend)
    assert probe(out).color_codes == codes


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_container_and_stream_tags_kept_under_provenance(tmp_path, backend, ext):
    src = tagged_clip(tmp_path / "in.mkv", tags={"title": "My Film", "artist": "Me", "date": "1931",
                                                 "comment": "scanned from 35 mm", "vidcolor_style": "old run"},
                      audio_tags={"language": "fra", "title": "Stereo mix"})
    out = tmp_path / f"out{ext}"
    stages = [{"name": "grade", "weights_sha256": "ab" * 32, "settings": {"x": "y" * 10000}}]  # a long JSON tag
    copy_video(src, out, backend, tags={"version": "t", "style": "sepia", "stages": stages})
    with av.open(str(out)) as c:
        tags = lower(c.metadata)
        audio = lower(c.streams.audio[0].metadata)
    assert tags["title"] == "My Film" and tags["artist"] == "Me" and tags["date"] == "1931"
    assert tags["comment"] == "scanned from 35 mm\nmade with vidcolor version=t style=sepia"
    assert tags["vidcolor_style"] == "sepia"
    assert json.loads(tags["vidcolor_stages"]) == stages
    ident = json.loads(tags["vidcolor_input"])
    assert ident == {"name": "in.mkv", "size": src.stat().st_size,
                     "sha256_first_mib": hashlib.sha256(src.read_bytes()[:1 << 20]).hexdigest()}
    assert audio["language"] == "fra"
    assert (audio.get("title") or audio.get("name")) == "Stereo mix"  # mp4 reads a track title back as "name"


def test_output_metadata_rules():
    src = {"major_brand": "isom", "ENCODER": "Lavf", "TITLE": "T", "vidcolor_input": "{}",
           "comment": "made with vidcolor version=0 style=noir"}
    assert output_metadata(src, None) == {"title": "T", "comment": "made with vidcolor version=0 style=noir"}
    got = output_metadata(src, {"version": "1", "style": "sepia"})
    assert got == {"title": "T", "vidcolor_version": "1", "vidcolor_style": "sepia",
                   "comment": "made with vidcolor version=1 style=sepia"}  # an earlier vidcolor line is replaced


def test_encoder_tag_has_options_and_crf_only_where_used():
    assert encoder_tag("pyav", "libx264", 18, {"tune": "film"}) == {
        "backend": "pyav", "codec": "libx264", "crf": 18, "options": {"preset": "veryfast", "tune": "film"}}
    assert encoder_tag("pyav", "libx264", 18, {"crf": "23"})["crf"] == 23  # -e crf wins, as in the encoder
    assert "crf" not in encoder_tag("ffmpeg", "prores_ks", 18, None)
    assert "crf" not in encoder_tag("pyav", "ffv1", 18, None)


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("ext", [".mp4", ".mov"])
@pytest.mark.parametrize("scodec", ["srt", "ass", "webvtt"])
def test_text_subtitles_become_mov_text(tmp_path, backend, ext, scodec):
    base = make_clip(tmp_path / "base.mkv", frames=24)
    src = add_subtitles(base, tmp_path / "subs.mkv")
    if scodec != "srt":
        import subprocess

        srt_src, src = src, tmp_path / f"subs_{scodec}.mkv"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(srt_src), "-map", "0", "-c", "copy", "-c:s", scodec,
                        str(src)], check=True)
    out = tmp_path / f"out{ext}"
    w = copy_video(src, out, backend)
    assert any("converted to mov_text" in x for x in w.warnings)
    with av.open(str(out)) as c:
        s = c.streams.subtitles[0]
        assert s.codec_context.name == "mov_text"
        got = [(float(p.pts * p.time_base), bytes(p)[2:]) for p in c.demux(s) if p.size > 2]  # mp4 fills gaps
    assert got == [(0.0, b"Hello from vidcolor"), (0.8, b"Bye")]
    assert [b for _, b in packets(out, "audio")] == [b for _, b in packets(src, "audio")]  # still copied


def test_bitmap_subtitles_have_no_text_fallback():
    assert subtitle_fallback("mp4", "dvd_subtitle") is None and subtitle_fallback("mp4", "hdmv_pgs_subtitle") is None
    assert subtitle_fallback("mkv", "subrip") is None  # Matroska copies them as they are


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("ext,tag", [(".mp4", "hvc1"), (".mov", "hvc1"), (".mkv", None)])
def test_hevc_in_mp4_is_hvc1(tmp_path, backend, ext, tag):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / f"out{ext}"
    copy_video(src, out, backend, codec="libx265", crf=30)
    with av.open(str(out)) as c:
        got = c.streams.video[0].codec_context.codec_tag
    assert got == tag if tag else got != "hev1"


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("codec,pix_fmt,bits", [("libx265", "yuv420p10le", 10), ("ffv1", "yuv420p10le", 10),
                                                ("libx264", "yuv420p", 8)])
def test_ten_bit_source(tmp_path, backend, codec, pix_fmt, bits):
    src = make_clip(tmp_path / "in10.mkv", frames=4, audio=False, codec="libx265", pix_fmt="yuv420p10le")
    assert probe(src).bit_depth == 10
    out = tmp_path / "out.mkv"
    w = copy_video(src, out, backend, codec=codec, crf=30 if codec == "libx265" else 18)
    m = probe(out)
    assert (m.pix_fmt, m.bit_depth) == (pix_fmt, bits)
    [warning] = [x for x in w.warnings if "10-bit" in x]
    assert "8 bits per channel" in warning
    if bits == 8:
        assert "libx264 writes 8-bit" in warning and "--codec libx265" in warning


def test_eight_bit_source_no_depth_warning(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    w = copy_video(src, tmp_path / "out.mkv", codec="libx265", crf=30)
    assert probe(tmp_path / "out.mkv").pix_fmt == "yuv420p" and not any("bit" in x for x in w.warnings)


@pytest.mark.parametrize("backend", WRITERS)
def test_unknown_encoder_option_rejected_before_writing(tmp_path, backend):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match=r"-e bogus=1: libx264 has no option 'bogus' \(known: preset, tune"):
        copy_video(src, out, backend, options={"bogus": "1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("codec,options", [
    ("libx264", {"preset": "slow", "tune": "film", "x264-params": "keyint=12", "crf": "20", "threads": "2",
                 "g": "12", "bf": "2"}),
    ("libx265", {"preset": "fast", "x265-params": "log-level=error:keyint=12", "g": "12"}),
    ("prores_ks", {"profile": "2", "vendor": "apl0"}),
])
def test_known_encoder_options_pass(tmp_path, backend, codec, options):
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    WRITERS[backend](tmp_path / "out.mkv", probe(src), codec=codec, options=options)  # checked on construction


@pytest.mark.parametrize("resumable", [False, True])
def test_run_provenance_and_hvc1(tmp_path, resumable):
    """``run`` and the resumable run's segment join write the same tags and the hvc1 tag."""
    from vidcolor.pipelines.run import run
    from vidcolor.pipelines.segments import run_resumable

    src = tagged_clip(tmp_path / "in.mp4", tags={"title": "My Film"}, frames=12)
    out = tmp_path / "out.mp4"
    kwargs = {"codec": "libx265", "crf": 30, "encoder_options": {"preset": "ultrafast"}}
    if resumable:
        run_resumable(src, out, "sepia", segment_frames=8, **kwargs)
    else:
        run(src, out, "sepia", resumable=False, **kwargs)
    with av.open(str(out)) as c:
        tags = lower(c.metadata)
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"
    assert tags["title"] == "My Film"
    assert json.loads(tags["vidcolor_input"])["name"] == "in.mp4"
    enc = json.loads(tags["vidcolor_encoder"])
    assert enc["crf"] == 30 and enc["options"]["preset"] == "ultrafast" and enc["codec"] == "libx265"
    assert len(json.loads(tags["vidcolor_stages"])) >= 1  # each stage's describe(), weights included


@pytest.mark.parametrize("encoder", WRITERS)
def test_cli_rejects_unknown_encoder_option(tmp_path, encoder):
    from click.testing import CliRunner

    from vidcolor.cli import main

    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mp4"
    r = CliRunner().invoke(main, ["-q", "run", str(src), "--style", "sepia", "-o", str(out), "--encoder", encoder,
                                  "-e", "bogus=1"])
    assert r.exit_code == 2, r.output
    assert "vidcolor: error: -e bogus=1: libx264 has no option 'bogus'" in r.output
    assert "Traceback" not in r.output and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_ffmpeg_backend_checks_encoders_pyav_lacks(tmp_path):
    """Encoders only the ffmpeg binary has (hardware ones, rav1e here) are checked with ``ffmpeg -h encoder=``."""
    from vidcolor.io.ffmpeg_writer import FFmpegWriter, ffmpeg_option_names
    from vidcolor.io.writer_base import pyav_option_names

    if pyav_option_names("librav1e") is not None:
        pytest.skip("PyAV has librav1e here")
    try:
        private, generic = ffmpeg_option_names("librav1e")
    except InputError:
        pytest.skip("this ffmpeg has no librav1e")
    assert "rav1e-params" in private and "g" in generic
    meta = probe(make_clip(tmp_path / "in.mp4", frames=2, audio=False))
    FFmpegWriter(tmp_path / "out.mkv", meta, codec="librav1e", crf=None, options={"speed": "10", "g": "12"})
    with pytest.raises(InputError, match="librav1e has no option 'bogus'"):
        FFmpegWriter(tmp_path / "out.mkv", meta, codec="librav1e", crf=None, options={"bogus": "1"})
    with pytest.raises(InputError, match="'nonesuch' is not available"):
        FFmpegWriter(tmp_path / "out.mkv", meta, codec="nonesuch", crf=None)
