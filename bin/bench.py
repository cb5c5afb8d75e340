"""vidcolor benchmark: what this machine does per second, and how much memory it takes.

Every case runs in its own subprocess so its peak RSS is its own (``os.wait4`` rusage).
Inputs are made here: an 854x480 30 fps clip with audio, panning and zooming over a real
photograph (Kodak, from ../shared/data when present), 2 s and 20 s long, so "memory flat with
length" is measured on the same content at 1x and 10x. Real clips from ../shared/data are added
when present. Prints a table, writes JSON and the markdown page docs/benchmarks.md;
``--markdown-from bench.json`` rewrites the page from saved results without measuring.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_bench_clip(path: Path, seconds: float, width: int = 854, height: int = 480, rate: int = 30) -> Path:
    import av
    import cv2

    photo = SHARED / "images/color_kodak24"
    pics = sorted(photo.glob("*.png")) if photo.is_dir() else []
    if pics:
        img = cv2.cvtColor(cv2.imread(str(pics[0])), cv2.COLOR_BGR2RGB)
    else:  # no shared data: a smooth synthetic picture
        yy, xx = np.mgrid[0:1024, 0:1536].astype(np.float32)
        img = (np.stack([np.sin(xx / 90) * 0.5 + 0.5, np.cos(yy / 70) * 0.5 + 0.5, (xx + yy) / 2560], -1) * 255)
        img = img.astype(np.uint8)
    img = cv2.resize(img, (int(width * 1.6), int(height * 1.6)))
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    a = c.add_stream("aac", rate=48000)
    a.layout = "stereo"
    n = int(seconds * rate)
    H, W = img.shape[:2]
    for i in range(n):
        zoom = 1.0 + 0.25 * np.sin(2 * np.pi * i / 150)
        cw, ch = int(width * 1.25 / zoom), int(height * 1.25 / zoom)
        x0 = int((W - cw) * (0.5 + 0.45 * np.sin(2 * np.pi * i / 240)))
        y0 = int((H - ch) * (0.5 + 0.45 * np.cos(2 * np.pi * i / 310)))
        crop = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=cv2.INTER_AREA)
        f = av.VideoFrame.from_ndarray(crop, format="rgb24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    samples = int(seconds * 48000)
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(samples) / 48000)).astype(np.float32)
    for k in range(0, samples, 1024):
        af = av.AudioFrame.from_ndarray(np.stack([tone[k:k + 1024]] * 2), format="fltp", layout="stereo")
        af.sample_rate, af.pts = 48000, k
        for p in a.encode(af):
            c.mux(p)
    for p in a.encode():
        c.mux(p)
    c.close()
    return path


# -- cases, each run in a child process -------------------------------------------------------
def case_decode(path: str) -> dict:
    from vidcolor.io.reader import VideoReader

    t = time.perf_counter()
    n = 0
    with VideoReader(path) as r:
        for c in r.chunks(8):
            n += len(c)
    return {"frames": n, "seconds": time.perf_counter() - t}


def case_transcode(path: str, out: str) -> dict:
    from vidcolor.io.probe import probe
    from vidcolor.io.reader import VideoReader
    from vidcolor.io.writer import VideoWriter

    t = time.perf_counter()
    meta = probe(path)
    n = 0
    with VideoReader(path, meta=meta) as r, VideoWriter(out, meta, streams_from=path) as w:
        for c in r.chunks(8):
            w.write(c.frames, c.pts)
            n += len(c)
    return {"frames": n, "seconds": time.perf_counter() - t}


def case_transcode_yuv(path: str, out: str) -> dict:
    """Decode and re-encode with PyAV alone, frames kept in the decoder's yuv420p (no RGB conversion
    either way), same libx264 settings as the writer's defaults: the ceiling of a style that works
    on the Y' plane alone (noir's luma path, ``vidcolor.io.grey``, comes close to it)."""
    import av

    from vidcolor.io.writer_base import DEFAULT_X264_PRESET

    t = time.perf_counter()
    n = 0
    with av.open(path) as inp, av.open(out, "w") as dst:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        os_ = dst.add_stream("libx264", rate=vs.average_rate)
        os_.width, os_.height, os_.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        os_.options = {"preset": DEFAULT_X264_PRESET, "crf": "18"}
        os_.codec_context.thread_type = "AUTO"  # frame threads, as VideoWriter opens x264
        for frame in inp.decode(vs):
            y = frame.to_ndarray(format="yuv420p")  # no conversion for yuv420p sources
            for pkt in os_.encode(av.VideoFrame.from_ndarray(y, format="yuv420p")):
                dst.mux(pkt)
            n += 1
        for pkt in os_.encode():
            dst.mux(pkt)
    return {"frames": n, "seconds": time.perf_counter() - t}


def case_run(path: str, out: str, style: str, extra: str = "{}") -> dict:
    """One ``run``; also the resident memory (VmRSS, MiB) sampled about 20 times along the film,
    to show whether it stays flat."""
    from vidcolor.pipelines.run import run

    kw = json.loads(extra)
    n_samples = kw.pop("_samples", 20)
    log = Path(kw.pop("_rss_log")) if "_rss_log" in kw else None
    samples: list[tuple[int, float]] = []

    def progress(done: int, total: int | None) -> None:
        if total and (not samples or done - samples[-1][0] >= total / n_samples):
            samples.append((done, _vm_rss_mib()))
            if log is not None:  # survives the process: a run stopped half-way still leaves its samples
                with log.open("a") as f:
                    f.write(f"{time.time():.0f} pid {os.getpid()} frame {done}/{total} rss_mib {samples[-1][1]:.1f} "
                            f"peak_mib {_vm_hwm_mib():.1f}\n")

    t, c = time.perf_counter(), _cpu_seconds()
    rep = run(path, out, style, overwrite=True, progress=progress, **kw)
    seconds = time.perf_counter() - t
    return {"frames": rep.frames - rep.resumed_at, "frames_total": rep.frames, "resumed_at": rep.resumed_at,
            "seconds": seconds,
            "cores_used": (_cpu_seconds() - c) / seconds, "rss_mib_along": samples}


def degraded_clip(src: Path, out: Path) -> Path:
    """``src`` through ``vidcolor.degrade`` (flicker ±10 %, grain 8/255, 20 specks and 2 scratches a
    frame, seed 0), libx264 crf 18 with ``src``'s audio dropped: old-film material for the restore styles."""
    import av

    from vidcolor.degrade import degrade

    with av.open(str(src)) as inp, av.open(str(out), "w") as c:
        vin = inp.streams.video[0]
        v = c.add_stream("libx264", rate=vin.average_rate, options={"crf": "18", "preset": "veryfast"})
        v.width, v.height, v.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            img, _ = degrade(frame.to_ndarray(format="rgb24")[None], start=i)
            f = av.VideoFrame.from_ndarray(img[0], format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return out


def keyframe_folder(clip: Path, folder: Path, frames: list[int], loop: int | None = None) -> Path:
    """Keyframes for a guided run: the colour frames ``frames`` of ``clip`` (of ``clip`` looped every
    ``loop`` frames) as PNGs named by frame number."""
    import av
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    want = {(f % loop if loop else f): f for f in frames}
    with av.open(str(clip)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            for f in frames:
                if (f % loop if loop else f) == i:
                    cv2.imwrite(str(folder / f"{f:06d}.png"), cv2.cvtColor(fr.to_ndarray(format="rgb24"), cv2.COLOR_RGB2BGR))
            if i >= max(want):
                break
    return folder


def looped_film(clip: Path, minutes: float, out: Path) -> Path:
    """``clip`` repeated (stream copy, the ffmpeg of imageio-ffmpeg) to at least ``minutes``."""
    import imageio_ffmpeg

    from vidcolor.io.probe import probe

    loops = int(np.ceil(minutes * 60 / probe(clip).duration))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i",
                    str(clip), "-c", "copy", str(out)], check=True)
    return out


def case_stages(path: str, style: str, out: str, chunk: str = "4") -> dict:
    """Each part of ``style``'s pipeline alone, on the whole machine, in the order the pipeline
    runs them: decode, uint8 -> float (not for stages that take 8-bit frames), every stage (fed the previous stage's output; the best of
    three timed passes, each after ``reset()``, results dropped so memory is reused as in a run),
    float -> uint8 and encoding (libx264, the writer's default settings) of frames already in memory. ``stage_fps`` maps each part to its frames/s; the slowest part is what
    overlapping them can reach at best."""
    import torch

    from vidcolor.io.probe import probe
    from vidcolor.io.reader import VideoReader
    from vidcolor.io.writer import VideoWriter
    from vidcolor.pipelines.frames import frame_plan, frames_in, to_tensor, to_uint8
    from vidcolor.pipelines.stream import bound_heap, intra_op_threads
    from vidcolor.stages.base import Chunk, StageContext
    from vidcolor.styles import get_style

    bound_heap()  # the allocator settings of a run
    size = int(chunk)
    meta = probe(path)
    fps: dict[str, float] = {}
    cpu = torch.device("cpu")
    stages = get_style(style).build(StageContext(device=cpu))
    plan = frame_plan(stages, cpu, "pyav", "libx264", None, meta)  # what a run of these stages does
    grey, u8 = plan.grey, plan.uint8
    cpu_ms: dict[str, float] = {}  # CPU time (all threads) a frame, for the CPU-bound limit
    cores: dict[str, float] = {}   # cores used in that pass (CPU time / wall time)

    def cost(fn) -> tuple[float, float]:
        """(wall seconds, CPU seconds of all threads) of one call of ``fn``."""
        t, c = time.perf_counter(), _cpu_seconds()
        fn()
        return time.perf_counter() - t, _cpu_seconds() - c

    def note(part: str, wall: float, used: float) -> float:
        """Record ``part``'s CPU time a frame and cores; returns its frames/s."""
        cpu_ms[part], cores[part] = used * 1000 / n, used / max(wall, 1e-9)
        return n / wall

    raw: list = []

    def decode() -> None:
        with VideoReader(path, meta=meta, grey=grey) as r:
            raw.extend(r.chunks(size))

    wall, used = cost(decode)
    n = sum(len(c) for c in raw)
    fps["decode"] = note("decode", wall, used)

    def timed(fn, items, before=lambda: None, repeats: int = 3, part: str | None = None) -> float:
        """frames/s of ``fn`` over ``items``, the best of ``repeats`` passes (``before`` runs ahead
        of each), results dropped (buffers reused as in a run). With ``part``, one more pass with
        the thread counts a run gives the stages (``intra_op_threads``) puts the CPU time a frame
        (all threads) in ``cpu_ms[part]``: what the part costs inside a run."""
        best = 0.0
        for _ in range(repeats):
            before()
            t = time.perf_counter()
            for item in items:
                fn(item)
            best = max(best, n / (time.perf_counter() - t))
        if part:
            with intra_op_threads(stages, cpu):
                before()

                def each() -> None:
                    for item in items:
                        fn(item)

                note(part, *cost(each))
        return best

    extra: dict[str, float] = {}
    if not u8:
        fps["uint8 -> float"] = timed(lambda c: to_tensor(c.frames, cpu), raw, part="uint8 -> float")
    chunks = [Chunk(frames=frames_in(c.frames, cpu, u8), index=c.index, pts=c.pts) for c in raw]
    chunks = [Chunk(frames=c.frames, index=c.index, pts=c.pts, source=c.frames, yuv=plan.yuv) for c in chunks]
    with torch.inference_mode():
        for i, stage in enumerate(stages):
            outs = [stage.process(c) for c in chunks]  # the next part's input (and a warm-up)
            fps[f"stage {i + 1} {stage.name}"] = timed(stage.process, chunks, before=stage.reset,
                                                       part=f"stage {i + 1} {stage.name}")
            steps = stage.phases()
            if steps is not None and chunks[0].frames.shape[1] == 1:
                # the pipeline steps a run gives the stage threads of their own: each alone
                predict, render = steps

                def refill(predict=predict, stage=stage) -> None:
                    stage.reset()
                    for c in chunks:
                        predict.process(c)

                extra[f"stage {i + 1} {stage.name}: step {predict.name} alone fps"] = timed(
                    predict.process, chunks, before=stage.reset)
                extra[f"stage {i + 1} {stage.name}: step {render.name} alone fps"] = timed(
                    render.process, chunks, before=refill)
            if getattr(stage, "stabilizer", None) is not None:  # a colorizer stabilizing its own chroma
                plain = get_style(style).build(StageContext(device=cpu, overrides={"temporal": 0}))[i]
                without = timed(plain.process, chunks)
                extra[f"stage {i + 1} {stage.name} in-stage stabilizer ms/frame"] = (
                    1000 / fps[f"stage {i + 1} {stage.name}"] - 1000 / without)
            chunks = outs
    key = "uint8 out" if u8 else "float -> uint8"
    fps[key] = timed(lambda c: to_uint8(c.frames), chunks, part=key)
    if grey:
        extra["luma only"] = 1.0  # decode, stages and encode saw the Y' plane alone
    frames = [to_uint8(c.frames) for c in chunks]

    def encode() -> None:
        with VideoWriter(out, meta) as w:
            for c, f in zip(chunks, frames):
                w.write(f, c.pts)

    fps["encode"] = note("encode", *cost(encode))
    return {"frames": n, "seconds": sum(n / v for v in fps.values()), "stage_fps": fps, "stage_cpu_ms": cpu_ms,
            "stage_cores": cores, **extra}


def case_model(arch: str, kwargs: str, height: str, width: str, batch: str = "4", precision: str = "fp32") -> dict:
    """Model-only fps: forward passes of ``arch`` on (batch, C, H, W) random input (padded as the
    stage pads), after a warm-up. Weights are random: compute does not depend on their values."""
    import torch

    from vidcolor.models.networks import pad_to_multiple
    from vidcolor.models.registry import build_model
    from vidcolor.models.runtime import autocast, prepare_model, resolve_precision

    torch.manual_seed(0)
    # every model, the anchors too, as the stages run it (prepare_model: eval, batch norm folded,
    # channels_last, convolution weights in the autocast dtype)
    dtype = resolve_precision(precision, torch.device("cpu"))
    model = build_model(arch, **json.loads(kwargs))
    params = sum(p.numel() for p in model.parameters())
    model = prepare_model(model, torch.device("cpu"), dtype=dtype)
    cin = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    h, w, b = int(height), int(width), int(batch)
    x, _ = pad_to_multiple(torch.rand(b, cin, h, w) * 2 - 1, int(getattr(model, "size_multiple", 1)))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
        model(x)
        n, t = 0, time.perf_counter()
        while n < 2 * b or (n < 16 * b and time.perf_counter() - t < 3.0):
            model(x)
            n += b
    return {"frames": n, "seconds": time.perf_counter() - t, "params": params}


def _real_frames(n: int, height: int = 480, width: int = 854):
    import torch
    import torch.nn.functional as F

    from vidcolor.io.reader import VideoReader

    clip = SHARED / "videos/sam2_04_coffee.mp4"  # eval split: measuring only
    frames = []
    with VideoReader(clip) as r:
        for i, _, rgb in r.frames():
            if i >= n:
                break
            x = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0) / 255
            frames.append(F.interpolate(x, size=(height, width), mode="area").clamp(0, 1)[0])
    return torch.stack(frames)


def case_stabilizer(n: str = "48") -> dict:
    """Stabilizer cost per frame at 854x480 (DIS flow), chunks of 8, on a real clip."""
    import torch

    from vidcolor.stages.base import Chunk
    from vidcolor.stages.stabilize import Stabilize

    x = _real_frames(int(n))
    st = Stabilize(strength=0.6, flow="dis")
    with torch.inference_mode():
        st(Chunk(frames=x[:8], index=0, source=x[:8]))
        st.reset()
        t = time.perf_counter()
        for i in range(0, len(x), 8):
            st(Chunk(frames=x[i:i + 8], index=i, source=x[i:i + 8]))
    return {"frames": len(x), "seconds": time.perf_counter() - t}


def case_temporal_quality(n: str = "48") -> dict:
    """Warping error (Lai et al. 2018) of a flickering per-frame colouring with and without the
    stabilizer, in one run. The "per-frame model output" is the clip's true colour with a random
    chroma shift per frame (the flicker a frame-by-frame colorizer shows); the stabilizer sees the
    grey input as source, as in `run --style colorize`."""
    import torch

    from vidcolor.color import lab_to_rgb, rgb_to_lab
    from vidcolor.flow import DISFlow
    from vidcolor.metrics import cdc, psnr, warping_error
    from vidcolor.stages.base import Chunk
    from vidcolor.stages.stabilize import Stabilize

    truth = _real_frames(int(n), 240, 427)
    g = torch.Generator().manual_seed(0)
    lab = rgb_to_lab(truth)
    shift = torch.randn(len(truth), 2, 1, 1, generator=g) * 6.0
    flicker = lab_to_rgb(torch.cat([lab[:, :1], lab[:, 1:] + shift], 1))
    grey = lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], 1))
    st = Stabilize(strength=0.8, flow="dis")
    t = time.perf_counter()
    with torch.inference_mode():
        out = torch.cat([st(Chunk(frames=flicker[i:i + 8], index=i, source=grey[i:i + 8])).frames
                         for i in range(0, len(truth), 8)])
    seconds = time.perf_counter() - t
    est = DISFlow()
    return {"frames": len(truth), "seconds": seconds,
            "warping_error_truth": warping_error(truth, grey, est)[0],
            "warping_error_per_frame": warping_error(flicker, grey, est)[0],
            "warping_error_stabilized": warping_error(out, grey, est)[0],
            "cdc_per_frame": cdc(flicker), "cdc_stabilized": cdc(out),
            "psnr_per_frame": psnr(flicker, truth), "psnr_stabilized": psnr(out, truth)}



def _cpu_seconds() -> float:
    """CPU time of this process so far, all threads (user + system; getrusage has microsecond
    resolution where os.times counts 10 ms clock ticks)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _vm_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _vm_hwm_mib() -> float:
    """This process's own peak RSS (VmHWM, reset at exec), so a parent's memory never counts."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(argv: list[str]) -> None:
    name, *args = argv
    res = CASES[name](*args)  # noqa: F821 (defined at the bottom, after every case)
    res["peak_rss_mib"] = _vm_hwm_mib()
    print("RESULT " + json.dumps(res))


def measure(name: str, *args: str, env: dict | None = None, watch: Path | None = None) -> dict:
    """Run a case in a fresh interpreter; return its result plus fps and peak RSS (MiB).
    ``watch``: a folder (the child's TMPDIR) polled during the run; the most files seen in it is
    reported, to show no frames go to disk."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    most = 0
    if watch is not None:
        import threading

        def poll() -> None:
            nonlocal most
            while proc.poll() is None:
                most = max(most, sum(1 for _ in watch.rglob("*")))
                time.sleep(0.05)

        threading.Thread(target=poll, daemon=True).start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench case {name} {args} failed with code {proc.returncode}")
    res = json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][7:])
    res["fps"] = res["frames"] / res["seconds"]
    if watch is not None:
        res["tmp_files_seen"] = most
    return res


# Models timed at the working size a 854x480 input gets with render_size 256 (256x455).
ANCHORS = {  # the peers' reference generators, built by our upstream-compatible classes
    "anchor pix2pix unet_256 @256x256": ("unet", {"input_nc": 3, "output_nc": 3, "num_downs": 8, "ngf": 64,
                                                   "norm": "batch"}, 256, 256),
    "anchor CycleGAN resnet_9blocks @256x256": ("resnet", {"input_nc": 3, "output_nc": 3, "n_blocks": 9, "ngf": 64,
                                                          "norm": "instance"}, 256, 256),
}


def style_models() -> dict[str, tuple[str, dict, int, int]]:
    """The model of every model style, at the working size of an 854x480 frame (render 256)."""
    from vidcolor.models.weights import WEIGHTS
    from vidcolor.styles import available_styles

    found: dict[str, tuple[str, dict, int, int]] = {}
    seen: set[str] = set()
    for name, style in sorted(available_styles().items()):
        for st in style.stages:
            if st["type"] in ("colorize", "stylize") and st.get("weights", "colorize") in WEIGHTS:
                e = WEIGHTS[st.get("weights", "colorize")]
                rs = int(st.get("render_size", 256))
                spec = (e.arch, dict(e.kwargs), rs, round(rs * 854 / 480))
                key = json.dumps(spec, sort_keys=True)
                if key not in seen:  # styles sharing an architecture and size are timed once
                    seen.add(key)
                    found[f"model {e.name} ({e.arch}) @{spec[2]}x{spec[3]}"] = spec
    return found


def case_weights(home: str) -> dict:
    """Random-init weights under the registry names, in a scratch VIDCOLOR_HOME: the compute of a
    model does not depend on its weights, so end-to-end speed is measured without downloads.
    Weights that ship inside the package are used as they are."""
    import torch

    from vidcolor.models.pretrained import package_dir, save_pretrained
    from vidcolor.models.registry import build_model
    from vidcolor.models.weights import WEIGHTS

    torch.manual_seed(0)
    t = time.perf_counter()
    names = [n for n in WEIGHTS if not (package_dir() / n).is_dir()]
    for name in names:
        e = WEIGHTS[name]
        save_pretrained(build_model(e.arch, **e.kwargs), Path(home) / "weights" / name,
                        {**e.config(), "meta": {"note": "random init, for speed measurement only"}})
    return {"frames": len(names), "seconds": time.perf_counter() - t, "random_init": names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--quick", action="store_true", help="shorter clips (2 s and 20 s instead of 5 s and 50 s)")
    ap.add_argument("--styles", default="noir,sepia,colorize,colorize-fast,starry-night,great-wave,scream,"
                                        "colorize-starry-night",
                    help="comma-separated styles to time end to end (model styles get random-init weights)")
    ap.add_argument("--skip-models", action="store_true", help="skip model-only timings")
    ap.add_argument("--long-film", type=float, default=0, metavar="MINUTES",
                    help="also colorize a film of MINUTES (a 10 s clip looped) with a keyframe every 10 minutes, "
                         "memory sampled along it (issue #18's bar: 120) [default: 0, skipped]")
    ap.add_argument("--long-film-size", default="854x480", help="its frame size, WxH")
    ap.add_argument("--long-film-dir", default="", metavar="DIR",
                    help="keep the long film, its keyframes and its run's work folder in DIR: the same command "
                         "again resumes the run where it stopped (it is resumable in 1-minute segments); "
                         "resident memory is also appended to DIR/rss.log along the run")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (end-to-end runs)")
    ap.add_argument("--paint-render-size", type=int, action="append", default=[], metavar="N",
                    help="also run each painting style with --render-size N (repeatable): the network's "
                         "working size against speed")
    ap.add_argument("--skip-restore", action="store_true", help="skip the restore styles at 640x480 and upscale")
    ap.add_argument("--markdown", default=str(REPO / "docs" / "benchmarks.md"),
                    help="the page written from the results (default docs/benchmarks.md; '' for none)")
    ap.add_argument("--markdown-from", metavar="JSON",
                    help="write the --markdown page from a saved bench.json and exit (no measuring)")
    args = ap.parse_args()
    if args.markdown_from:
        write_markdown(json.loads(Path(args.markdown_from).read_text()), Path(args.markdown or "docs/benchmarks.md"))
        print(f"wrote {args.markdown}")
        return
    short_s = 2.0 if args.quick else 5.0
    styles = [s for s in args.styles.split(",") if s]
    results: dict = {"machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                                 **_versions()},
                     "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "command": " ".join(["bin/bench", *sys.argv[1:]]), "quick": args.quick, "cases": {}}

    def record(key: str, res: dict) -> None:
        results["cases"][key] = res
        extra = f" tmp files {res['tmp_files_seen']}" if "tmp_files_seen" in res else ""
        print(f"{key:<58} {res['frames']:>6} frames {res['fps']:>8.1f} fps {res['peak_rss_mib']:>7.0f} MiB{extra}",
              flush=True)

    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        tmp_p = Path(tmp)
        short = make_bench_clip(tmp_p / "short.mp4", short_s)
        long = make_bench_clip(tmp_p / "long.mp4", short_s * 10)
        home = tmp_p / "home"
        results["random_init_weights"] = measure("weights", str(home))["random_init"]
        env = {"VIDCOLOR_HOME": str(home)}

        record("decode 854x480", measure("decode", str(long)))
        record("decode+encode 854x480 (no stage)", measure("transcode", str(long), str(tmp_p / "t.mp4")))
        record("decode+encode 854x480 yuv420p, no RGB (PyAV alone)",
               measure("transcode_yuv", str(long), str(tmp_p / "t_yuv.mp4")))
        if not args.skip_models:
            for key, (arch, kw, h, w) in {**ANCHORS, **style_models()}.items():
                record(key, measure("model", arch, json.dumps(kw), str(h), str(w)))
                if "anchor" not in key:
                    record(key + " bf16", measure("model", arch, json.dumps(kw), str(h), str(w), "4", "bf16"))
        if SHARED.is_dir():
            record("stabilizer 854x480 (DIS)", measure("stabilizer"))
            record("temporal quality 427x240 (proxy flicker)", measure("temporal"))
        for style in styles:
            res = measure("stages", str(short), style, str(tmp_p / f"stages-{style}.mp4"), env=env)
            results["cases"][f"stages {style} 854x480"] = res
            for part, v in res["stage_fps"].items():
                cpu, used = res.get("stage_cpu_ms", {}).get(part), res.get("stage_cores", {}).get(part)
                cores = (f"  in a run's threads: {cpu:6.2f} ms CPU a frame ({used:4.2f} cores)"
                         if cpu is not None and used is not None else "")
                print(f"  {style}: {part:<52} {v:>8.1f} fps alone{cores}", flush=True)
            for part, v in res.items():
                if part.endswith("ms/frame") or part.endswith("alone fps"):
                    print(f"  {style}: {part:<52} {v:>8.2f}", flush=True)
        for style in styles:
            variants = [("", "{}")]
            if style == "colorize":
                variants.append((" --temporal 0", json.dumps({"overrides": {"temporal": 0}})))
            if _paints(style):
                variants += [(f" --render-size {n}", json.dumps({"overrides": {"render_size": n}}))
                             for n in args.paint_render_size]
            for suffix, extra in variants:
                extra_d = json.loads(extra)
                extra_d["device"] = args.device
                for label, clip in (("short", short), ("long", long)):
                    watch = tmp_p / f"tmpdir-{style}-{label}{suffix.strip()}"
                    watch.mkdir()
                    record(f"run {style}{suffix} 854x480 {label}",
                           measure("run", str(clip), str(tmp_p / f"{style}.mp4"), style, json.dumps(extra_d),
                                   env={**env, "TMPDIR": str(watch)}, watch=watch))
        if "colorize" in styles:  # guided: keyframes at frame 0 and every 10 s (the bench clip is one shot)
            n_long = int(short_s * 10 * 30)
            kf = keyframe_folder(long, tmp_p / "long.keyframes", list(range(0, n_long, 300)))
            watch = tmp_p / "tmpdir-colorize-keyframes"
            watch.mkdir()
            record("run colorize --keyframes 854x480 long",
                   measure("run", str(long), str(tmp_p / "colorize-kf.mp4"), "colorize",
                           json.dumps({"device": args.device, "keyframes": str(kf)}),
                           env={**env, "TMPDIR": str(watch)}, watch=watch))
        if args.long_film and "colorize" in styles:
            w, h = (int(v) for v in args.long_film_size.split("x"))
            fdir = Path(args.long_film_dir) if args.long_film_dir else tmp_p
            fdir.mkdir(parents=True, exist_ok=True)
            film = fdir / f"film-{args.long_film:g}min-{w}x{h}.mp4"
            if not film.exists():  # a kept folder: the film, its keyframes and the run's work folder stay
                base = make_bench_clip(fdir / "loop.mp4", 10.0, w, h)
                looped_film(base, args.long_film, fdir / "film.part.mp4").rename(film)
                n_film = int(args.long_film * 60 * 30)
                keyframe_folder(base, fdir / "film.keyframes", list(range(0, n_film, 10 * 60 * 30)), loop=300)
            record(f"run colorize --keyframes {w}x{h} {args.long_film:g}-minute film",
                   measure("run", str(film), str(fdir / "film-out.mp4"), "colorize",
                           json.dumps({"device": args.device, "keyframes": str(fdir / "film.keyframes"),
                                       "_samples": 120, "_rss_log": str(fdir / "rss.log")}), env=env))
        if not args.skip_restore:  # restoration of SD film scans: a degraded 640x480 clip
            sd = degraded_clip(make_bench_clip(tmp_p / "sd.mp4", short_s * 10, 640, 480), tmp_p / "sd-old.mp4")
            record("decode+encode 640x480 (no stage)", measure("transcode", str(sd), str(tmp_p / "t-sd.mp4")))
            for style in ("restore", "restore-noir", "restore-colorize"):
                watch = tmp_p / f"tmpdir-{style}"
                watch.mkdir()
                record(f"run {style} 640x480 long",
                       measure("run", str(sd), str(tmp_p / f"{style}.mp4"), style, json.dumps({"device": args.device}),
                               env={**env, "TMPDIR": str(watch)}, watch=watch))
            low = make_bench_clip(tmp_p / "low.mp4", short_s, 320, 240)  # the x2 network: 320x240 -> 640x480
            record("run upscale 320x240 -> 640x480 short",
                   measure("run", str(low), str(tmp_p / "upscale.mp4"), "upscale", json.dumps({"device": args.device}),
                           env=env))
        if "colorize" in styles:  # the default colorizer at HD sizes (its model works at render_size anyway)
            for w, h in ((1280, 720), (1920, 1080)):
                clip = make_bench_clip(tmp_p / f"hd{h}.mp4", short_s, w, h)
                watch = tmp_p / f"tmpdir-colorize-{h}"
                watch.mkdir()
                record(f"run colorize {w}x{h} short",
                       measure("run", str(clip), str(tmp_p / f"colorize{h}.mp4"), "colorize",
                               json.dumps({"device": args.device}), env={**env, "TMPDIR": str(watch)}, watch=watch))
        results["ratios"] = ratios(results["cases"], styles, args.paint_render_size)
        for k, v in results["ratios"].items():
            print(f"{k:<70} {v:.3f}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    if args.markdown:
        write_markdown(results, Path(args.markdown))
        print(f"wrote {args.markdown}")


def _paints(style: str) -> bool:
    """Whether ``style`` (a name or a .toml path) has a painting (stylize) stage."""
    from vidcolor.styles import get_style

    return any(st["type"] == "stylize" for st in get_style(style).stages)


def ratios(cases: dict, styles: list[str], paint_render_sizes: list[int] = ()) -> dict:
    r = {}
    for style in styles:
        for suffix in ("", " --temporal 0"):
            short, long_ = cases.get(f"run {style}{suffix} 854x480 short"), cases.get(f"run {style}{suffix} 854x480 long")
            if short and long_:
                r[f"{style}{suffix}: peak RSS long/short (10x frames)"] = long_["peak_rss_mib"] / short["peak_rss_mib"]
    anchor = cases.get("anchor pix2pix unet_256 @256x256")
    col = cases.get("run colorize 854x480 long")
    if anchor and col:
        r["colorize end-to-end fps / unet_256 model-only fps"] = col["fps"] / anchor["fps"]
    fast = cases.get("run colorize-fast 854x480 long")
    if fast and col:
        r["colorize end-to-end fps / colorize-fast end-to-end fps"] = col["fps"] / fast["fps"]
    # issue #20's speed bar on any machine: a painting style against colorize, same run
    for style in (s for s in styles if col and _paints(s)):
        for suffix in ("", *(f" --render-size {n}" for n in paint_render_sizes)):
            other = cases.get(f"run {style}{suffix} 854x480 long")
            if other:
                r[f"{style}{suffix} end-to-end fps / colorize end-to-end fps"] = other["fps"] / col["fps"]
    guided = cases.get("run colorize --keyframes 854x480 long")
    if guided and col:
        r["colorize --keyframes end-to-end fps / colorize end-to-end fps"] = guided["fps"] / col["fps"]
    restore, sd = cases.get("run restore 640x480 long"), cases.get("decode+encode 640x480 (no stage)")
    if restore and sd:
        r["restore end-to-end fps / decode+encode fps (640x480)"] = restore["fps"] / sd["fps"]
    for style in styles:
        run_long, parts = cases.get(f"run {style} 854x480 long"), cases.get(f"stages {style} 854x480")
        if run_long and parts:
            alone = parts["stage_fps"]
            r[f"{style}: end-to-end fps / slowest part alone ({min(alone, key=alone.get)})"] = (
                run_long["fps"] / min(alone.values()))
            r[f"{style}: end-to-end fps / all parts one after another"] = (
                run_long["fps"] * sum(1 / v for v in alone.values()))
            cpu = parts.get("stage_cpu_ms")
            if cpu and len(cpu) == len(alone):
                # what the parts' CPU time allows on this machine's cores, however well they overlap
                limit = 1000 * (os.cpu_count() or 1) / sum(cpu.values())
                r[f"{style}: CPU-bound limit fps (cores / parts' CPU ms a frame)"] = limit
                r[f"{style}: end-to-end fps / CPU-bound limit"] = run_long["fps"] / limit
                slow = min(alone, key=alone.get)
                if slow in parts.get("stage_cores", {}):
                    r[f"{style}: cores the slowest part ({slow}) uses alone"] = parts["stage_cores"][slow]
            steps = {k: v for k, v in parts.items() if k.endswith("alone fps")}
            if steps:  # a stage the run splits into pipeline steps: its slowest step is the bound
                slow = min(steps, key=steps.get)
                r[f"{style}: end-to-end fps / slowest pipeline step alone ({slow[:-10]})"] = run_long["fps"] / min(
                    min(steps.values()), *(v for k, v in alone.items() if not k.startswith("stage")))
    return r


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    """Versions of the libraries the figures depend on, read without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for key, dists in (("torch", ("torch",)), ("opencv", ("opencv-python-headless", "opencv-python")),
                       ("av", ("av",)), ("numpy", ("numpy",))):
        for dist in dists:
            try:
                found[key] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return found


def _num(v) -> str:
    """A figure as the page shows it: one decimal from 10 up, two from 1, three significant digits below."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def benchmarks_markdown(results: dict) -> str:
    """The benchmarks page (markdown) for a ``bench.json``'s results: machine, date, command, tables."""
    m = results.get("machine", {})
    unknown = "not recorded"
    lines = [
        "# Benchmarks",
        "",
        "Written by `bin/bench` from its `bench.json`; do not edit by hand. Measure and rewrite this page with",
        "`bin/bench --out bench.json` (every case; `--quick`: shorter clips), or",
        "rewrite it from saved results with `.venv/bin/python bin/bench.py --markdown-from bench.json`.",
        "",
        "Every case runs in a process of its own on an 854×480 30 fps clip with audio, panning over a real",
        'photograph; "short" and "long" clips differ tenfold in length, so peak memory can be compared at',
        "1× and 10×. Back-to-back runs of one case move by about ±5 %: compare ratios measured in one run.",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {m.get('cpu', unknown)}, {m.get('cores', '?')} cores |",
        f"| software | Python {m.get('python', '?')}, torch {m.get('torch', '?')}, OpenCV {m.get('opencv', '?')}, "
        f"PyAV {m.get('av', '?')}, NumPy {m.get('numpy', '?')} |",
        f"| date | {results.get('date', unknown)} |",
        f"| command | `{results.get('command', unknown)}` |",
    ]
    if results.get("random_init_weights"):
        lines.append("| weights | random init for " + ", ".join(f"`{n}`" for n in results["random_init_weights"])
                     + " (speed does not depend on the values) |")
    cases = results.get("cases", {})
    simple = {k: v for k, v in cases.items() if "fps" in v}
    if simple:
        lines += ["", "## Throughput and memory", "",
                  "| case | frames | frames/s | peak RSS (MiB) | files in TMPDIR |", "|---|---|---|---|---|"]
        for k, v in simple.items():
            tmp = str(v["tmp_files_seen"]) if "tmp_files_seen" in v else ""
            rss = _num(v["peak_rss_mib"]) if "peak_rss_mib" in v else ""
            lines.append(f"| {k} | {v.get('frames', '')} | {_num(v['fps'])} | {rss} | {tmp} |")
    for k, v in cases.items():
        if "stage_fps" not in v:
            continue
        cpu, cores = v.get("stage_cpu_ms", {}), v.get("stage_cores", {})
        lines += ["", f"## Parts alone: {k}", "",
                  "Each part of the style's pipeline alone on the whole machine (frames/s), and its CPU time a frame",
                  "with the thread counts a run gives it. The slowest part bounds what overlapping them can reach.",
                  "", "| part | frames/s alone | CPU ms a frame | cores used |", "|---|---|---|---|"]
        for part, f in v["stage_fps"].items():
            c = _num(cpu[part]) if part in cpu else ""
            n = _num(cores[part]) if part in cores else ""
            lines.append(f"| {part} | {_num(f)} | {c} | {n} |")
        for part, x in v.items():
            if part.endswith("alone fps"):
                lines.append(f"| {part[:-10]} (pipeline step) | {_num(x)} | | |")
            elif part.endswith("ms/frame"):
                lines.append(f"| {part[:-9]} | | {_num(x)} | |")
    quality = {k: v for k, v in cases.items() if any(q.startswith("warping_error") for q in v)}
    for k, v in quality.items():
        lines += ["", f"## {k}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {q} | {_num(x)} |" for q, x in v.items()
                  if q.startswith(("warping_error", "cdc", "psnr"))]
    if results.get("ratios"):
        lines += ["", "## Ratios (same run)", "", "| ratio | value |", "|---|---|"]
        lines += [f"| {k} | {_num(v)} |" for k, v in results["ratios"].items()]
    return "\n".join(lines) + "\n"


def write_markdown(results: dict, path: Path) -> None:
    """Write :func:`benchmarks_markdown` to ``path`` (whole or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(benchmarks_markdown(results))
    os.replace(part, path)


CASES = {"weights": case_weights, "decode": case_decode, "transcode": case_transcode,
         "transcode_yuv": case_transcode_yuv, "run": case_run, "model": case_model,
         "stabilizer": case_stabilizer, "temporal": case_temporal_quality, "stages": case_stages}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
