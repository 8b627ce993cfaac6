"""A run's records as Parquet tables (``--parquet PATH``), for analytics tools (pandas, Polars, DuckDB, Spark).

Written when the run ends, from its JSONL records (the source of truth, resumed runs and merged device shards
included), atomically: a table is all of the output or nothing. Schemas (docs/inference.md, "Parquet"):

- ``infer``: ``PATH`` one row per video: ``path``, ``status`` ("ok" / "error"), ``label`` and ``score`` (top-1),
  ``top_k`` (list of {label, score}), ``clips``, ``seconds``, ``decode_s``, ``model_s``, ``error``. With
  ``--per-clip`` or ``--dense``, ``PATH``'s ``.clips.parquet`` sibling: one row per clip, ``path``, ``clip`` (its
  number), ``start``, ``end`` (seconds), ``label``, ``score``, ``top_k``.
- ``extract``: ``PATH`` one row per video: ``path``, ``status``, ``features`` (the arrays' name), ``dim``,
  ``embedding`` (float32 list: the video's mean), ``clips``, ``seconds``, ``error``; and the ``.clips.parquet``
  sibling: one row per clip and crop, ``path``, ``clip``, ``crop``, ``start``, ``end``, ``embedding``.
"""

from __future__ import annotations

import os
from pathlib import Path

from videoml.fileio import atomic_path
from videoml.infer.results import read_records


def clips_path(path: str | os.PathLike) -> Path:
    """Where the per-clip table of ``path`` goes: ``x.parquet`` -> ``x.clips.parquet``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".parquet") + ".clips.parquet")


def write_tables(records_file: str | os.PathLike, path: str | os.PathLike, rows) -> list[Path]:
    """The tables of the records in ``records_file``: ``rows(record)`` gives a record's (video row, clip rows).
    Returns the files written (the clip table only when a record has clip rows)."""
    import pyarrow as pa  # (its absence is refused before the run: VideoRun.check)
    import pyarrow.parquet as pq

    videos, clips = [], []
    for record in read_records(records_file):
        video, per_clip = rows(record)
        videos.append(video)
        clips += per_clip
    written = []
    for target, table in ((Path(path), videos), (clips_path(path), clips)):
        if table or target == Path(path):
            with atomic_path(target) as tmp:
                pq.write_table(pa.Table.from_pylist(table), tmp)
            written.append(target)
    return written


def _top(top_k: list[dict]) -> dict:
    best = top_k[0] if top_k else {}
    return {"label": best.get("label"), "score": best.get("score"), "top_k": top_k}


def infer_rows(record: dict) -> tuple[dict, list[dict]]:
    """An infer record's row, and its clips' (``per_clip`` or ``timeline``)."""
    video = {"path": record["path"], "status": record["status"], **_top(record.get("top_k") or []),
             **{k: record.get(k) for k in ("clips", "seconds", "decode_s", "model_s", "error")}}
    segments = record.get("timeline") or record.get("per_clip") or []
    clips = [{"path": record["path"], "clip": n, "start": s["start"], "end": s["end"], **_top(s["top_k"])}
             for n, s in enumerate(segments)]
    return video, clips


def extract_rows(out: str | os.PathLike):
    """``rows`` for an extract output folder ``out``: a record's row with the video's embedding, and its clips'
    (the arrays read by :func:`~videoml.infer.features.load_features`, which names a missing one)."""
    from videoml.infer.features import load_features

    features = load_features(out)
    arrays = {r["features"]: (video, clips) for r, video, clips in zip(features.records, features.videos,
                                                                      features.clips)}

    def rows(record: dict) -> tuple[dict, list[dict]]:
        ok = record["status"] == "ok"
        name = record.get("features")
        video = {"path": record["path"], "status": record["status"], "features": name, "dim": record.get("dim"),
                 "embedding": arrays[name][0] if ok else None,  # float32 lists
                 **{k: record.get(k) for k in ("clips", "seconds", "error")}}
        if not ok:
            return video, []
        crops, array = record["crops"], arrays[name][1]
        clips = [{"path": record["path"], "clip": n // crops, "crop": n % crops, "start": record["starts"][n // crops],
                  "end": record["ends"][n // crops], "embedding": row} for n, row in enumerate(array)]
        return video, clips

    return rows
