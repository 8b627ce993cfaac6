"""``videoml data check``: what each video file really holds, and whether all of it decodes."""

from __future__ import annotations

import functools
import os

import numpy as np

from videoml.data.decoding import build_index, open_video
from videoml.data.decoding.budget import DEFAULT_SECONDS, time_budget
from videoml.processes import process_pool
from videoml.errors import VideoDecodeError, first_line


def check_video(path: str | os.PathLike, timeout: float | None = DEFAULT_SECONDS) -> dict:
    """One record. ``status`` is "ok" (the file opens and every frame of its index decodes, however its frames had to
    be numbered: ``numbering`` and ``notes`` say how and why), "warn" (it reads, but ``warning`` says what a user
    should act on before training on it: damaged pictures, replaced when read with ``bad_frames="nearest"``; a
    header promising more frames than the file holds; frames reachable only by decoding from the start, which
    ``videoml data prepare`` fixes) or "bad" (``error`` says why it cannot be read). ``ok`` is False only for bad."""
    record = {"path": str(path), "status": "bad", "ok": False, "error": None}
    try:
        with time_budget(timeout, path):
            _check(path, record)
    except (VideoDecodeError, OSError) as e:
        record["error"] = getattr(e, "reason", None) or str(e)
    except Exception as e:  # a report covers every file: anything else a library raises on it is its error too
        record["error"] = f"{type(e).__name__}: {first_line(e)}"
    return record


def _check(path, record: dict) -> None:
    """Fill ``record`` (see check_video)."""
    record["bytes"] = os.path.getsize(path)
    index = build_index(path)  # no cache: a check looks at the file as it is now
    record.update(_describe(index))
    damaged, unreached = [], []
    with open_video(path, backend="pyav", cache_dir=False, bad_frames="nearest") as video:
        for start in range(0, video.num_frames, 256):  # in chunks: memory stays small on long videos
            video.get_frames(np.arange(start, min(start + 256, video.num_frames)), size=16).data
            damaged.extend(video.damaged)
            unreached.extend(sorted(set(video.replaced) - set(video.damaged)))
        record["picture_sizes"] = [f"{w}x{h}" for w, h in sorted(video.picture_sizes)]
    record["damaged_frames"] = damaged
    record["decoded_frames"] = index.num_frames - len(damaged) - len(unreached)
    if unreached:
        record["error"] = f"{len(unreached)} of {index.num_frames} frames cannot be decoded (first: {unreached[0]})"
    record["ok"] = not unreached
    record["warning"] = "; ".join(_warnings(index, damaged, record["picture_sizes"])) or None
    record["status"] = "bad" if unreached else "warn" if record["warning"] else "ok"


def _describe(index) -> dict:
    keys = index.keyframes
    gaps = np.diff(np.append(keys, index.num_frames)) if len(keys) else np.array([index.num_frames])
    width, height = index.display_size()
    return dict(codec=index.codec, width=width, height=height, header_frames=index.header["frames"],
                frames=index.num_frames, fps=round(index.fps, 3), header_fps=round(index.header["fps"], 3),
                duration=round(index.duration, 3), start_time=round(float(index.timestamps[0]), 6),
                b_frames=index.reordered, open_gop=bool(index.header.get("open_gop")), rotation=index.rotation,
                numbering=index.numbering, random_access=index.random_access, notes=list(index.notes),
                packed_b_frames="packed B-frames" in index.notes, keyframes=len(keys),
                gop_mean=round(float(gaps.mean()), 1), gop_max=int(gaps.max()))


def _warnings(index, damaged: list[int], sizes: list[str]) -> list[str]:
    out = []
    if len(sizes) > 1:
        out.append(f"pictures change size midway ({', '.join(sizes)}): every frame is shown at the first size, "
                   "scaled as FFmpeg does")
    if damaged:
        out.append(f"{len(damaged)} of {index.num_frames} pictures are damaged (first: {damaged[0]})")
    if index.header["frames"] > index.num_frames:  # AVI and MP4 headers state a count; MKV/WebM do not
        out.append(f"header claims {index.header['frames']} frames, the file holds {index.num_frames} (truncated?)")
    if not index.random_access:
        out.append(f"frame i is reached only by decoding from the start ({'; '.join(index.notes)}): slow to sample "
                   "clips from; `videoml data prepare` re-encodes it for random access")
    return out


def check_videos(paths, num_workers: int = 1, timeout: float | None = DEFAULT_SECONDS):
    """Yield a record per path, in order."""
    check = functools.partial(check_video, timeout=timeout)
    if num_workers <= 1:
        yield from map(check, paths)
        return
    with process_pool(num_workers) as pool:
        yield from pool.map(check, paths, chunksize=1)


def format_row(record: dict) -> str:
    """One line of the table for a record."""
    if "decoded_frames" not in record:
        return f"BAD   {'-':>13}  {'-':>7}  {'-':>9}  {'-':<6}  {'-':>9}  {record['path']}: {record['error']}"
    status = "BAD" if record["status"] == "bad" else record["status"]
    frames = f"{record['decoded_frames']}/{record['frames']}"
    if record["header_frames"] and record["header_frames"] != record["frames"]:
        frames += f" (hdr {record['header_frames']})"
    size = f"{record['width']}x{record['height']}"
    gop = f"{record['gop_mean']:g}/{record['gop_max']}"
    line = f"{status:<5} {frames:>13}  {record['fps']:>7.3f}  {size:>9}  {record['codec']:<6}  {gop:>9}  {record['path']}"
    note = record["error"] or record.get("warning")
    return line + (f": {note}" if note else "")


TABLE_HEADER = f"{'status':<5} {'frames':>13}  {'fps':>7}  {'size':>9}  {'codec':<6}  {'gop':>9}  path"


def summary(records: list[dict]) -> str:
    """The closing line: how many rows have each status."""
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "warn", "bad")}
    files = f"{len(records)} file" + ("" if len(records) == 1 else "s")
    return f"{files}: " + ", ".join(f"{n} {status}" for status, n in counts.items())
