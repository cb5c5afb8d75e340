"""The training loop: data -> objective step -> log, samples, checkpoints; resumable and distributed.

    from vidcolor.training import load_recipe, train
    report = train(load_recipe("configs/train/colorize_tiny.toml"), "runs/tiny")

Steps, in order:

1. **Distributed setup**: under ``torchrun`` (``WORLD_SIZE`` > 1) a process group is created
   (``gloo`` on CPU, ``nccl`` on CUDA) and networks are wrapped in DistributedDataParallel; rank 0
   alone writes files.
2. **Seed and determinism**: python/numpy/torch seeded from ``train.seed``; on CPU deterministic
   algorithms, so the same recipe gives the same losses bit for bit.
3. **Data**: the folders are scanned once (unreadable files warned about and counted, the eval
   split excluded) and the scan is saved in ``RUN_DIR/data_index.json``; a resumed run reuses it.
4. **Networks, Adam, linear decay**, or everything restored from the last checkpoint.
5. **Loop**: one objective step per batch; a CSV row per step (``log.csv``); sample grids
   (``samples/step_*.png``) and the loss curve (``loss.png``) every ``sample_every`` steps;
   a checkpoint every ``checkpoint_every`` steps and at the end.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.training import checkpoint as ckpt
from vidcolor.training.datasets import (AlignedClipDataset, ClipDataset, UnalignedClipDataset, make_loader,
                                        pair_by_name)
from vidcolor.training.media import ScanResult, scan, scan_key
from vidcolor.training.critic import build_critic_objective
from vidcolor.training.objectives import build_discriminator, build_generator, build_objective
from vidcolor.training.recipe import Recipe, recipe_from_dict
from vidcolor.training.restoration import RestorationDataset
from vidcolor.training.style import StyleObjective
from vidcolor.training.visuals import save_loss_curve, save_sample_grid

Warn = Callable[[str], None]
# train.* keys a resumed run may change (``vidcolor train --resume --set train.threads=1``)
RESUME_KEYS = ("threads", "checkpoint_every", "keep_checkpoints", "sample_every", "log_every")


@dataclass
class TrainReport:
    run_dir: str
    start_step: int
    steps: int
    seconds: float
    last: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""
    data: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# -- 1. distributed ---------------------------------------------------------------------------------
def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("train.device is 'cuda' but no CUDA device is available (use cpu or auto)")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


# -- 3. data --------------------------------------------------------------------------------------------
def scan_options(recipe: Recipe, run_dir: Path, domain: str) -> dict:
    d, o = recipe.data, recipe.objective
    cache = (d.cache_dir or str(run_dir / "cache")) if d.cache else None
    return dict(exclude=tuple(d.exclude), exclude_splits=tuple(d.exclude_splits if domain == "a" else d.exclude_splits_b),
                skip_grey=domain == "a" and (o.task == "colorize" or o.from_grey) and d.skip_grey,
                min_frames=(d.clip_len - 1) * d.clip_stride + 1, load_size=d.load_size, cache_dir=cache,
                max_frames=d.max_frames)


def scan_data(recipe: Recipe, run_dir: Path, warn: Warn, rank: int = 0,
              world: int = 1) -> tuple[ScanResult, ScanResult | None]:
    """Scan ``data.paths`` (and ``paths_b``), reusing ``RUN_DIR/data_index.json`` when it matches.
    Under torchrun rank 0 scans (and fills the cache) while the others wait, then read its index."""
    d, o = recipe.data, recipe.objective
    if not d.paths:
        raise InputError("no training data: give --data FOLDER (or data.paths in the recipe)")
    needs_b = o.kind == "cyclegan" or (o.kind == "pix2pix" and o.task == "stylize")
    if needs_b and not d.paths_b:
        raise InputError(f"{o.kind} {o.task} needs a second folder: give --data-b FOLDER (domain B / targets)")
    for p in d.paths + (d.paths_b if needs_b else ()):
        if not Path(p).expanduser().exists():
            raise InputError(f"data not found: {p}")
    opts_a, opts_b = scan_options(recipe, run_dir, "a"), scan_options(recipe, run_dir, "b")
    key = scan_key(d.paths, **opts_a) + (scan_key(d.paths_b, **opts_b) if needs_b else "")
    index = run_dir / "data_index.json"
    if world > 1 and rank != 0:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written the index
    if index.is_file():
        saved = json.loads(index.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            a = ScanResult.from_json(saved["a"])
            return a, ScanResult.from_json(saved["b"]) if saved.get("b") else None
    a = scan(d.paths, warn=warn, **opts_a)
    b = scan(d.paths_b, warn=warn, **opts_b) if needs_b else None
    if rank == 0:
        data = {"key": key, "a": a.to_json(), "b": b.to_json() if b else None}
        atomic_write(index, json.dumps(data, indent=1))
    if world > 1 and rank == 0:
        import torch.distributed as dist

        dist.barrier()
    return a, b


def build_dataset(recipe: Recipe, a: ScanResult, b: ScanResult | None, warn: Warn):
    d, o = recipe.data, recipe.objective
    if o.kind == "cyclegan":
        return UnalignedClipDataset(a.sources, b.sources if b else [], d, recipe.train.seed)
    if o.task == "restoration":
        return RestorationDataset(a.sources, d, recipe.train.seed)
    if o.kind == "pix2pix" and o.task == "stylize":
        pairs, lonely = pair_by_name(a, b, list(d.paths), list(d.paths_b))
        if lonely:
            warn(f"{len(lonely)} files have no namesake in the other folder and are not used (e.g. {lonely[0]})")
        if not pairs:
            raise InputError("aligned pix2pix: no file of --data has a namesake in --data-b")
        return AlignedClipDataset(pairs, d, recipe.train.seed)
    return ClipDataset(a.sources, d, recipe.train.seed)


def make_objective(recipe: Recipe, device: torch.device, wrap=None, rank: int = 0):
    """The recipe's objective: pix2pix and CycleGAN from ``objectives.build_objective``; painting
    styles (``training/style.py``) and realism critics (``training/critic.py``) build on those parts."""
    o, seed, amp = recipe.objective, recipe.train.seed, recipe.train.amp
    if o.kind == "style":
        return StyleObjective(build_generator(recipe), build_discriminator(recipe, 3), o, device, wrap, seed, amp)
    if o.kind == "critic":
        return build_critic_objective(recipe, device, wrap, seed, amp)
    return build_objective(recipe, device, wrap, rank)


# -- helpers ----------------------------------------------------------------------------------------
def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def lr_factor(recipe: Recipe) -> Callable[[int], float]:
    """Upstream ``--lr_policy linear`` in steps: 1 until ``decay_start``, then linearly to ~0 at ``steps``."""
    t = recipe.train
    start = t.decay_start if t.decay_start >= 0 else t.steps // 2
    return lambda step: 1.0 - max(0, step - start) / float(max(t.steps - start, 0) + 1)


class CsvLog:
    """``log.csv``: one row per step (``step, lr, seconds`` and the losses), flushed every row.
    On resume, rows after the checkpoint's step (written before a crash) are dropped."""

    def __init__(self, path: Path, start_step: int):
        self.path, self.fields, self.rows = path, None, []
        if path.is_file() and start_step > 0:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = reader.fieldnames
                self.rows = [r for r in reader if int(r["step"]) <= start_step]
        self.file = open(path, "w", newline="")
        if self.fields:
            self.writer = csv.DictWriter(self.file, self.fields)
            self.writer.writeheader()
            self.writer.writerows(self.rows)

    def write(self, row: dict) -> None:
        if self.fields is None:
            self.fields = list(row)
            self.writer = csv.DictWriter(self.file, self.fields)
            self.writer.writeheader()
        self.writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items() if k in self.fields})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_log(run_dir: str | Path) -> list[dict[str, float]]:
    """``log.csv`` as a list of ``{column: float}``."""
    with open(Path(run_dir) / "log.csv", newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def _progress(enabled: bool, total: int, start: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} it/s"),
                 TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), transient=False)
    p.start()
    p.add_task("train", total=total, completed=start, rate="-", losses="")
    return p


# -- the loop ---------------------------------------------------------------------------------------
def train(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, steps: int | None = None,
          progress: bool | None = None, warn: Warn | None = None) -> TrainReport:
    """Train ``recipe`` into ``run_dir`` (see the module docstring). ``resume`` continues from the
    last checkpoint with the recipe saved in it (``steps`` may raise the total); ``progress``:
    a rich bar (default: when stderr is a terminal); ``warn``: called with one line per warning."""
    started = time.perf_counter()
    warnings: list[str] = []
    rank, world, local_rank = dist_info()

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if rank == 0 and warn is not None:
            warn(msg)

    run_dir = Path(run_dir)
    existing = ckpt.latest_checkpoint(run_dir)
    payload = None
    if existing and not resume:
        raise InputError(f"{run_dir} already has checkpoints (step {existing[0]}): pass --resume to continue it, "
                         "or choose another --out")
    if resume and existing:
        payload = ckpt.load_checkpoint(existing[1])
        # the checkpoint's recipe, but the bookkeeping keys (threads, checkpoint and sample cadence) as given:
        # they change how a run uses the machine, not what it computes
        saved = recipe_from_dict(payload["recipe"], f"{existing[1]} (recipe)")
        recipe = saved.replace(train={k: getattr(recipe.train, k) for k in RESUME_KEYS})
    if steps is not None:
        recipe = recipe.replace(train={"steps": int(steps)})
    t = recipe.train
    start = int(payload["step"]) if payload else 0
    if payload and payload.get("world_size", 1) != world:
        _warn(f"resuming a run trained with {payload.get('world_size')} processes with {world}: the data order differs")

    # 1. distributed
    device = pick_device(t.device, local_rank)
    if world > 1:
        init_distributed(device)
    if t.threads:
        torch.set_num_threads(t.threads)
    # 2. seed and determinism
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "recipe.json", json.dumps(recipe.to_dict(), indent=2))
    # 3. data
    a, b = scan_data(recipe, run_dir, _warn, rank, world)
    dataset = build_dataset(recipe, a, b, _warn)
    summary = {"a": a.summary(), **({"b": b.summary()} if b else {})}
    # 4. networks and optimisers
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None

        def wrap(m):
            return DDP(m, device_ids=ids)
    else:
        wrap = None
    objective = make_objective(recipe, device, wrap, rank)
    opts = {g: torch.optim.Adam(objective.parameters(g), lr=t.lr, betas=(t.beta1, t.beta2)) for g in objective.groups}
    factor = lr_factor(recipe)
    scheds = {g: torch.optim.lr_scheduler.LambdaLR(o, factor) for g, o in opts.items()}
    if payload:
        for name, net in objective.nets.items():
            net.load_state_dict(payload["nets"][name])
        for g in opts:
            opts[g].load_state_dict(payload["optimizers"][g])
            scheds[g].load_state_dict(payload["schedulers"][g])
            scheds[g].lr_lambdas = [factor]  # the saved lambda is not restored; ``steps`` may have changed
        objective.load_extra_state(payload["objective"])
        ckpt.set_rng_state(payload["rng"])

    def save(step: int) -> Path:
        return ckpt.save_checkpoint(run_dir, step, {
            "recipe": recipe.to_dict(), "world_size": world, "data": {"next_sample": step * world * t.batch_size,
                                                                       "summary": summary},
            "nets": {k: v.state_dict() for k, v in objective.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in opts.items()},
            "schedulers": {k: v.state_dict() for k, v in scheds.items()},
            "objective": objective.extra_state()}, keep=t.keep_checkpoints)

    # 5. loop
    log = CsvLog(run_dir / "log.csv", start) if rank == 0 else None
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    bar = _progress(show, t.steps, start)
    loader = make_loader(dataset, start, t.steps, t.batch_size, rank, world, recipe.data.num_workers)
    first: dict[str, float] = {}
    logs: dict[str, float] = {}
    last_ckpt = str(existing[1]) if payload else ""
    tick, tick_step = time.perf_counter(), start
    objective.train(True)
    try:
        for step, batch in enumerate(loader, start=start + 1):
            lr = next(iter(opts.values())).param_groups[0]["lr"]  # one schedule for every optimiser
            logs = objective.step(batch, opts)
            for s in scheds.values():
                s.step()
            first = first or dict(logs)
            if rank != 0:
                continue
            if step % t.log_every == 0 or step == t.steps:
                log.write({"step": step, "lr": lr, "seconds": round(time.perf_counter() - started, 3), **logs})
            if bar is not None:
                now = time.perf_counter()
                rate = (step - tick_step) / max(now - tick, 1e-9)
                bar.update(bar.task_ids[0], completed=step, rate=f"{rate:.2f}",
                           losses=" ".join(f"{k} {v:.3f}" for k, v in logs.items()))
            if step % t.sample_every == 0 or step == t.steps:
                save_sample_grid(run_dir / "samples" / f"step_{step:07d}.png", objective, batch, recipe)
                save_loss_curve(run_dir / "loss.png", read_log(run_dir))
            if step % t.checkpoint_every == 0 or step == t.steps:
                last_ckpt = str(save(step))
                if bar is None and warn is not None:
                    print(f"vidcolor train: step {step}/{t.steps} " + " ".join(f"{k} {v:.4f}" for k, v in logs.items()),
                          file=sys.stderr, flush=True)
    finally:
        if bar is not None:
            bar.stop()
        if log is not None:
            log.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainReport(str(run_dir), start, t.steps, round(time.perf_counter() - started, 2), logs, first,
                       last_ckpt, summary, warnings)
