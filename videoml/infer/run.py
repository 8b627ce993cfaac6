"""``videoml infer``: classify many videos with a trained or exported model.

Decoding runs in DataLoader workers ahead of the model (one item per video, all its views decoded in one call), clips
of consecutive videos are packed into full batches, and each video's scores are aggregated as soon as its last clip is
scored. Results go to disk one video at a time (see :mod:`videoml.infer.results`).

Aggregation of a video's clip scores (``aggregate``):
  ``mean``        the mean of the clips' softmax probabilities (default; PySlowFast's and MMAction2's test rule)
  ``max``         per class, the largest softmax probability of any clip (scores then need not sum to 1)
  ``mean-logits`` the softmax of the clips' mean logits
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from videoml.data.files import find_videos
from videoml.errors import UsageError, VideomlError
from videoml.fileio import output_lock
from videoml.infer.clips import VideoClips, decoded_items
from videoml.infer.engine import Batcher, Summary
from videoml.infer.options import VideoRun
from videoml.infer.results import ResultWriter, read_records, result_key
from videoml.profiling import Profile
from videoml.vocab import Aggregate, check

log = logging.getLogger("videoml.infer")

EXIT_SOME_FAILED = 3  # some videos could not be classified (their records say why); usage errors exit 2


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (recursive), globs, and list files (``@file``, or a ``.txt`` / ``.lst`` file: one path a line,
    relative paths taken from the list's folder)."""
    items: list[str] = []
    for item in inputs:
        listed = item[1:] if item.startswith("@") else item if Path(item).suffix in (".txt", ".lst") else None
        if listed is None:
            items.append(item)
            continue
        try:
            lines = Path(listed).read_text().splitlines()
        except OSError as e:
            raise UsageError(f"{listed}: cannot read the list file ({e.strerror})") from None
        base = Path(listed).parent
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.startswith("#"):
                path = base / line.strip()
                if not path.exists() and not glob.has_magic(str(path)):
                    raise UsageError(f"{listed}, line {number}: {line.strip()[:80]}: no such file (a .txt or .lst "
                                     "input is a list of videos, one a line)")
                items.append(str(path))
    return [str(p) for p in find_videos(items)] if items else []


def aggregate(logits: torch.Tensor, rule: str) -> torch.Tensor:
    """(clips, classes) logits -> (classes,) video scores by ``rule`` (see module doc)."""
    check(rule, Aggregate, "aggregate")
    if rule == "mean":
        return logits.softmax(-1).mean(0)
    if rule == "max":
        return logits.softmax(-1).max(0).values
    return logits.mean(0).softmax(-1)  # mean-logits


def top_k(scores: torch.Tensor, classes, k: int) -> list[dict]:
    """The ``k`` best classes of a video's (or clip's) scores, best first."""
    values, indices = scores.topk(min(k, len(scores)))
    return [{"label": classes[i], "score": round(float(v), 6)} for v, i in zip(values, indices.tolist())]


def _run_shard(config: VideoRun, paths: list[str], device: str, output: str, csv: str | None,
               position: int = 0) -> Summary:
    """Run the model over ``paths`` on one device, appending their records to ``output``."""
    predictor = config.load(device)
    card = predictor.card
    views, crops = config.views or card.views, config.crops or card.crops
    summary = Summary()
    started = time.perf_counter()
    with ResultWriter(output, csv, resume=config.resume, overwrite=config.overwrite) as writer:
        todo = [p for p in paths if result_key(p) not in writer.done]
        summary.skipped = len(paths) - len(todo)
        dataset = VideoClips(todo, card.input, views=views, crops=crops, dense_step=config.dense,
                             backend=config.backend, decode_timeout=config.decode_timeout)
        items = decoded_items(dataset, config.num_workers, pin_memory=predictor.device.type == "cuda")
        bar = tqdm(total=len(paths), initial=summary.skipped, unit="video", position=position,
                   disable=not config.progress, desc=device if len(config.devices) > 1 else None)
        profile = Profile(config.profile, predictor.device.type) if config.profile else None
        batcher = Batcher(predictor, config.batch_size, profile)

        def write(record: dict) -> None:
            writer.write(record)
            summary.add(record)
            bar.update()

        def finish(items):
            for item in items:
                write(config.error_record(item.path, item.error) if item.error else
                      config.record(item, torch.cat(item.outputs), predictor))

        with profile or contextlib.nullcontext():
            for item in items:
                batcher.add(item)
                finish(batcher.ready())
            finish(batcher.ready(final=True))
        bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _shard_worker(args) -> dict:
    config, paths, device, output, position = args
    return dataclasses.asdict(_run_shard(config, paths, device, output, None, position))


def infer(config: VideoRun) -> Summary:
    """Run the model over the inputs as configured (:class:`InferConfig`: classify; ``ExtractConfig``: embed);
    returns the counts. One process per device when there are several."""
    config.check()
    if config.dense is not None and config.dense <= 0:
        raise UsageError(f"--dense needs a step in seconds > 0, got {config.dense}")
    paths = list({result_key(p): p for p in reversed(expand_inputs(config.inputs))}.values())[::-1]
    if not paths:  # (each video once, however it is spelled; the first spelling kept)
        raise UsageError("no input videos")
    index, count = config.part_of()
    if index >= len(paths):
        raise UsageError(f"part {config.part} of {len(paths)} input videos holds none")
    paths = paths[index::count]
    config.begin()
    output, csv = config.outputs()
    if config.engine == "ray":
        from videoml.infer.ray_engine import run_ray

        summary = run_ray(config, paths, output, csv)
    elif len(config.devices) == 1:
        summary = _run_shard(config, paths, config.devices[0], output, csv)
    else:
        summary = _run_sharded(config, paths, output, csv)
    summary.message = config.finish()
    if config.parquet:
        from videoml.infer.tables import write_tables

        tables = write_tables(output, config.parquet, config.table_rows())
        summary.message = "; ".join(filter(None, [summary.message, "tables: " + ", ".join(map(str, tables))]))
    return summary


def _run_sharded(config: VideoRun, paths: list[str], output: str, csv: str | None) -> Summary:
    """Shard k of n takes every n-th video and writes ``<output>.part<k>``; the parts are merged into ``output`` in
    input order at the end (and, after an interrupted run, by the next ``--resume``)."""
    out = Path(output)
    with output_lock([p for p in (out, csv) if p]):  # held for the whole run; the shards lock their parts
        return _run_shards(config, paths, out, csv)


def _run_shards(config: VideoRun, paths: list[str], out: Path, csv: str | None) -> Summary:
    from concurrent.futures.process import BrokenProcessPool

    from videoml.processes import process_pool

    parts = [out.with_name(f"{out.name}.part{k}") for k in range(len(config.devices))]
    merged = ResultWriter(out, csv, resume=config.resume, overwrite=config.overwrite, lock=False)
    merged.close()
    if not config.resume:  # parts an interrupted run left belong to the output just replaced
        for part in parts:
            part.unlink(missing_ok=True)
    remaining = [p for p in paths if result_key(p) not in merged.done]
    started = time.perf_counter()
    jobs = [(dataclasses.replace(config, resume=True, overwrite=False), remaining[k::len(parts)], device, str(part), k)
            for k, (device, part) in enumerate(zip(config.devices, parts))]
    try:
        with process_pool(len(jobs)) as pool:
            results = [Summary(**r) for r in pool.map(_shard_worker, jobs)]
    except BrokenProcessPool:  # a shard process was killed: what the shards wrote is kept in their parts
        raise VideomlError(f"a shard process died; run again with --resume to finish {out} (what was written is "
                           "kept)") from None
    by_path = {r["path"]: r for part in parts for r in read_records(part)}
    with ResultWriter(out, csv, resume=True, lock=False) as writer:
        for path in remaining:
            if path in by_path:
                writer.write(by_path[path])
    for part in parts:
        part.unlink()
    summary = Summary(done=sum(r.done for r in results), failed=sum(r.failed for r in results),
                      skipped=len(paths) - len(remaining) + sum(r.skipped for r in results),
                      clips=sum(r.clips for r in results), seconds=time.perf_counter() - started)
    return summary
