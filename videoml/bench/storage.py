"""``videoml bench shards``: training clips/s and CPU ms per clip read from a folder of files and from shards, on the
local disk and from an HTTP server on 127.0.0.1 that answers each request after a chosen latency (object storage
across a network: every request pays a round trip), with the requests each epoch makes.

The same training loader reads every cell (``ClipData.loader``: decoding workers, random clips, no model), one epoch
a round, the cells in turn (their ratios hold on a drifting machine); the first epoch of each, which starts the
workers, is not timed. Over HTTP, a folder of files is a shard set of one sample a shard: one request a video, as
reading videos one by one from an object store is. CPU time is this process's and its decoding workers' (Linux's
/proc). Results: ``runs/*.json`` (the suite's schema) and ``table.md`` under ``out``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from videoml.bench.measure import summarize
from videoml.bench.records import Cell, Run, write_run


class _Handler(SimpleHTTPRequestHandler):
    """A static file server's handler that waits ``latency`` seconds before each answer and counts requests."""

    latency, requests = 0.0, None

    def send_head(self):
        time.sleep(self.latency)
        with self.requests.get_lock():
            self.requests.value += 1
        return super().send_head()

    def log_message(self, *args):  # (no line per request)
        pass


@contextmanager
def serve(folder: str | os.PathLike, latency_s: float = 0.0):
    """``folder`` served over HTTP on 127.0.0.1 while the block runs: yields (its URL, the request counter)."""
    requests = multiprocessing.Value("q", 0)
    handler = type("Handler", (_Handler,), {"latency": latency_s, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _cpu_seconds() -> float:
    """CPU seconds of this process and its live children (the loaders' decoding workers)."""
    total = time.process_time()
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


@dataclass
class StorageCell:
    """One way of storing the training split: ``layout`` files or shards, read from ``where`` (local, http)."""

    layout: str
    where: str
    source: dict
    latency_ms: float = 0.0
    requests: object = None  # the HTTP server's counter; None on the local disk
    requests_per_epoch: int = 0  # on the local disk: the files a pass opens

    def cell(self, model: str, workers: int, batch: int) -> Cell:
        where = self.where if self.where == "local" else f"{self.where}+{self.latency_ms:g}ms"
        return Cell("storage", "torch", model, batch_size=batch, workers=workers, data=self.layout, stage=where)


def _epoch(loader, epoch: int, cell: StorageCell) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, clips, requests) of one pass of ``loader``."""
    loader.sampler.set_epoch(epoch)
    before = cell.requests.value if cell.requests is not None else 0
    cpu, start, clips = _cpu_seconds(), time.perf_counter(), 0
    for batch in loader:
        clips += int((batch.weight > 0).sum())  # (weightless repeats, which even out the streams, are not counted)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    requests = cell.requests.value - before if cell.requests is not None else cell.requests_per_epoch
    return seconds, cpu, clips, requests


def measure(cells: list[StorageCell], model: str, workers: int, batch: int, epochs: int, seed: int, out: Path,
            env: dict) -> list[Run]:
    """Each cell's timed epochs (see the module's description), written as runs under ``out``."""
    from videoml.data.clips import ClipData, ClipOptions
    from videoml.models.registry import model_input

    options = ClipOptions(batch_size=batch, num_workers=workers, seed=seed)
    loaders = [ClipData(model_input(model), {"train": c.source}, options).loader("train") for c in cells]
    timed: list[list[tuple]] = [[] for _ in cells]
    for epoch in range(epochs + 1):
        for loader, cell, record in zip(loaders, cells, timed):
            result = _epoch(loader, epoch, cell)
            if epoch:  # the first pass starts the workers
                record.append(result)
    runs = []
    for cell, record in zip(cells, timed):
        clips, measured = record[0][2], cell.cell(model, workers, batch)
        run = Run(name=measured.name, cell=measured, samples_s=[r[0] / clips for r in record],
                  stats=summarize([r[0] / clips for r in record], 1), suite="shards",
                  framework={"name": "torch", "version": env.get("torch")},
                  machine={k: env.get(k) for k in ("cpu", "cores", "platform", "python", "torch", "ffmpeg")},
                  commit=env.get("git_commit"), dirty=env.get("git_dirty"), seed=seed, threads=1,
                  timing={"epochs": epochs, "clips_per_epoch": clips},
                  cpu_ms_per_clip=1000 * sum(r[1] for r in record) / (clips * len(record)),
                  reads=max(r[3] for r in record))
        write_run(run, out)
        runs.append(run)
    return runs


def table(runs: list[Run]) -> str:
    """Markdown: a row a cell, each rate also as a fraction of the same layout's on the local disk."""
    local = {r.cell.data: r.clips_per_s for r in runs if r.cell.stage == "local"}
    lines = ["| layout | read from | clips/s (95% CI) | CPU ms per clip | requests per epoch | of its local rate |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        low, high = r.stats["clips_per_s_ci95"]
        share = r.clips_per_s / local[r.cell.data] if r.cell.data in local else float("nan")
        lines.append(f"| {r.cell.data} | {r.cell.stage} | {r.clips_per_s:.1f} ({low:.1f}-{high:.1f}) | "
                     f"{r.cpu_ms_per_clip:.1f} | {r.reads} | {share:.2f} |")
    return "\n".join(lines) + "\n"


def run(prepared: str | os.PathLike, out: str | os.PathLike, model: str, workers: int, batch: int,
        latencies_ms: list[float], max_mb: float, epochs: int, seed: int) -> list[Run]:
    """Shard the prepared set's training split twice under ``out/sets`` (``max_mb`` shards, and one sample a shard:
    files as objects), then measure the files and the shards locally and over HTTP at each latency."""
    from videoml.data.datasets import labeled_paths
    from videoml.data.shards import shard
    from videoml.environment import environment

    prepared, out = Path(prepared), Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for layout, size in (("shards", max_mb), ("files", 0)):
        shard(prepared, out / "sets" / layout, max_mb=size)
    videos = len(labeled_paths(prepared / "train.csv"))
    shards = len(list((out / "sets" / "shards" / "train").glob("*.tar")))
    cells = [StorageCell("files", "local", {"kind": "labeled_paths", "path": str(prepared / "train.csv")},
                         requests_per_epoch=videos),
             StorageCell("shards", "local", {"kind": "shards", "url": str(out / "sets" / "shards")},
                         requests_per_epoch=shards)]
    with ExitStack() as servers:
        for latency in latencies_ms:
            url, requests = servers.enter_context(serve(out / "sets", latency / 1000))
            cells += [StorageCell(layout, "http", {"kind": "shards", "url": f"{url}/{layout}"}, latency, requests)
                      for layout in ("files", "shards")]
        return measure(cells, model, workers, batch, epochs, seed, out, environment())
