"""One framework's share of a benchmark suite, in a process of its own: ``python -m videoml.bench.worker PLAN``.

The plan (written by :mod:`videoml.bench.suite`) names the framework, the cells to measure, the timing, the thread
count and where to write. Each cell becomes one JSON file under ``<out>/runs/`` (:func:`run_record`); the process
imports only its own framework (the TensorFlow worker imports torch only to build the model it mirrors). A cell
too noisy to report ends the worker with exit status 3 and the message in ``<out>/error-<framework>.txt``.

Cells (``kind``, :class:`~videoml.bench.records.Cell`):
  - ``model``: ``stage`` forward or train_step of ``model`` in ``mode`` at ``batch_size`` (random clips, on the
    device), or fit_step: the train step as ``videoml fit`` runs it (:mod:`videoml.bench.fit_step`);
  - ``decode``: one training sample of a video set (open, decode the clip's frames, scale, crop) per call with
    ``backend``, single-threaded, with the process's CPU time and against FFmpeg decoding the same frames;
    ``decode_cached``: the same from the videos kept decoded in memory (and the first epoch's cost of decoding them);
  - ``transform``: uint8 -> normalised float of a batch on the device; ``h2d``: a pinned uint8 batch to the GPU;
  - ``pipeline``: data -> model training with ``workers`` loader workers (DataLoader / tf.data), with the
    fraction of the time the step waited for data;
  - ``random_clip``, ``open_random_clip``, ``test_views``, ``memory``: reading clips (:mod:`videoml.bench.reading`);
  - ``infer``: ``videoml infer``, PyTorchVideo's tutorial loop, the model alone (:mod:`videoml.bench.inference`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

from videoml.bench.measure import Timing, TooNoisy, check_noise, round_robin, summarize, time_rounds
from videoml.bench.records import Cell, Run, write_run
from videoml.bench.suite import Plan
from videoml.environment import environment

MACHINE = ("cpu", "cores", "gpus", "platform", "python", "torch", "cuda", "tensorflow", "ffmpeg", "device")


def run_record(plan: Plan, env: dict, cell: Cell, rounds: list[float] | None, items_per_step: int,
               **measured) -> Run:
    """One measurement as written to ``runs/<name>.json`` (schema in docs/benchmarks.md); ``env``: where it ran
    (:func:`videoml.environment.environment`)."""
    return Run(name=cell.name, cell=cell, samples_s=rounds or [],
               stats=summarize(rounds, items_per_step) if rounds else None, items_per_step=items_per_step,
               suite=plan.suite, framework={"name": plan.framework, "version": env.get(plan.framework_package)},
               machine={k: env.get(k) for k in MACHINE}, commit=env.get("git_commit"), dirty=env.get("git_dirty"),
               seed=plan.seed, threads=plan.threads, timing=dataclasses.asdict(plan.timing),
               tensorflow_loaded="tensorflow" in sys.modules, **measured)


# --- PyTorch -------------------------------------------------------------------------------------------------------

def _torch_cells(plan: Plan, cells, timing: Timing, data_timing: Timing, emit) -> None:
    import torch

    from videoml.bench.fit_step import fit_step_cell
    from videoml.bench.inference import infer_cell
    from videoml.bench.reading import memory_cell, open_cell, random_clip_cell
    from videoml.runtime import parse_device, synchronize

    torch.set_num_threads(plan.threads)
    device = parse_device(plan.device)
    sync = lambda: synchronize(device)  # noqa: E731
    single = {"decode": _decode_cells, "decode_cached": _cached_cells, "random_clip": random_clip_cell,
              "open_random_clip": open_cell, "test_views": open_cell,
              "memory": memory_cell}  # one thread: what one loader worker does
    for kind, group in itertools.groupby(cells, key=lambda c: c.kind):  # lazily: "best" pipelines resolve late
        if kind in ("decode", "decode_cached"):  # all at once: timed round-robin
            group = [list(group)]
        for cell in group:
            if kind in single:
                torch.set_num_threads(1)
                single[kind](plan, cell, data_timing, emit)
                torch.set_num_threads(plan.threads)
            elif kind == "model" and cell.stage == "fit_step":
                fit_step_cell(plan, cell, timing, emit, device, sync)
            elif kind == "model":
                _model_cell(plan, cell, timing, emit, device, sync)
            elif kind in ("transform", "h2d"):
                _transfer_cell(cell, timing, emit, device, sync)
            elif kind == "pipeline":
                _torch_pipeline(plan, cell, data_timing, emit, device, sync)
            elif kind == "infer":
                infer_cell(plan, cell, timing, emit)


def _model_cell(plan: Plan, cell: Cell, timing: Timing, emit, device, sync) -> None:
    """A model's forward or train step in a mode: timed, its peak memory on a GPU, its operators' shares (and a
    profiler trace when the plan asks for one)."""
    import torch

    from videoml.bench.model import Mode, torch_steps
    from videoml.profiling import Profile, ProfileSchedule

    _, steps = torch_steps(cell.model, Mode.parse(cell.mode), cell.batch_size, device, plan.classes, plan.seed)
    step = steps[cell.stage]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first_call_s = _first_call(step, sync)
    rounds = time_rounds(step, timing, sync)
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    if plan.profile:
        schedule = ProfileSchedule(skip_first=0, wait=0, warmup=1, active=3)
        with Profile(Path(plan.out) / f"profile-{cell.file_stem}", device.type, schedule) as profile:
            for _ in range(4):
                step()
                sync()
                profile.step()
    emit(cell, rounds, cell.batch_size, peak_memory_mb=memory, operators=_operator_shares(step, device, sync),
         first_call_s=first_call_s)


def _first_call(step, sync=lambda: None) -> float:
    """Seconds of a model cell's first call, the model built: tracing, compiling and autotuning included (what a
    process pays before its first batch; an ahead-of-time compiled model pays it before, once)."""
    started = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - started


def _transfer_cell(cell: Cell, timing: Timing, emit, device, sync) -> None:
    """uint8 -> normalised float of a batch on the device (transform), or a pinned uint8 batch to the GPU (h2d)."""
    import torch

    from videoml.bench.model import random_clips
    from videoml.data.transforms import normalize
    from videoml.models.registry import model_input

    spec = model_input(cell.model)
    if cell.kind == "transform":
        batch = random_clips(spec, cell.batch_size, device, torch.uint8)
        step = lambda: normalize(batch, spec.mean, spec.std)  # noqa: E731
    else:
        batch = random_clips(spec, cell.batch_size, dtype=torch.uint8)
        parts = [b.pin_memory() for b in (batch if isinstance(batch, list) else [batch])]
        step = lambda: [b.to(device, non_blocking=True) for b in parts]  # noqa: E731
    emit(cell, time_rounds(step, timing, sync), cell.batch_size)


def _operator_shares(step, device, sync, top: int = 6) -> list[list]:
    """Where one step's time goes: the ``top`` operators by self time (CUDA time on a GPU), as [name, share]."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    times: dict[str, float] = {}
    for event in prof.key_averages():  # Inductor's graphs by one name ("## Call CompiledFxGraph <hash> ##" each)
        name = "Inductor's compiled graphs" if event.key.startswith("## Call CompiledFxGraph") else event.key
        times[name] = times.get(name, 0.0) + getattr(event, key)
    total = sum(times.values()) or 1
    ranked = sorted(((t, name) for name, t in times.items() if t > 0), reverse=True)
    return [[name, round(t / total, 4)] for t, name in ranked[:top]]


# decode_cached cells: a budget no video set of a suite fills (the cache keeps a video up to a quarter of it)
CACHE_EVERYTHING_MB = 1 << 20


def _clip_dataset(plan: Plan, cell: Cell, backend: str = "pyav", decoded_cache_mb: int = 0):
    """The training data set of a data cell (its video set, encoding, clips per video, backend), read once untimed:
    frame indices built and cached (with ``decoded_cache_mb``, the videos decoded into memory), as from a training
    run's second epoch on."""
    from videoml.data.clips import ClipDataset, ClipOptions, SampleKey
    from videoml.data.datasets import VideoList
    from videoml.models.registry import model_input

    videos = [Path(p) for p in plan.videos[cell.videos or "web"][cell.data or "original"]]
    items = tuple((p, i % 8) for i, p in enumerate(videos))
    options = ClipOptions(backend=backend, seed=plan.seed, clips_per_video=cell.clips_per_video or 1,
                          batch_size=cell.clips_per_video or 1, decoded_cache_mb=decoded_cache_mb)  # a video a call
    dataset = ClipDataset(VideoList(items, tuple(f"class_{i}" for i in range(8)), "benchmark videos"),
                          model_input(cell.model), options, train=True)
    for index in range(len(dataset)):
        dataset[SampleKey(index, epoch=0)]
    return dataset


def _sample_key(call: int, n: int):
    """The training sample a data cell's ``call``-th call reads: epoch 1's in order, then epoch 2's, ... (epoch 0
    was the untimed first pass), so every pass draws other clip positions, as training does."""
    from videoml.data.clips import SampleKey

    epoch, index = divmod(call, n)
    return SampleKey(index, epoch=epoch + 1)


def _sample_step(dataset):
    calls = itertools.count()
    return lambda: dataset[_sample_key(next(calls), len(dataset))]


def _sample_rounds(datasets, timing: Timing):
    """The data sets' samples timed round-robin, a round as many calls as whole passes over the largest set take
    (at least ``timing.steps``)."""
    n = max(len(d) for d in datasets)
    passes = dataclasses.replace(timing, steps=n * -(-timing.steps // n), min_round_s=0.0)
    return round_robin([_sample_step(d) for d in datasets], passes)


def _decode_cells(plan: Plan, cells: list[Cell], timing: Timing, emit) -> None:
    """Per call, a cell's next training sample; a round is as many calls as whole passes over the largest cell's
    videos take (at least ``timing.steps``); the cells are timed round-robin so that their ratios (encodings, clips
    per video) hold on a drifting machine. With the process's CPU time per clip, and the ceiling (one clip per
    video): FFmpeg decoding each clip timed, from the key frame before it to its last."""
    from videoml.bench.ceilings import decode_ceiling
    from videoml.data.decoding import load_index
    from videoml.data.sampling import random_clip

    datasets = [_clip_dataset(plan, cell, cell.backend) for cell in cells]
    for cell, dataset, rounds in zip(cells, datasets, _sample_rounds(datasets, timing)):
        ceiling = None
        if dataset.repeats == 1:
            keys = [_sample_key(call, len(dataset)) for call in range(timing.warmup, timing.warmup + rounds.calls)]
            paths = [dataset.videos.items[key.index][0] for key in keys]
            ceiling = decode_ceiling([(path, random_clip(dataset.clip, load_index(path).timestamps,
                                                         dataset.sample_rng(key.epoch, key.index)))
                                      for path, key in zip(paths, keys)], repeats=1)  # many files: spread averages
        emit(cell, rounds.seconds, dataset.repeats, ceiling=ceiling,
             cpu_ms_per_clip=1000 * rounds.cpu_s / (rounds.calls * dataset.repeats),
             bytes=sum(path.stat().st_size for path, _ in dataset.videos.items))


def _cached_cells(plan: Plan, cells: list[Cell], timing: Timing, emit) -> None:
    """Per call, a cell's next training sample from its videos kept decoded in memory (fit's
    ``data.decoded_cache_mb``): what a loader worker does in every epoch after the first (cut, scale, crop), timed
    round-robin as the decode cells are; with the first epoch's CPU time per clip, which decodes each video whole
    into memory (``fill_cpu_ms_per_clip``, one pass)."""
    datasets, fills = [], []
    for cell in cells:
        started = time.process_time()
        datasets.append(_clip_dataset(plan, cell, cell.backend, CACHE_EVERYTHING_MB))
        fills.append(1000 * (time.process_time() - started) / (len(datasets[-1]) * datasets[-1].repeats))
    for cell, dataset, fill, rounds in zip(cells, datasets, fills, _sample_rounds(datasets, timing)):
        clips = rounds.calls * dataset.repeats
        emit(cell, rounds.seconds, dataset.repeats, cpu_ms_per_clip=1000 * rounds.cpu_s / clips,
             fill_cpu_ms_per_clip=fill)


def _timed_pipeline(batches, step, timing: Timing) -> tuple[list[float], float]:
    """Seconds per batch for each round of ``timing.steps`` batches, and the fraction of time spent waiting for
    the next batch."""
    iterator, waited = iter(batches), [0.0]

    def next_step():
        before = time.perf_counter()
        batch = next(iterator)
        waited[0] += time.perf_counter() - before
        step(batch)

    for _ in range(timing.warmup):  # untimed, and not counted as waiting
        step(next(iterator))
    rounds = time_rounds(next_step, dataclasses.replace(timing, warmup=0, min_round_s=0.0))
    return rounds, waited[0] / (sum(rounds) * timing.steps)


def _torch_pipeline(plan, cell, timing, emit, device, sync) -> None:
    from torch.utils.data import DataLoader

    from videoml.bench.model import Mode, torch_steps
    from videoml.data.clips import epoch_order, flatten_repeats
    from videoml.processes import worker_init
    from videoml.data.transforms import normalize
    from videoml.runtime import MEMORY_FORMATS

    dataset = _clip_dataset(plan, cell)
    per_batch = cell.batch_size // dataset.repeats  # items of k clips
    needed = (timing.warmup + timing.steps * timing.repeats) * per_batch
    order = [v for epoch in range(-(-needed // len(dataset)))
             for v in epoch_order(dataset, epoch, shuffle=True, seed=plan.seed)]  # as training reads them
    loader = DataLoader(dataset, batch_size=per_batch, sampler=order[:needed], num_workers=cell.workers,
                        worker_init_fn=worker_init, pin_memory=device.type == "cuda",
                        collate_fn=flatten_repeats if dataset.repeats > 1 else None,
                        prefetch_factor=4 if cell.workers else None)
    mode = Mode.parse(cell.mode)
    memory_format = MEMORY_FORMATS[mode.memory_format]
    _, steps = torch_steps(cell.model, mode, cell.batch_size, device, plan.classes, plan.seed)
    spec = dataset.spec

    def step(batch):
        video = normalize(batch.video.to(device, non_blocking=True), spec.mean, spec.std, memory_format)
        steps["train_step"](video, batch.label.to(device) % plan.classes)
        sync()

    rounds, wait = _timed_pipeline(loader, step, timing)
    emit(cell, rounds, cell.batch_size, data_wait=wait)


# --- TensorFlow ----------------------------------------------------------------------------------------------------

def _tf_cells(plan: Plan, cells, timing: Timing, data_timing: Timing, emit) -> None:
    import torch

    torch.set_num_threads(1)  # torch only builds the models the Keras twins mirror
    from videoml.bench.tf_model import tf_steps

    for cell in cells:
        if cell.kind == "model":
            _, steps = tf_steps(cell.model, cell.mode, cell.batch_size, plan.classes, plan.seed,
                                threads=plan.threads)
            first_call_s = _first_call(steps[cell.stage])
            emit(cell, time_rounds(steps[cell.stage], timing), cell.batch_size, first_call_s=first_call_s)
        elif cell.kind == "pipeline":
            _tf_pipeline(plan, cell, data_timing, emit)


def _tf_pipeline(plan, cell, timing, emit) -> None:
    from videoml.bench.tf_model import make_train_step
    from videoml.tf.data import ClipPipeline
    from videoml.tf.fit import with_normalization
    from videoml.tf.mirror import build_keras_model

    dataset = _clip_dataset(plan, cell)
    pipeline = ClipPipeline(dataset, cell.batch_size, parallel=max(cell.workers, 1), seed=plan.seed)
    net = build_keras_model(cell.model, plan.classes, seed=plan.seed)
    train_step = make_train_step(with_normalization(net, dataset.spec.mean, dataset.spec.std), cell.mode)
    needed = timing.warmup + timing.steps * timing.repeats
    epochs = -(-needed // pipeline.steps)
    batches = (b for e in range(epochs) for b in pipeline.epoch(e))
    rounds, wait = _timed_pipeline(batches, lambda b: train_step(b["video"], b["label"] % plan.classes).numpy(),
                                   timing)
    emit(cell, rounds, cell.batch_size, data_wait=wait)


def main(plan_path: str) -> int:
    plan = Plan.read(plan_path)
    out = Path(plan.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    framework, timing, data_timing = plan.framework, plan.timing, plan.data_timing
    if framework == "tf":
        import videoml.tf  # noqa: F401  (before TensorFlow loads: it sets up the import order)
    env = environment(plan.device if framework == "torch" else None)
    (out / f"environment-{framework}.json").write_text(json.dumps(env, indent=2) + "\n")

    fastest: dict[tuple, tuple[float, str]] = {}  # (model, batch) -> the fastest train step so far, and its mode

    def emit(cell: Cell, rounds: list[float] | None, items: int, **measured) -> None:
        run = run_record(plan, env, cell, rounds, items, **measured)
        if cell.kind == "model" and cell.stage == "train_step":
            key = (cell.model, cell.batch_size)
            fastest[key] = max(fastest.get(key, (0.0, "")), (run.clips_per_s, cell.mode))
        if run.stats:
            check_noise(run.stats, run.name, timing)
        write_run(run, out)
        print(f"{run.name}: " + (f"{run.clips_per_s:.2f} {run.unit}s/s (spread {run.stats['spread']:.0%})"
                                 if run.stats else f"{run.rss_growth_mb:+.1f} MB resident"), flush=True)

    def resolve(cell: Cell) -> Cell:
        """A pipeline cell's mode "best": the mode of the fastest train step measured (else the first listed)."""
        if cell.mode != "best":
            return cell
        return dataclasses.replace(cell, mode=fastest.get((cell.model, cell.batch_size), (0.0, plan.modes[0]))[1])

    cells = (resolve(cell) for cell in plan.cells)
    try:
        (_tf_cells if framework == "tf" else _torch_cells)(plan, cells, timing, data_timing, emit)
    except TooNoisy as e:
        (out / f"error-{framework}.txt").write_text(str(e) + "\n")
        print(f"videoml bench: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
