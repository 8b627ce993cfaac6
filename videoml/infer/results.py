"""Inference results on disk: JSONL (the record of the run, one video a line) and optionally CSV.

Each record is written as one complete line and flushed at once, so a killed run leaves valid files but for at most a
torn last line, which the next ``--resume`` cuts off before going on. The JSONL file is the source of truth: on resume
the videos it holds are skipped and the CSV is rebuilt from it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from videoml.errors import UsageError, VideomlError
from videoml.fileio import write_atomic

CSV_FIELDS = ("path", "status", "label", "score", "top_k", "clips", "seconds", "error")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The complete records of a JSONL results file (a torn last line is left out)."""
    records = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except ValueError:
                raise VideomlError(f"{path}: line {len(records) + 1} is not a JSON record; not a videoml results "
                                   "file?") from None
    return records


def csv_row(record: dict) -> str:
    top = record.get("top_k") or []
    row = {"path": record["path"], "status": record["status"],
           "label": top[0]["label"] if top else "", "score": f"{top[0]['score']:.6f}" if top else "",
           "top_k": ";".join(f"{t['label']}:{t['score']:.6f}" for t in top), "clips": record.get("clips", ""),
           "seconds": f"{record['seconds']:.4f}" if record.get("seconds") is not None else "",
           "error": record.get("error") or ""}
    out = io.StringIO()
    csv.DictWriter(out, CSV_FIELDS, lineterminator="\n").writerow(row)
    return out.getvalue()


def _csv_header() -> str:
    return ",".join(CSV_FIELDS) + "\n"


class ResultWriter:
    """Appends records to ``jsonl`` (and ``csv_path``); with ``resume``, keeps what an earlier run wrote."""

    def __init__(self, jsonl: str | os.PathLike, csv_path: str | os.PathLike | None = None, resume: bool = False,
                 overwrite: bool = False):
        self.jsonl, self.csv_path = Path(jsonl), Path(csv_path) if csv_path else None
        kept: list[dict] = []
        if self.jsonl.exists():
            if resume:
                kept = read_records(self.jsonl)
            elif not overwrite:
                raise UsageError(f"{self.jsonl} exists: --resume to go on with it, --overwrite to replace it")
        elif resume and overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        self.done = {r["path"] for r in kept}
        self.previous = kept
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        # rewrite what is kept (drops a torn last line), atomically, then append
        write_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        if self.csv_path:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.csv_path, _csv_header() + "".join(csv_row(r) for r in kept))
        self._files = [open(self.jsonl, "a")] + ([open(self.csv_path, "a", newline="")] if self.csv_path else [])

    def write(self, record: dict) -> None:
        lines = [json.dumps(record) + "\n"] + ([csv_row(record)] if self.csv_path else [])
        for f, line in zip(self._files, lines):
            f.write(line)
            f.flush()

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
