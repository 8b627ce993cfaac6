"""``videoml data shard PREPARED OUT``: a prepared data set packed into shards, the way clusters store training data.

Hundreds of thousands of files opened one by one every epoch are slow, or forbidden, on Lustre, GPFS, NFS and object
stores; a few hundred large files read from start to end are not. A shard is a tar file in WebDataset's layout (so
``tar``, WebDataset and any tar reader read it), holding per sample, under a key that is its number in its split:

    KEY.mp4          the prepared video's bytes, as ``data prepare`` wrote them
    KEY.json         {"path": its path in the prepared set, "label": its class number}
    KEY.index.npz    its frame index (``FrameIndex.to_arrays``): a reader numbers its frames without scanning it

Layout under ``OUT``::

    manifest.json                  classes, the prepare settings, per split its shards in order: name, bytes, sha256,
                                   the keys and labels of their samples (a reader plans an epoch from it alone)
    <split>/<part>-<n>.tar         the shards
    parts/part-<I>-of-<N>.json     one part's settings and the shards it has finished

Samples go into shards in their split's order, a shard closing when it reaches ``max_mb``. A job array can pack
disjoint parts at once (``--part I/N``: every N-th sample from the I-th, each part its own shards); the part that
finishes last writes the manifest. Each shard is written aside and renamed into place, and recorded in its part's
file when complete: a run killed at any point and started again with the same settings writes only what was
missing, and every sample ends in exactly one shard.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from videoml.data.decoding import load_index
from videoml.data.files import job_part
from videoml.data.outdir import to_json
from videoml.data.prepare import STATE, read_sources
from videoml.errors import VideomlError
from videoml.fileio import atomic_path, output_lock, write_atomic

MANIFEST = "manifest.json"


@dataclass
class ShardSummary:
    """What a run of ``data shard`` did."""

    out: Path
    part: tuple[int, int]
    written: list[dict] = field(default_factory=list)  # the shards this run wrote
    kept: int = 0  # shards an earlier run had finished
    manifest: bool = False  # whether the manifest was written (every part finished)
    seconds: float = 0.0

    def line(self) -> str:
        samples = sum(len(s["keys"]) for s in self.written)
        size = sum(s["bytes"] for s in self.written) / 2**20
        part = f"part {self.part[0]}/{self.part[1]}: " if self.part[1] > 1 else ""
        done = f"; manifest {self.out / MANIFEST}" if self.manifest else "; the manifest waits for the other parts"
        return (f"{part}{len(self.written)} shards written ({samples} samples, {size:.1f} MiB), {self.kept} kept from "
                f"an earlier run, in {self.seconds:.0f} s{done}")


def _prepared(root: Path) -> dict:
    """The prepared set's settings; refused unless ``data prepare`` finished it."""
    try:
        state = json.loads((root / STATE).read_text())
    except OSError as e:
        raise VideomlError(f"{root}: not a prepared data set ({STATE}: {e.strerror}); "
                           "run videoml data prepare first") from None
    except ValueError:
        raise VideomlError(f"{root / STATE}: not valid JSON; run videoml data prepare again") from None
    if not state.get("complete"):
        raise VideomlError(f"{root}: its preparation has not finished; run the same videoml data prepare again")
    return state


def plan(items: list[tuple[Path, int]], part: tuple[int, int], max_bytes: int) -> list[list[int]]:
    """The samples (their numbers in the split) of each of a part's shards, in order: every ``N``-th sample from
    the ``I``-th, a shard closing once its videos reach ``max_bytes``."""
    shards, current, size = [], [], 0
    for number in range(part[0], len(items), part[1]):
        current.append(number)
        size += items[number][0].stat().st_size
        if size >= max_bytes:
            shards.append(current)
            current, size = [], 0
    return shards + ([current] if current else [])


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644  # (no time, owner or group: the same samples give the same shard)
    tar.addfile(info, io.BytesIO(data))


def _index_bytes(path: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **load_index(path).to_arrays())
    return buffer.getvalue()


def write_shard(path: Path, root: Path, items: list[tuple[Path, int]], numbers: list[int]) -> dict:
    """Shard ``path`` holding samples ``numbers`` of ``items`` (videos under the prepared ``root``); its record."""
    with atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for number in numbers:
                video, label = items[number]
                key = f"{number:08d}"
                _member(tar, f"{key}.mp4", video.read_bytes())
                record = {"path": video.relative_to(root).as_posix(), "label": int(label)}
                _member(tar, f"{key}.json", json.dumps(record).encode())
                _member(tar, f"{key}.index.npz", _index_bytes(video))
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        size = tmp.stat().st_size
    return {"name": path.name, "bytes": size, "sha256": digest.hexdigest(), "keys": [f"{n:08d}" for n in numbers],
            "labels": [int(items[n][1]) for n in numbers]}


def _part_file(out: Path, part: tuple[int, int]) -> Path:
    return out / "parts" / f"part-{part[0]}-of-{part[1]}.json"


def _resumed(path: Path, settings: dict) -> dict:
    """The part's record of finished shards (split -> name -> record); refused when made with other settings."""
    if not path.exists():
        return {}
    state = json.loads(path.read_text())
    if state.get("settings") != settings:
        raise VideomlError(f"{path.parent.parent}: holds shards made with other settings; choose another output "
                           "folder, or remove it")
    return state.get("shards", {})


def shard(prepared: str | Path, out: str | Path, max_mb: float = 256, part: str = "0/1",
          progress: bool = False) -> ShardSummary:
    """Pack the prepared set into shards under ``out`` (this part of it); see the module's description."""
    from tqdm import tqdm

    started, root, out, which = time.perf_counter(), Path(prepared), Path(out), job_part(part)
    state = _prepared(root)
    splits = read_sources(root)
    for videos in splits.values():  # (a prepared set is whole: a video gone from it is damage, not a bad source)
        if videos.missing:
            raise VideomlError(f"{videos.source}: {len(videos.missing)} of its {videos.listed} videos are missing or "
                               f"empty (first: {videos.missing[0]}); run videoml data prepare again to restore them")
    settings = {"prepared": str(root.resolve()), "prepare": state["config"]["settings"], "max_mb": max_mb,
                "parts": which[1]}
    if out.exists() and not out.is_dir():
        raise VideomlError(f"{out}: exists and is not a directory")
    summary, part_file = ShardSummary(out, which), _part_file(out, which)
    part_file.parent.mkdir(parents=True, exist_ok=True)
    with output_lock([part_file]):
        done = _resumed(part_file, settings)
        for leftover in out.glob(f"*/{which[0]:04d}-*.tar.*.part"):  # a killed run's unfinished shard (this part's)
            leftover.unlink()
        shards = {split: plan(videos.items, which, int(max_mb * 2**20)) for split, videos in splits.items()}
        bar = tqdm(total=sum(map(len, shards.values())), unit="shard", disable=not progress)
        for split, numbers in shards.items():
            finished = done.setdefault(split, {})
            for n, members in enumerate(numbers):
                name = f"{which[0]:04d}-{n:05d}.tar"
                path = out / split / name
                keys = [f"{number:08d}" for number in members]
                if name in finished and finished[name]["keys"] == keys and path.is_file() and \
                        path.stat().st_size == finished[name]["bytes"]:
                    summary.kept += 1
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    finished[name] = write_shard(path, root, splits[split].items, members)
                    summary.written.append(finished[name])
                    write_atomic(part_file, to_json({"settings": settings, "shards": done, "complete": False}))
                bar.update()
        bar.close()
        write_atomic(part_file, to_json({"settings": settings, "shards": done, "complete": True}))
    classes = list(next(iter(splits.values())).classes)
    summary.manifest = merge(out, settings, classes, state)
    summary.seconds = time.perf_counter() - started
    return summary


def merge(out: Path, settings: dict, classes: list[str], state: dict) -> bool:
    """Write ``out``'s manifest when every part has finished (whichever part finishes last does); False otherwise."""
    parts = []
    for index in range(settings["parts"]):
        path = _part_file(out, (index, settings["parts"]))
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        if not recorded.get("complete") or recorded.get("settings") != settings:
            return False
        parts.append(recorded["shards"])
    splits = {}
    for split in parts[0]:
        shards = sorted((s for p in parts for s in p.get(split, {}).values()), key=lambda s: s["name"])
        splits[split] = {"samples": sum(len(s["keys"]) for s in shards),
                         "shards": [{**s, "name": f"{split}/{s['name']}"} for s in shards]}
    write_atomic(out / MANIFEST, to_json({"format": 1, "classes": classes, "prepare": state["config"],
                                          "versions": state.get("versions"), "max_mb": settings["max_mb"],
                                          "splits": splits}))
    return True
