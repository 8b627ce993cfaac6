"""``videoml tf fit``: train the Keras twin from the PyTorch side's config, with ``tf.distribute.MirroredStrategy``.

The config is the one ``videoml fit`` reads (``seed_everything``, ``model``, ``data``, ``trainer``): the same model
name and input, data sources and loaders' batch size, optimiser, learning rate and its scaling with the global batch,
warm-up + cosine schedule, epochs and validation interval. What it does, as on the PyTorch side:

- the model starts from the PyTorch model's initial weights (or ``model.weights``), ported;
- global batch = ``data.batch_size`` x replicas; the learning rate is scaled to it with ``model.lr_base_batch_size``;
- ``trainer.sync_batchnorm``: BatchNorm statistics over all replicas (Keras' ``synchronized``);
- evaluation: ``data.views`` x ``data.crops`` per video, softmax scores averaged per video, top-1 / top-5 with
  torchmetrics' definition; the best epoch by ``val/top1`` is kept and tested at the end;
- unreadable training videos are skipped (weight 0), counted, and fail the run above ``model.max_bad_fraction``;
- the recipes' data augmentations (``data.rand_augment``, ``data.augmix``, ``data.random_erasing``) come with the
  clips, label smoothing and gradient clipping (``trainer.gradient_clip_val``) are the same; MixUp / CutMix and
  weight averaging (EMA) are refused by name.

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

import csv
import dataclasses
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
from jsonargparse.typing import PositiveInt

from videoml.data.clips import SPLITS, ClipData, ClipOptions
from videoml.environment import environment
from videoml.errors import VideomlError
from videoml.fileio import write_atomic
from videoml.models.registry import model_input
from videoml.tf.data import ClipPipeline, training_batches
from videoml.tf.layers import Normalize
from videoml.tf.mirror import build_keras_model, check_mirrored
from videoml.tf.optim import make_optimizer, warmup_cosine
from videoml.recipe import average_per_video, report_bad_videos, scaled_lr, top_k_accuracy
from videoml.spec import InputSpec
from videoml.vocab import TFMode

log = logging.getLogger("videoml.tf")


@dataclass
class FitOptions:
    """How the Keras twin runs (the rest comes from the ``videoml fit`` config)."""

    devices: PositiveInt | None = None
    """replicas: GPUs, or logical CPU devices without GPUs (default: trainer.devices, else all GPUs or 1 CPU)"""
    mode: TFMode = "graph"
    """eager (no tf.function), graph (tf.function), xla (jit_compile=True)"""
    resume: bool = False
    """continue the latest run from its last.keras"""
    run_dir: str | None = None
    """run directory (default: <trainer.default_root_dir>/tf/version_N)"""
    progress: bool = False


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


def _clip_data(fields: dict) -> ClipData:
    """The clips of ``data.*`` as parsed (not instantiated: the linked spec is still its fields)."""
    sources = {split: fields.pop(split, None) for split in SPLITS}
    spec = fields.pop("spec")
    return ClipData(InputSpec.from_dict(spec) if spec else None, sources, ClipOptions(**fields))


def _pipelines(data: ClipData, replicas: int, seed: int) -> tuple[ClipPipeline, dict[str, ClipPipeline]]:
    """The training pipeline (global batch = data.batch_size x replicas) and the evaluation ones."""
    options = data.options
    train = ClipPipeline(data.dataset("train"), options.batch(True) * replicas, options.num_workers, seed)
    evaluation = {split: ClipPipeline(data.dataset(split), options.batch(False), options.num_workers, seed)
                  for split in ("val", "test") if split in data.sources}
    return train, evaluation


def _plain(value):
    """A config value as JSON: a dataclass (the data's input spec) as its fields, anything else (paths) as text."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)


def _start_run(config, options: FitOptions, classes: list[str], strategy, global_batch: int) -> tuple[Path, dict]:
    """The run directory with its config, classes and environment written; the state to resume from."""
    root = Path(config.trainer.default_root_dir or "runs") / "tf"
    run = Path(options.run_dir) if options.run_dir else _run_dir(root, options.resume)
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / "state.json"
    state = json.loads(state_path.read_text()) if options.resume and state_path.is_file() else {}
    if options.resume and not state:
        raise VideomlError(f"{run}: nothing to resume (no state.json)")
    resolved = json.loads(json.dumps(config.clone().as_dict(), default=_plain))  # YAML-safe
    resolved["model"]["classes"] = classes
    resolved["tf"] = {"mode": options.mode, "replicas": strategy.num_replicas_in_sync,
                      "global_batch_size": global_batch, "devices": list(strategy.extended.worker_devices)}
    (run / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    (run / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    env = environment()
    build = tf.sysconfig.get_build_info()
    env.update(tensorflow_cuda=build.get("cuda_version"), tensorflow_cudnn=build.get("cudnn_version"),
               tensorflow_devices=[d.name for d in tf.config.list_logical_devices()])
    (run / "environment.json").write_text(json.dumps({"stage": "tf fit", **env}, indent=2) + "\n")
    return run, state


def _compiled_model(config, classes: list[str], schedule, spec, options: FitOptions, seed: int) -> keras.Model:
    """The Keras twin, from the PyTorch model's initial weights (or model.weights), compiled as the config says."""
    m = config.model
    net = build_keras_model(m.model, len(classes), weights=m.weights, seed=seed,
                            synchronized_batchnorm=bool(config.trainer.sync_batchnorm), **(m.model_options or {}))
    model = with_normalization(net, spec.mean, spec.std)
    optimizer = make_optimizer(m.optimizer, schedule, momentum=m.momentum, nesterov=m.nesterov,
                               weight_decay=m.weight_decay, clip_value=config.trainer.gradient_clip_val,
                               clip_algorithm=config.trainer.gradient_clip_algorithm)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=m.label_smoothing),
                  weighted_metrics=[keras.metrics.CategoricalAccuracy(name="top1")],
                  run_eagerly=options.mode == "eager", jit_compile=options.mode == "xla")
    return model


def _train_epoch(model, train: ClipPipeline, epoch: int, classes: int, schedule, progress: bool) -> dict:
    """One epoch of ``model.fit``; its metrics row (the PyTorch side's names)."""
    train.bad.clear()
    started = time.perf_counter()
    history = model.fit(training_batches(train, epoch, classes), epochs=epoch + 1, initial_epoch=epoch,
                        shuffle=False, verbose=1 if progress else 0)
    seconds = time.perf_counter() - started
    step = int(model.optimizer.iterations.numpy())
    return {"epoch": epoch, "step": step, "train/loss": float(history.history["loss"][-1]),
            "train/top1": float(history.history["top1"][-1]), "train/lr": float(schedule(max(step - 1, 0))),
            "train/clips": float(train.samples - len(train.bad) * train.clips.repeats),
            "train/bad_videos": float(len(train.bad)), "throughput/clips_per_s": train.samples / seconds}


def _forward(model, mode: str):
    """Evaluation calls: the model itself in eager mode, else a tf.function (XLA-compiled in xla mode)."""
    if mode == "eager":
        return model
    return tf.function(lambda x: model(x, training=False), jit_compile=mode == "xla", reduce_retracing=True)


def refuse_unsupported(config) -> None:
    """Recipe options of ``videoml fit`` the twin does not have: refused by name, not silently ignored."""
    m = config.model
    try:
        check_mirrored(m.model)
    except VideomlError as e:
        raise VideomlError(f"videoml tf fit: {e}; train it with videoml fit") from None
    if model_input(m.model).slowfast_alpha:
        raise VideomlError(f"videoml tf fit: {m.model} is mirrored in Keras for the benchmarks and the weight port, "
                           "but the twin's tf.data pipeline feeds one pathway; train two-pathway models with "
                           "videoml fit")
    if m.layer_decay != 1:
        raise VideomlError("videoml tf fit: model.layer_decay (layer-wise learning rates of transformers) is not in "
                           "the TensorFlow twin; set it to 1")
    if m.mixup_alpha or m.cutmix_alpha:
        raise VideomlError("videoml tf fit: model.mixup_alpha / model.cutmix_alpha (MixUp / CutMix of batches) are "
                           "not in the TensorFlow twin; set them to 0 for a like-for-like run")
    for callback in config.trainer.callbacks or []:
        name = getattr(callback, "class_path", type(callback).__name__)
        if name.endswith("WeightAveraging"):
            raise VideomlError(f"videoml tf fit: trainer.callbacks {name} (weight averaging, EMA) is not in the "
                               "TensorFlow twin; remove it for a like-for-like run")


def fit(config, options: FitOptions) -> dict:
    """Train (and validate, and test the best epoch) as ``config`` (``videoml fit``'s parsed configuration, see
    :func:`videoml.commands.tf.parse_config`) says; returns the last metrics row."""
    seed, trainer = int(config.seed_everything or 0), config.trainer
    refuse_unsupported(config)
    data = _clip_data(config.data.as_dict())
    if "train" not in data.sources:
        raise VideomlError("the config has no training data (data.train)")
    strategy = strategy_for(options.devices if options.devices is not None else
                            trainer.devices if isinstance(trainer.devices, int) else None)
    keras.utils.set_random_seed(seed)
    train, evaluation = _pipelines(data, strategy.num_replicas_in_sync, seed)
    epochs = trainer.max_epochs if trainer.max_epochs is not None else 1000  # Lightning's default
    global_batch = data.options.batch_size * strategy.num_replicas_in_sync
    run, state = _start_run(config, options, data.classes, strategy, global_batch)
    peak = scaled_lr(config.model.lr, config.model.lr_base_batch_size, global_batch)
    schedule = warmup_cosine(peak, config.model.warmup_epochs, train.steps, epochs)
    with strategy.scope():
        model = (keras.saving.load_model(run / "last.keras") if state else
                 _compiled_model(config, data.classes, schedule, data.spec, options, seed))
    forward = _forward(model, options.mode)
    metrics = _MetricsLog(run / "metrics.csv")
    best = state.get("best_top1", -1.0)
    for epoch in range(state.get("epoch", -1) + 1, epochs):
        row = _train_epoch(model, train, epoch, len(data.classes), schedule, options.progress)
        report_bad_videos(sorted(train.bad), train.clips.videos, config.model.max_bad_fraction, epoch)
        if "val" in evaluation and ((epoch + 1) % trainer.check_val_every_n_epoch == 0 or epoch + 1 == epochs):
            row.update({f"val/{k}": v for k, v in evaluate(forward, evaluation["val"]).items()})
            if row.get("val/top1", -1.0) > best:
                best = row["val/top1"]
                model.save(run / "best.keras")
        model.save(run / "last.keras")
        state = {"epoch": epoch, "best_top1": best}
        write_atomic(run / "state.json", json.dumps(state))
        metrics.add(row)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
    if "test" in evaluation:
        chosen = run / "best.keras" if (run / "best.keras").is_file() else run / "last.keras"
        with strategy.scope():
            tested = keras.saving.load_model(chosen)
        scores = evaluate(_forward(tested, "graph"), evaluation["test"])
        metrics.add({"epoch": state.get("epoch", epochs - 1), **{f"test/{k}": v for k, v in scores.items()}})
    return {"run": str(run), **{k: v for r in metrics.rows for k, v in r.items()}}
