"""``videoml tf fit``: train the Keras twin from the PyTorch side's config, with ``tf.distribute.MirroredStrategy``.

The config is the one ``videoml fit`` reads (``seed_everything``, ``model``, ``data``, ``trainer``): the same model
name and input, data sources and loaders' batch size, optimiser, learning rate and its scaling with the global batch,
warm-up + cosine schedule, epochs and validation interval. What it does, as on the PyTorch side:

- the model starts from the PyTorch model's initial weights (or ``model.weights``), ported;
- global batch = ``data.batch_size`` x replicas; the learning rate is scaled to it with ``model.lr_base_batch_size``;
- ``trainer.sync_batchnorm``: BatchNorm statistics over all replicas (Keras' ``synchronized``);
- evaluation: ``data.views`` x ``data.crops`` per video, softmax scores averaged per video, top-1 / top-5 with
  torchmetrics' definition; the best epoch by ``val/top1`` is kept and tested at the end;
- unreadable training videos are skipped (weight 0), counted, and fail the run above ``model.max_bad_fraction``.

Execution is explicit, never Keras' ``jit_compile="auto"`` (XLA on GPUs only): ``eager`` (no tf.function),
``graph`` (tf.function; the default), ``xla`` (tf.function with ``jit_compile=True``). Keras' grouped convolutions
(X3D's depthwise ones) run through an XLA-compiled function in every mode, as TensorFlow has no other grouped Conv3D
kernel on the CPU.

Devices: the visible GPUs, else the CPU; ``devices: N`` on a CPU splits it into N logical devices (tests, and a
check that N replicas compute what one does). Several machines: ``tf.distribute.MultiWorkerMirroredStrategy`` with a
``TF_CONFIG`` per worker (see the README); this command runs one worker.

A run directory (``<trainer.default_root_dir>/tf/version_N``) holds ``config.yaml`` (resolved), ``classes.txt``,
``environment.json``, ``metrics.csv`` (one row per epoch, the PyTorch side's metric names), ``last.keras`` (model and
optimiser state, to resume from with ``--resume``), ``best.keras`` and ``state.json``.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import torch
import yaml

from videoml.data.datamodule import VideoDataModule
from videoml.models.registry import model_input
from videoml.environment import environment
from videoml.errors import VideomlError, first_line
from videoml.fileio import write_atomic
from videoml.tf.data import ClipPipeline, training_batches
from videoml.tf.layers import Normalize
from videoml.tf.mirror import build_keras_model
from videoml.tf.optim import make_optimizer, warmup_cosine
from videoml.recipe import average_per_video, report_bad_videos, scaled_lr, top_k_accuracy

log = logging.getLogger("videoml.tf")

MODES = ("eager", "graph", "xla")
# The VideoClassifier options the twin follows; others (memory_format, compile) are PyTorch's own.
_MODEL_KEYS = {"model", "input", "model_options", "weights", "optimizer", "lr", "lr_base_batch_size", "momentum",
               "nesterov", "weight_decay", "warmup_epochs", "label_smoothing", "max_bad_fraction", "memory_format",
               "compile", "classes"}


@dataclass
class FitOptions:
    devices: int | None = None  # replicas: None = every visible GPU, else 1 CPU
    mode: str = "graph"
    resume: bool = False
    run_dir: Path | None = None  # default: <trainer.default_root_dir>/tf/version_N
    progress: bool = False


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """A ``videoml fit`` YAML config with dotted overrides (``{"trainer.max_epochs": 3}``) applied."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise VideomlError(f"{path}: cannot read the config ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise VideomlError(f"{path}: not valid YAML ({first_line(e)})") from None
    for key, value in (overrides or {}).items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise VideomlError(f"override {key}: {part} is not a section")
        node[leaf] = value
    unknown = set(config.get("model", {})) - _MODEL_KEYS
    if unknown:
        raise VideomlError(f"{path}: unknown model options {sorted(unknown)}")
    return config


def strategy_for(devices: int | None) -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over ``devices`` GPUs (None: all visible), or over ``devices`` logical CPUs without GPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        count = len(gpus) if devices is None else devices
        if count > len(gpus):
            raise VideomlError(f"devices={count}, but {len(gpus)} GPU(s) are visible to TensorFlow")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(count)])
    count = devices or 1
    if count > 1:  # before TensorFlow's runtime starts (listing logical devices would start it)
        try:
            tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                                       [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:
            pass
    if len(tf.config.list_logical_devices("CPU")) < count:
        raise VideomlError(f"TensorFlow already started with fewer than {count} CPU devices; they must be set before "
                           "it runs anything (a fresh process)")
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(count)])


def with_normalization(net: keras.Model, mean, std) -> keras.Model:
    """``net`` taking uint8 clips, normalised on the device first (the PyTorch side does it after the transfer)."""
    clips = keras.Input(shape=net.input_shape[1:], dtype="uint8", name="clips_uint8")
    return keras.Model(clips, net(Normalize(mean, std, name="normalize")(clips)), name=f"{net.name}_uint8")


def _run_dir(root: Path, resume: bool) -> Path:
    """``root/version_N``: the latest run to resume, else the next new one (as Lightning's loggers number them)."""
    versions = [int(p.name[len("version_"):]) for p in root.glob("version_*") if p.name[len("version_"):].isdigit()]
    if resume and not versions:
        raise VideomlError(f"{root}: no run to resume")
    return root / f"version_{max(versions, default=-1) + (0 if resume else 1)}"


def evaluate(forward, pipeline: ClipPipeline) -> dict[str, float]:
    """Video-level top-1 / top-5 of ``pipeline``'s split with ``forward`` (clips -> logits): softmax scores averaged
    over each video's crops here, over its views by the PyTorch side's own :func:`average_per_video`."""
    parts = {"probs": [], "video_index": [], "label": [], "weight": []}
    for batch in pipeline.epoch(0):
        video = batch["video"]
        size, crops = int(video.shape[0]), int(video.shape[1])
        probs = tf.nn.softmax(forward(tf.reshape(video, (size * crops, *video.shape[2:]))), axis=-1)
        parts["probs"].append(tf.reduce_mean(tf.reshape(probs, (size, crops, -1)), axis=1).numpy())
        for key in ("video_index", "label", "weight"):
            parts[key].append(batch[key].numpy())
    if not parts["probs"]:
        return {"videos": 0.0}
    video_index, probs, label, weight = (torch.from_numpy(np.concatenate(parts[k])) for k in
                                         ("video_index", "probs", "label", "weight"))
    videos, probs, labels = average_per_video(video_index.long(), probs, label.long(), weight)
    if not len(videos):
        return {"videos": 0.0}
    return {"videos": float(len(videos)), **{k: float(v) for k, v in top_k_accuracy(probs, labels).items()}}


class _MetricsLog:
    """metrics.csv, one row per epoch; rewritten whole, so columns may appear later (validation, test)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = list(csv.DictReader(path.open())) if path.is_file() else []

    def add(self, row: dict) -> None:
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.path, text.getvalue())


def fit(config: dict, options: FitOptions) -> dict:
    """Train (and validate, and test the best epoch) as the config says; returns the last metrics row."""
    if options.mode not in MODES:
        raise VideomlError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    config = copy.deepcopy(config)
    seed = int(config.get("seed_everything", 0) or 0)
    model_cfg, data_cfg, trainer_cfg = (dict(config.get(k) or {}) for k in ("model", "data", "trainer"))
    name = model_cfg.get("model", "x3d_tiny")
    data = VideoDataModule(model_input(name, model_cfg.get("input")), **data_cfg)
    classes = data.classes
    if "train" not in data.sources:
        raise VideomlError("the config has no training data (data.train)")
    devices = trainer_cfg.get("devices")
    strategy = strategy_for(options.devices if options.devices is not None else
                            devices if isinstance(devices, int) else None)
    keras.utils.set_random_seed(seed)
    replicas = strategy.num_replicas_in_sync
    epochs = int(trainer_cfg.get("max_epochs", 1))
    val_every = int(trainer_cfg.get("check_val_every_n_epoch", 1))
    batch_size = int(data_cfg.get("batch_size", 8))
    workers = int(data_cfg.get("num_workers", 2))
    train = ClipPipeline(data.dataset("train"), batch_size * replicas, workers, seed)
    evaluation = {split: ClipPipeline(data.dataset(split), int(data_cfg.get("eval_batch_size") or batch_size),
                                      workers, seed) for split in ("val", "test") if split in data.sources}

    root = Path(trainer_cfg.get("default_root_dir") or "runs") / "tf"
    run = options.run_dir or _run_dir(root, options.resume)
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / "state.json"
    state = json.loads(state_path.read_text()) if options.resume and state_path.is_file() else {}
    if options.resume and not state:
        raise VideomlError(f"{run}: nothing to resume (no state.json)")

    config["model"] = {**model_cfg, "classes": classes}
    config["tf"] = {"mode": options.mode, "replicas": replicas, "global_batch_size": batch_size * replicas,
                    "devices": [d for d in strategy.extended.worker_devices]}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    env = environment()
    build = tf.sysconfig.get_build_info()
    env.update(tensorflow_cuda=build.get("cuda_version"), tensorflow_cudnn=build.get("cudnn_version"),
               tensorflow_devices=[d.name for d in tf.config.list_logical_devices()])
    (run / "environment.json").write_text(json.dumps({"stage": "tf fit", **env}, indent=2) + "\n")

    peak = scaled_lr(float(model_cfg.get("lr", 0.1)), model_cfg.get("lr_base_batch_size"), batch_size * replicas)
    schedule = warmup_cosine(peak, float(model_cfg.get("warmup_epochs", 1.0)), train.steps, epochs)
    with strategy.scope():
        if state:
            model = keras.saving.load_model(run / "last.keras")
        else:
            net = build_keras_model(name, len(classes), weights=model_cfg.get("weights"), seed=seed,
                                    synchronized_batchnorm=bool(trainer_cfg.get("sync_batchnorm", False)),
                                    **(model_cfg.get("model_options") or {}))
            spec = data.spec
            model = with_normalization(net, spec.mean, spec.std)
            optimizer = make_optimizer(model_cfg.get("optimizer", "sgd"), schedule,
                                       momentum=float(model_cfg.get("momentum", 0.9)),
                                       nesterov=bool(model_cfg.get("nesterov", True)),
                                       weight_decay=float(model_cfg.get("weight_decay", 5e-5)))
            model.compile(optimizer=optimizer,
                          loss=keras.losses.CategoricalCrossentropy(
                              from_logits=True, label_smoothing=float(model_cfg.get("label_smoothing", 0.0))),
                          weighted_metrics=[keras.metrics.CategoricalAccuracy(name="top1")],
                          run_eagerly=options.mode == "eager", jit_compile=options.mode == "xla")
    forward = model if options.mode == "eager" else tf.function(lambda x: model(x, training=False),
                                                                jit_compile=options.mode == "xla",
                                                                reduce_retracing=True)

    metrics = _MetricsLog(run / "metrics.csv")
    best = state.get("best_top1", -1.0)
    max_bad = float(model_cfg.get("max_bad_fraction", 0.01))
    row: dict = {}
    for epoch in range(state.get("epoch", -1) + 1, epochs):
        train.bad.clear()
        started = time.perf_counter()
        history = model.fit(training_batches(train, epoch, len(classes)), epochs=epoch + 1, initial_epoch=epoch,
                            shuffle=False, verbose=1 if options.progress else 0)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "step": int(model.optimizer.iterations.numpy()),
               "train/loss": float(history.history["loss"][-1]), "train/top1": float(history.history["top1"][-1]),
               "train/lr": float(schedule(max(int(model.optimizer.iterations.numpy()) - 1, 0))),
               "train/clips": float(train.samples - len(train.bad) * train.clips.repeats),
               "train/bad_videos": float(len(train.bad)),
               "throughput/clips_per_s": train.samples / seconds}
        report_bad_videos(sorted(train.bad), train.clips.videos, max_bad, epoch)
        if "val" in evaluation and ((epoch + 1) % val_every == 0 or epoch + 1 == epochs):
            scores = evaluate(forward, evaluation["val"])
            row.update({f"val/{k}": v for k, v in scores.items()})
            if scores.get("top1", -1.0) > best:
                best = scores["top1"]
                model.save(run / "best.keras")
        model.save(run / "last.keras")
        state = {"epoch": epoch, "best_top1": best}
        write_atomic(state_path, json.dumps(state))
        metrics.add(row)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
    if "test" in evaluation:
        chosen = run / "best.keras" if (run / "best.keras").is_file() else run / "last.keras"
        with strategy.scope():
            tested = keras.saving.load_model(chosen)
        forward = tf.function(lambda x: tested(x, training=False), reduce_retracing=True)
        scores = evaluate(forward, evaluation["test"])
        row = {"epoch": state.get("epoch", epochs - 1), **{f"test/{k}": v for k, v in scores.items()}}
        metrics.add(row)
    return {"run": str(run), **{k: v for r in metrics.rows for k, v in r.items()}}
