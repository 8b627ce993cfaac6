"""Inference results on disk: JSONL (the record of the run, one video a line) and optionally CSV.

Each record is written as one complete line and flushed at once, so a killed run leaves valid files but for at most a
torn last line, which the next ``--resume`` cuts off before going on. The JSONL file is the source of truth: on resume
the videos it holds (by real path) are skipped and the CSV is rebuilt from it.

A run holds an exclusive lock on each of its outputs for its whole life (``fcntl.flock`` on ``<output>.lock``
beside it, naming the holder): a second run writing the same file is refused instead of interleaving with it or
renaming a new file over the one the first still appends to. Outputs must be regular files (or not exist yet), and
the JSONL and CSV outputs distinct files. File names that are not valid UTF-8 are kept as Python keeps them
(``os.fsdecode``: undecodable bytes as lone surrogates, written as ``\\udcXX`` escapes in JSON and as the
original bytes in the CSV).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
from pathlib import Path

from videoml.errors import UsageError, VideomlError
from videoml.fileio import output_lock, write_atomic

CSV_FIELDS = ("path", "status", "label", "score", "top_k", "clips", "seconds", "error")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The complete records of a JSONL results file (a torn last line is left out)."""
    records = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not (isinstance(record, dict) and isinstance(record.get("path"), str) and "status" in record):
                raise VideomlError(f"{path}: line {len(records) + 1} is not a videoml result record (a JSON object "
                                   "with path and status); not a videoml results file?")
            records.append(record)
    return records


def result_key(path: str | os.PathLike) -> str:
    """What resuming compares: the real path, so that the same video spelled otherwise is recorded once."""
    return os.path.realpath(path)


def check_output_paths(jsonl: Path, csv_path: Path | None) -> None:
    """One-line errors for outputs that cannot be results files: the same file twice, something that is not a
    regular file (a link, a FIFO, a device, a folder), or a folder that cannot be made."""
    if csv_path is not None and os.path.realpath(jsonl) == os.path.realpath(csv_path):
        raise UsageError(f"the JSONL output and --csv are the same file ({jsonl}); give them different names")
    for path in (jsonl, csv_path):
        if path is None:
            continue
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        except NotADirectoryError:
            raise UsageError(f"{path}: a part of it is a file, not a folder") from None
        if mode is not None and not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else \
                "not a regular file (a FIFO, socket or device)"
            raise UsageError(f"{path}: is {kind}; results are written only to regular files")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"{path}: cannot make its folder ({e.strerror}: a part of it is a file?)") from None


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
    """Appends records to ``jsonl`` (and ``csv_path``); with ``resume``, keeps what an earlier run wrote. Holds the
    outputs' locks until closed, unless ``lock`` is False (the caller holds them)."""

    def __init__(self, jsonl: str | os.PathLike, csv_path: str | os.PathLike | None = None, resume: bool = False,
                 overwrite: bool = False, lock: bool = True):
        self.jsonl, self.csv_path = Path(jsonl), Path(csv_path) if csv_path else None
        if resume and overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        check_output_paths(self.jsonl, self.csv_path)
        self._lock = contextlib.ExitStack()
        if lock:
            self._lock.enter_context(output_lock([p for p in (self.jsonl, self.csv_path) if p]))
        try:
            self._open(resume, overwrite)
        except BaseException:
            self._lock.close()
            raise

    def _open(self, resume: bool, overwrite: bool) -> None:
        kept: list[dict] = []
        for path in (self.jsonl, self.csv_path):  # (an empty file holds nothing to lose: a failed start's)
            if path is not None and path.exists() and path.stat().st_size and not (resume or overwrite):
                raise UsageError(f"{path} exists: --resume to go on with it, --overwrite to replace it")
        if self.jsonl.exists() and resume:
            kept = read_records(self.jsonl)
        self.done = {result_key(r["path"]) for r in kept}
        self.previous = kept
        # rewrite what is kept (drops a torn last line), atomically, then append
        write_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        if self.csv_path:
            write_atomic(self.csv_path, _csv_header() + "".join(csv_row(r) for r in kept), errors="surrogateescape")
        self._files = [open(self.jsonl, "a")] + ([open(self.csv_path, "a", newline="", errors="surrogateescape")]
                                                 if self.csv_path else [])

    def write(self, record: dict) -> None:
        lines = [json.dumps(record) + "\n"] + ([csv_row(record)] if self.csv_path else [])
        for f, line in zip(self._files, lines):
            try:
                f.write(line)
                f.flush()
            except OSError as e:  # a full disk, a file system gone read-only: say which output
                raise VideomlError(f"{f.name}: cannot write a record ({e.strerror}); what is written is kept, "
                                   "--resume goes on from it") from None

    def close(self) -> None:
        for f in self._files:
            with contextlib.suppress(OSError):  # a record that could not be written: write reported it
                f.close()
        self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
