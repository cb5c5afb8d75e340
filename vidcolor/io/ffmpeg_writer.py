"""``FFmpegWriter``: the same contract as ``VideoWriter``, encoding with the ``ffmpeg`` command-line tool.

For hardware encoders (``h264_nvenc``, ``hevc_vaapi`` ...) and options PyAV lacks. Frames go to
ffmpeg's stdin as raw RGB inside a NUT stream, which carries each frame's pts, so variable frame
rate survives (a bare rawvideo pipe would not); ffmpeg maps the audio and subtitle streams from the
source file itself (``-c copy``; audio the container cannot hold is re-encoded, text subtitles for
mp4/mov become mov_text). The command line is built with ffmpeg-python; the binary is ``ffmpeg``
from PATH, else the one imageio-ffmpeg ships.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidcolor.errors import InputError, ProcessingError
from vidcolor.io.containers import AUDIO_FALLBACK, can_copy, subtitle_fallback, video_codec_tag
from vidcolor.io.grey import output_coding
from vidcolor.io.probe import VideoMeta
from vidcolor.io.writer_base import WriterBase, check_encoder_options, pyav_option_names

_MATRIX = {1: "bt709", 4: "fcc", 5: "bt601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_SPACE_NAMES = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
_PRIM_NAMES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020"}
_TRC_NAMES = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
              13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}


def ffmpeg_binary() -> str:
    """``ffmpeg`` from PATH (it may have hardware encoders), else imageio-ffmpeg's bundled binary."""
    found = os.environ.get("VIDCOLOR_FFMPEG") or shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise InputError(f"--encoder ffmpeg needs an ffmpeg binary on PATH or the imageio-ffmpeg package ({exc})") from None


def ffmpeg_option_names(codec: str) -> tuple[list[str], list[str]]:
    """(private, generic) option names of the ffmpeg binary's ``codec`` encoder: private ones from
    ``ffmpeg -h encoder=NAME``; generic ones are libavcodec's, the same in PyAV's build."""
    try:
        text = subprocess.run([ffmpeg_binary(), "-hide_banner", "-h", f"encoder={codec}"], capture_output=True,
                              text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"cannot run ffmpeg to check encoder {codec!r} ({exc})") from None
    if not text.startswith("Encoder "):
        raise InputError(f"encoder {codec!r} is not available in {ffmpeg_binary()}")
    private = re.findall(r"^  -(\S+)\s+<", text, flags=re.MULTILINE)
    generic = (pyav_option_names("mpeg4") or ([], []))[1]  # any built-in video encoder lists the generic set
    return private, generic


def _stream_titles(path: str | os.PathLike) -> dict[int, str]:
    """Stream index -> title of the audio/subtitle streams of ``path`` (mp4 reads a title back as "name")."""
    with av.open(str(path), metadata_errors="ignore") as c:
        tags = {s.index: {k.lower(): v for k, v in s.metadata.items()} for s in c.streams}
    return {i: t.get("title") or t.get("name") for i, t in tags.items() if t.get("title") or t.get("name")}


class FFmpegWriter(WriterBase):
    """See ``VideoWriter``; same constructor, ``write``, ``close``, ``abort``, ``warnings``."""

    def __init__(self, path: str | os.PathLike, meta: VideoMeta, *, codec: str = "libx264", crf: int | None = 18,
                 pix_fmt: str | None = None, options: dict[str, str] | None = None,
                 streams_from: str | os.PathLike | None = None, tags: dict[str, Any] | None = None,
                 width: int | None = None, height: int | None = None, queue_size: int = 8) -> None:
        super().__init__(path, meta, codec=codec, crf=crf, pix_fmt=pix_fmt, options=options,
                         streams_from=streams_from, tags=tags, width=width, height=height)
        self.packets_copied = 0  # ffmpeg copies the streams itself; not counted here
        self._proc: subprocess.Popen | None = None
        self._nut: av.container.OutputContainer | None = None
        self._stderr: list[bytes] = []
        self._closed = False

    def check_options(self, options: dict[str, str]) -> None:
        """Like ``WriterBase.check_options``; encoders PyAV lacks (hardware ones) are asked of the binary."""
        check_encoder_options(self.codec, options, pyav_option_names(self.codec) or ffmpeg_option_names(self.codec))

    def command(self) -> list[str]:
        import ffmpeg  # ffmpeg-python

        m = self.meta
        space, rng, prim, trc = m.color_codes
        video = ffmpeg.input("pipe:0", format="nut")["v"]
        video = video.filter("scale", out_color_matrix=_MATRIX.get(space, "bt601"),
                             out_range="pc" if rng == 2 else "tv")
        # The encoder takes its colour tags from the frames (-color_primaries alone is overridden by
        # the untagged RGB input), so the frames carry the source's primaries and transfer.
        frame_tags = {k: v for k, v in (("color_primaries", prim), ("color_trc", trc), ("colorspace", space))
                      if v not in (0, 2)}
        if frame_tags:
            video = video.filter("setparams", **{k: str(v) for k, v in frame_tags.items()})
        streams = [video]
        kwargs: dict[str, Any] = {"c:v": self.codec, "pix_fmt": self.pix_fmt, "fps_mode": "passthrough",
                                  "enc_time_base:v": "demux", "format": self.fmt,
                                  "color_range": "pc" if rng == 2 else "tv"}
        if space in _SPACE_NAMES:
            kwargs["colorspace"] = _SPACE_NAMES[space]
        if prim in _PRIM_NAMES:
            kwargs["color_primaries"] = _PRIM_NAMES[prim]
        if trc in _TRC_NAMES:
            kwargs["color_trc"] = _TRC_NAMES[trc]
        if tag := video_codec_tag(self.fmt, self.codec):
            kwargs["tag:v"] = tag
        if self.fmt in ("mp4", "mov"):
            kwargs["movflags"] = "+faststart+use_metadata_tags"
            kwargs["video_track_timescale"] = m.time_base.denominator
        if m.sample_aspect_ratio:
            sar = m.sample_aspect_ratio if m.rotation not in (90, 270) else 1 / m.sample_aspect_ratio
            streams[0] = streams[0].filter("setsar", f"{sar.numerator}/{sar.denominator}")
        for key, value in self.options.items():
            kwargs[f"{key}:v" if key not in ("x264-params", "x265-params") else key] = value
        if self.streams_from is not None:
            src = ffmpeg.input(str(self.streams_from))
            titles = _stream_titles(self.streams_from)
            out_index = {"audio": 0, "subtitle": 0}
            for s in m.streams:
                if s.type not in ("audio", "subtitle"):
                    continue
                k = "a" if s.type == "audio" else "s"
                if can_copy(self.fmt, s.type, s.codec):
                    codec = "copy"
                elif s.type == "audio" and self.fmt in AUDIO_FALLBACK:
                    codec = AUDIO_FALLBACK[self.fmt]
                    self.warnings.append(f"audio stream {s.index} ({s.codec}) cannot be copied into {self.fmt}: "
                                         f"re-encoded as {codec}")
                elif s.type == "subtitle" and (target := subtitle_fallback(self.fmt, s.codec)):
                    codec = target
                    self.warnings.append(f"subtitle stream {s.index} ({s.codec}) cannot be copied into {self.fmt}: "
                                         f"converted to {target}")
                else:
                    self.warnings.append(f"{s.type} stream {s.index} ({s.codec}) cannot be stored in {self.fmt}: "
                                         "dropped (use .mkv output to keep it)")
                    continue
                streams.append(src[str(s.index)])
                kwargs[f"c:{k}:{out_index[s.type]}"] = codec
                if titles.get(s.index):  # ffmpeg copies language and handler name itself, not an mp4 title
                    kwargs[f"metadata:s:{k}:{out_index[s.type]}"] = f"title={titles[s.index]}"
                out_index[s.type] += 1
        out = ffmpeg.output(*streams, str(self.part), **kwargs)
        out = out.global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        cmd = out.compile(cmd=ffmpeg_binary(), overwrite_output=True)
        # -metadata repeats, which ffmpeg-python's keyword form cannot say: put them before the output name.
        at = cmd.index(str(self.part))
        tags = [arg for k, v in self.metadata().items() for arg in ("-metadata", f"{k}={v}")]
        return cmd[:at] + tags + cmd[at:]

    def __enter__(self) -> "FFmpegWriter":
        self.part.unlink(missing_ok=True)
        cmd = self.command()
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            raise ProcessingError(f"cannot start ffmpeg ({exc})") from None
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        # NUT carries pts per frame; rawvideo keeps the pixels exact on the way to ffmpeg.
        self._nut = av.open(self._proc.stdin, mode="w", format="nut")
        s = self._nut.add_stream("rawvideo", rate=self.meta.frame_rate)
        s.width, s.height, s.pix_fmt = self.width, self.height, "rgb24"
        s.time_base = self.meta.time_base
        s.codec_context.time_base = self.meta.time_base
        self._stream = s
        return self

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-20]

    def _error(self, what: str) -> ProcessingError:
        tail = b"".join(self._stderr).decode(errors="replace").strip().splitlines()
        return ProcessingError(f"{self.path}: ffmpeg {what}: {tail[-1] if tail else 'no message'}")

    def write(self, frames: np.ndarray, pts: list[int]) -> None:
        self.check_frames(frames, pts)
        assert self._nut is not None
        try:
            for rgb, p in zip(frames, pts):
                if rgb.shape[0] != self.height:  # yuv420p planes: the pipe carries RGB
                    space, full = output_coding(self.meta.color_codes)
                    rgb = av.VideoFrame.from_ndarray(rgb[..., 0], format="yuv420p").to_ndarray(
                        format="rgb24", src_colorspace=space, src_color_range=2 if full else 1)
                elif rgb.shape[-1] == 1:  # grey: the pipe carries RGB
                    rgb = np.repeat(rgb, 3, axis=-1)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = int(p)
                frame.time_base = self.meta.time_base
                for packet in self._stream.encode(frame):
                    self._nut.mux(packet)
                self.frames_written += 1
        except (OSError, av.error.FFmpegError):
            self._proc.poll() if self._proc else None
            raise self._error("stopped") from None

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._closed = True
        try:
            assert self._nut is not None and self._proc is not None
            for packet in self._stream.encode(None):
                self._nut.mux(packet)
            self._nut.close()
            self._proc.stdin.close()
            code = self._proc.wait()
        except (OSError, av.error.FFmpegError):
            self.abort()
            raise self._error("stopped") from None
        if code != 0:
            self.abort()
            raise self._error(f"exited with code {code}")
        os.replace(self.part, self.path)
        return self.path

    def abort(self) -> None:
        self._closed = True
        if self._proc is not None:
            try:
                if self._nut is not None:
                    self._nut.close()
            except Exception:
                pass
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        self.part.unlink(missing_ok=True)
