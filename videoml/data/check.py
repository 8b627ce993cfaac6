"""``videoml data check``: what each video file really holds, and whether all of it decodes."""

from __future__ import annotations

import os

import numpy as np

from videoml.data.decoding import build_index, open_video
from videoml.processes import process_pool
from videoml.errors import VideoDecodeError


def check_video(path: str | os.PathLike) -> dict:
    """One record: ``ok`` is True when the file opens and every frame of its index decodes; ``warning`` says when
    the header promises more frames than the file holds."""
    record = {"path": str(path), "ok": False, "error": None}
    try:
        record["bytes"] = os.path.getsize(path)
        index = build_index(path)  # no cache: a check looks at the file as it is now
        record.update(codec=index.codec, width=index.width, height=index.height, header_frames=index.header["frames"],
                      frames=index.num_frames, fps=round(index.fps, 3), header_fps=round(index.header["fps"], 3),
                      duration=round(index.duration, 3), start_time=round(float(index.timestamps[0]), 6),
                      b_frames=index.reordered)
        keys = index.keyframes
        gaps = np.diff(np.append(keys, index.num_frames))
        record.update(keyframes=len(keys), gop_mean=round(float(gaps.mean()), 1), gop_max=int(gaps.max()))
        bad = []
        with open_video(path, backend="pyav", cache_dir=False, bad_frames="nearest") as video:
            for start in range(0, video.num_frames, 256):  # in chunks: memory stays small on long videos
                video.get_frames(np.arange(start, min(start + 256, video.num_frames)), size=16)
                bad.extend(video.replaced)
        record["bad_frames"] = bad
        record["decoded_frames"] = index.num_frames - len(bad)
        if bad:
            record["error"] = f"{len(bad)} of {index.num_frames} frames do not decode (first: {bad[0]})"
        record["ok"] = not bad
        if index.header["frames"] > index.num_frames:  # AVI and MP4 headers state a count; MKV/WebM do not
            record["warning"] = (f"header claims {index.header['frames']} frames, the file holds {index.num_frames} "
                                 "(truncated?)")
    except (VideoDecodeError, OSError) as e:
        record["error"] = getattr(e, "reason", None) or str(e)
    return record


def check_videos(paths, num_workers: int = 1):
    """Yield a record per path, in order."""
    if num_workers <= 1:
        yield from map(check_video, paths)
        return
    with process_pool(num_workers) as pool:
        yield from pool.map(check_video, paths, chunksize=1)


def format_row(record: dict) -> str:
    """One line of the table for a record."""
    if "frames" not in record:
        return f"BAD   {'-':>13}  {'-':>7}  {'-':>9}  {'-':<6}  {'-':>9}  {record['path']}: {record['error']}"
    status = "BAD" if not record["ok"] else "warn" if record.get("warning") else "ok"
    frames = f"{record['decoded_frames']}/{record['frames']}"
    if record["header_frames"] and record["header_frames"] != record["frames"]:
        frames += f" (hdr {record['header_frames']})"
    size = f"{record['width']}x{record['height']}"
    gop = f"{record['gop_mean']:g}/{record['gop_max']}"
    line = f"{status:<5} {frames:>13}  {record['fps']:>7.3f}  {size:>9}  {record['codec']:<6}  {gop:>9}  {record['path']}"
    note = record["error"] or record.get("warning")
    return line + (f": {note}" if note else "")


TABLE_HEADER = f"{'status':<5} {'frames':>13}  {'fps':>7}  {'size':>9}  {'codec':<6}  {'gop':>9}  path"
