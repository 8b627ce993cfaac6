"""Per-class evaluation: each class's top-1, the confusion matrix and the most confused pairs, written into a folder
as CSV and PNG and read back from it (``videoml report``).

``validate`` / ``test`` (and ``fit``'s evaluations) write ``RUN_DIR/report/val`` and ``RUN_DIR/report/test`` (the
latest evaluation of each); ``videoml infer --labels LIST`` writes ``OUTPUT.report`` beside its results. A folder
holds:

    confusion.csv   video counts, a row per true class, a column per predicted class: the source of the rest
    per_class.csv   class, videos, correct, top1, the class it is most often mistaken for
    confused.csv    the most confused (true, predicted) pairs: count and share of the true class's videos
    confusion.png   the matrix, each row as fractions of its class's videos

The matrix is torchmetrics' ``multiclass_confusion_matrix`` of the video-level scores the accuracy is computed from.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from videoml.errors import VideomlError
from videoml.fileio import atomic_path, write_atomic

CONFUSION = "confusion.csv"
MAX_COUNT = 10**15  # videos in one cell: more than any data set holds, far from int64's limit


def _rows_to_csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _matrix_problem(classes: tuple, rows: list[list[str]], counts: list[list[int]]) -> str | None:
    """What is wrong with a confusion matrix as read (the message from its line on), or None."""
    if not classes or len(set(classes)) < len(classes) or not all(classes):
        return "line 1: class names must be given, distinct and not empty"
    if len(rows) != len(classes):
        return f"{len(rows)} rows for {len(classes)} classes"
    for line, (row, values, name) in enumerate(zip(rows, counts, classes), 2):
        if row[:1] != [name]:
            return f"line {line}: rows must name the header's classes in its order ({row[:1]} for {name!r})"
        if len(values) != len(classes):
            return f"line {line}: {len(values)} counts for {len(classes)} classes"
        bad = next((v for v in values if not 0 <= v <= MAX_COUNT), None)
        if bad is not None:
            return f"line {line}: a count of {bad} videos (counts are whole numbers from 0 to {MAX_COUNT:.0e})"
    return None


@dataclass(frozen=True)
class ClassReport:
    classes: tuple[str, ...]
    matrix: np.ndarray  # (C, C) int64 video counts: [true, predicted]

    @classmethod
    def from_scores(cls, probs: torch.Tensor, labels: torch.Tensor, classes) -> "ClassReport":
        """From video-level scores (N, C) and true labels (N,)."""
        from torchmetrics.functional.classification import multiclass_confusion_matrix

        matrix = multiclass_confusion_matrix(probs.float().cpu(), labels.cpu(), num_classes=len(classes))
        return cls(tuple(classes), matrix.numpy().astype(np.int64))

    @classmethod
    def from_labels(cls, true: list[str], predicted: list[str], classes) -> "ClassReport":
        """From class names: each video's true and predicted class (names outside ``classes`` are appended)."""
        names = list(dict.fromkeys([*classes, *true, *predicted]))
        index = {name: i for i, name in enumerate(names)}
        matrix = np.zeros((len(names), len(names)), dtype=np.int64)
        np.add.at(matrix, ([index[t] for t in true], [index[p] for p in predicted]), 1)
        return cls(tuple(names), matrix)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ClassReport":
        path = Path(folder) / CONFUSION
        try:
            rows = list(csv.reader(path.open()))
            classes = tuple(rows[0][1:])
            counts = [[int(v) for v in row[1:]] for row in rows[1:]]
        except (OSError, IndexError, ValueError) as e:
            raise VideomlError(f"{path}: not a confusion matrix written by videoml ({e})") from None
        problem = _matrix_problem(classes, rows[1:], counts)
        if problem:
            raise VideomlError(f"{path}, {problem}")
        return cls(classes, np.array(counts, dtype=np.int64))

    @property
    def top1(self) -> float:
        return float(np.trace(self.matrix) / max(self.matrix.sum(), 1))

    def per_class(self) -> list[dict]:
        rows = []
        for i, name in enumerate(self.classes):
            videos, correct = int(self.matrix[i].sum()), int(self.matrix[i, i])
            mistaken = self.matrix[i].copy()
            mistaken[i] = 0
            rows.append({"class": name, "videos": videos, "correct": correct,
                         "top1": correct / videos if videos else float("nan"),
                         "mistaken_for": self.classes[int(mistaken.argmax())] if mistaken.any() else ""})
        return rows

    def confused(self, count: int = 10) -> list[dict]:
        """The ``count`` largest off-diagonal cells, largest first."""
        off = self.matrix.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:count]
        pairs = [np.unravel_index(k, off.shape) for k in order]
        return [{"true": self.classes[t], "predicted": self.classes[p], "videos": int(off[t, p]),
                 "share": float(off[t, p] / max(self.matrix[t].sum(), 1))} for t, p in pairs if off[t, p]]

    def write(self, folder: str | os.PathLike) -> Path:
        """The folder's four files (module doc), each written atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [[c, *row] for c, row in zip(self.classes, self.matrix.tolist())]
        write_atomic(folder / CONFUSION, _rows_to_csv(["true \\ predicted", *self.classes], rows))
        self.write_derived(folder)
        return folder

    def write_derived(self, folder: Path) -> None:
        """per_class.csv, confused.csv and confusion.png, from the matrix."""
        rows = self.per_class()
        write_atomic(folder / "per_class.csv", _rows_to_csv(list(rows[0]), [
            [r["class"], r["videos"], r["correct"], f"{r['top1']:.4f}", r["mistaken_for"]] for r in rows]))
        pairs = self.confused()
        write_atomic(folder / "confused.csv", _rows_to_csv(["true", "predicted", "videos", "share"], [
            [p["true"], p["predicted"], p["videos"], f"{p['share']:.4f}"] for p in pairs]))
        self.plot(folder / "confusion.png")

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(self.classes)
        shares = self.matrix / np.maximum(self.matrix.sum(1, keepdims=True), 1)
        size = min(max(4.0, 0.45 * n + 2), 20)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class's videos")
        if n <= 40:  # names and counts stay legible
            ax.set_xticks(range(n), self.classes, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(n), self.classes, fontsize=8)
            for (t, p), count in np.ndenumerate(self.matrix):
                if count:
                    ax.text(p, t, str(count), ha="center", va="center", fontsize=7,
                            color="white" if shares[t, p] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{int(self.matrix.sum())} videos, top-1 {self.top1:.3f}")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)

    def table(self) -> str:
        """Markdown: a row per class, then the most confused pairs."""
        lines = [f"top-1 {self.top1:.4f} over {int(self.matrix.sum())} videos", "",
                 "| class | videos | top-1 | mistaken most for |", "|---|---:|---:|---|"]
        lines += [f"| {r['class']} | {r['videos']} | {r['top1']:.3f} | {r['mistaken_for'] or '–'} |"
                  for r in self.per_class()]
        pairs = self.confused()
        if pairs:
            lines += ["", "| true | predicted as | videos | share |", "|---|---|---:|---:|"]
            lines += [f"| {p['true']} | {p['predicted']} | {p['videos']} | {p['share']:.1%} |" for p in pairs]
        return "\n".join(lines) + "\n"


def report_folders(path: str | os.PathLike) -> list[Path]:
    """The report folders at or below ``path`` (a run directory, an infer report, or one report folder)."""
    path = Path(path)
    if (path / CONFUSION).is_file():
        return [path]
    found = sorted(p.parent for p in path.rglob(CONFUSION)) if path.is_dir() else []
    if not found:
        raise VideomlError(f"{path}: holds no per-class report ({CONFUSION}; written by validate/test and by infer "
                           "--labels)")
    return found
