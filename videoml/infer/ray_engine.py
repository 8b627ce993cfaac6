"""``--engine ray``: ``videoml infer`` and ``videoml extract`` on a Ray cluster, through Ray Data.

Decoding and clip sampling are Ray tasks on CPUs anywhere in the cluster (:meth:`VideoClips.read`, the local engine's
code, one CPU each); the model runs in a pool of Ray actors, one per GPU of the cluster (or ``--ray-workers`` of
them, on CPUs where there is no GPU), fed by Ray Data's streaming executor, which keeps the decoders ahead of the
model within bounded memory (backpressure), retries the tasks of a worker that dies and restarts a dead actor. The
driver, this process, writes the records with the local engine's writer, in input order, a line at a time:
``--resume`` skips what is written, and a record that reaches the driver twice (a retried task) is written once.

Every node needs the same environment (videoml installed) and the same view of the files: the videos, the model, and
for ``extract`` the output folder (a shared file system); paths are made absolute before they are sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import re
import sys
import threading
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from videoml.errors import UsageError, VideomlError, first_line, install_hint
from videoml.infer.clips import VideoClips
from videoml.infer.results import ResultWriter, result_key


def ray_module():
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(f"--engine ray needs Ray Data: {install_hint('ray')}") from None
    return ray


@contextlib.contextmanager
def connected(address: str | None):
    """Ray, connected to the cluster at ``address`` (or ``$RAY_ADDRESS``), or to a local instance started here (and
    stopped after the run); a connection this process already has is used as it is."""
    ray = ray_module()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS")
    local = {} if address else {"include_dashboard": False}
    # Ray Data's execution reports (INFO, on standard output) and its notice that its bars are off (the driver has
    # its own) stay in the session's log folder; its warnings still show
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    try:
        ray.init(address=address, logging_level=logging.ERROR, **local)
    except (ConnectionError, RuntimeError, ValueError) as e:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else (" (a cluster with token authentication, Ray's default, "
                                                           "also needs RAY_AUTH_MODE=token and its token here)")
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {first_line(e)}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _decode(row: dict, clips: VideoClips) -> dict:
    item = clips.read(int(row["index"]), row["source"])
    item.path = row["path"]  # the record names the video as the user did
    return {"index": row["index"], "item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}


class ModelWorker:
    """A Ray actor: the model on its device, turning batches of decoded videos into their records."""

    def __init__(self, config, device: str, threads: int):
        torch.set_num_threads(threads)
        self.config, self.predictor = config, config.load(device)

    def __call__(self, batch: dict) -> dict:
        from videoml.infer.engine import Batcher

        batcher, records = Batcher(self.predictor, self.config.batch_size, None), {}
        for item in (pickle.loads(b) for b in batch["item"]):
            if item.error:
                records[item.index] = self.config.error_record(item.path, item.error)
            else:
                batcher.add(item)
        for item in batcher.ready(final=True):
            records[item.index] = self.config.record(item, torch.cat(item.outputs), self.predictor)
        order = sorted(records)
        return {"index": np.array(order, dtype=np.int64),
                "record": np.array([json.dumps(records[i]) for i in order], dtype=object)}


def _dataset(ray, config, todo: list[str], card):
    """decode (tasks, a CPU each) -> model (an actor pool), each video's record out, in input order."""
    views, crops = config.views or card.views, config.crops or card.crops
    per_batch = max(1, config.batch_size // (views * crops)) if config.dense is None else 1  # videos per model batch
    clips = VideoClips([], card.input, views=views, crops=crops, dense_step=config.dense, backend=config.backend,
                       decode_timeout=config.decode_timeout)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = config.ray_workers or gpus or max(1, int(resources.get("CPU", 1) // config.ray_model_cpus))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the driver's own bar counts videos
    rows = [{"index": i, "path": p, "source": os.path.abspath(p)} for i, p in enumerate(todo)]
    blocks = min(len(rows), max(-(-len(rows) // per_batch), workers))  # a block for each worker at least
    workers = min(workers, blocks)
    return (ray.data.from_items(rows, override_num_blocks=blocks)
            .map(_decode, fn_kwargs={"clips": clips}, num_cpus=1)
            .map_batches(ModelWorker, batch_size=per_batch, compute=ray.data.ActorPoolStrategy(size=workers),
                         fn_constructor_kwargs={"config": resolved_paths(config, *config.worker_paths),
                                                "device": "cuda" if gpus else "cpu",
                                                "threads": max(1, int(config.ray_model_cpus))},
                         num_gpus=1 if gpus else 0, num_cpus=config.ray_model_cpus))


def run_ray(config, paths: list[str], output: str, csv: str | None):
    """The records of ``paths`` into ``output`` (and ``csv``), computed on the Ray cluster; returns the counts."""
    from videoml.infer.engine import Summary

    card = config.load("cpu").card  # a model that cannot be loaded fails here, before the cluster does any work
    summary, started, written = Summary(), time.perf_counter(), set()
    with ResultWriter(output, csv, resume=config.resume, overwrite=config.overwrite) as writer:
        todo = [p for p in paths if result_key(p) not in writer.done]
        summary.skipped = len(paths) - len(todo)
        bar = tqdm(total=len(paths), initial=summary.skipped, unit="video", disable=not config.progress)
        with connected(config.ray_address) as ray, bar, _without_ray_notices():
            try:
                for row in _dataset(ray, config, todo, card).iter_rows() if todo else ():
                    record = json.loads(row["record"])
                    if result_key(record["path"]) in written:
                        continue  # a retried task's second copy
                    written.add(result_key(record["path"]))
                    writer.write(record)
                    summary.add(record)
                    bar.update()
            except (ray.exceptions.RayError, ray.data.exceptions.SystemException) as e:
                raise VideomlError(f"the Ray run stopped: {first_line(e)}; what was written is kept: run again with "
                                   f"--resume to finish {output}") from None
    summary.seconds = time.perf_counter() - started
    return summary


# Ray Data's actor pools make the driver's C++ core worker log this, at error level, on every run (their constructor
# arguments are in the object store, and Ray Data restarts its actors: ray-project/ray#57733): no error of the run
NOT_AN_ERROR = re.compile(rb"[^\n]*has constructor arguments in the object store and max_restarts > 0[^\n]*\n")


@contextlib.contextmanager
def _without_ray_notices():
    """Standard error (file descriptor 2, where Ray's C++ writes) passed on as it comes, less :data:`NOT_AN_ERROR`'s
    line (a C++ log line is one write, so one read has all of it). Everything under ``videoml --debug``."""
    if os.environ.get("VIDEOML_DEBUG"):
        yield
        return
    sys.stderr.flush()
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    os.close(write)

    def forward():
        while chunk := os.read(read, 1 << 16):
            os.write(saved, NOT_AN_ERROR.sub(b"", chunk))

    thread = threading.Thread(target=forward, name="stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closed: forward reads what is left, then ends
        thread.join(timeout=5)
        os.close(read)
        os.close(saved)


def resolved_paths(config, *fields: str):
    """``config`` with the named path fields made absolute (Ray's workers do not share the driver's folder)."""
    changes = {f: os.path.abspath(getattr(config, f)) for f in fields if not str(getattr(config, f)).startswith("zoo:")}
    return dataclasses.replace(config, **changes)
