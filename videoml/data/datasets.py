"""Data set sources: from the layouts publishers distribute to a list of (video path, label) and class names.

Each reader takes the files as data/README.md describes them. Listed videos that are missing on disk (Kinetics clips
that failed to download, say) are dropped with one warning that counts them, and kept in ``VideoList.missing``:
training counts them against ``max_bad_fraction`` and evaluation against ``min_eval_fraction``, like unreadable ones.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from videoml.data.files import VIDEO_EXTENSIONS
from videoml.errors import VideoDecodeError, VideomlError
from videoml.vocab import check

log = logging.getLogger("videoml.data")


@dataclass(frozen=True)
class VideoList:
    """Videos with integer labels, and the names of the labels."""

    items: tuple[tuple[Path, int], ...]
    classes: tuple[str, ...]
    source: str = ""  # where it came from, for messages
    missing: tuple[Path, ...] = ()  # listed but not usable on disk: absent, empty, not a file (left out of items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def listed(self) -> int:
        """How many videos the source lists, present or not."""
        return len(self.items) + len(self.missing)


def _on_disk(path: Path) -> bool:
    """Whether ``path`` may hold a video, as one ``stat`` tells (what ``open_video`` checks first): a regular file of
    at least one byte. (A list of 10,000 empty files is found out here, before training, not one decode at a time.)"""
    from videoml.data.decoding.index import check_file

    try:
        check_file(path)
    except (VideoDecodeError, ValueError):  # ValueError: a name the file system refuses (a NUL byte)
        return False
    return True


def _existing(items: list[tuple[Path, int]], classes, source: str) -> VideoList:
    usable = [_on_disk(p) for p, _ in items]
    present = [item for item, ok in zip(items, usable) if ok]
    missing = tuple(p for (p, _), ok in zip(items, usable) if not ok)
    if missing:
        log.warning("%s: %d of %d listed videos are missing or empty and skipped (first: %s)", source, len(missing),
                    len(items), missing[0])
    if not present:
        raise VideomlError(f"{source}: none of its {len(items)} videos exist" if items else f"{source}: lists no video")
    for _, label in present:
        if not 0 <= label < len(classes):
            raise VideomlError(f"{source}: label {label} out of range for {len(classes)} classes")
    return VideoList(tuple(present), tuple(classes), source, missing)


def _read(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 kept as Python keeps them in file names (surrogateescape), so a
    listed path that is not valid UTF-8 names its file."""
    try:
        return Path(path).read_text(errors="surrogateescape")
    except FileNotFoundError:
        raise VideomlError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VideomlError(f"{path}: cannot be read ({e})") from None


def labeled_paths(path: str | os.PathLike, classes: str | os.PathLike | None = None,
                  root: str | os.PathLike | None = None) -> VideoList:
    """PyTorchVideo's format: ``<path> <label>`` a line (the label is the last field, so paths may hold spaces).

    Relative paths are relative to ``root``, by default the file's folder. Class names come from ``classes`` (one a
    line), by default ``classes.txt`` beside the file, else the labels' numbers.
    """
    path = Path(path)
    base = Path(root) if root else path.parent
    items = []
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise VideomlError(f"{path}:{number}: expected '<path> <label>', got {line!r}")
        items.append((base / parts[0], int(parts[1])))
    names_file = Path(classes) if classes else path.parent / "classes.txt"
    if names_file.is_file() or classes:
        names = [n for n in _read(names_file).splitlines() if n.strip()]
    else:
        names = [str(i) for i in range(max((label for _, label in items), default=-1) + 1)]
    return _existing(items, names, str(path))


def folder(root: str | os.PathLike) -> VideoList:
    """``root/<class>/<video>``: classes sorted by name are labels 0..N-1."""
    root = Path(root)
    if not root.is_dir():
        raise VideomlError(f"{root}: no such directory")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    items = [(f, label) for label, name in enumerate(classes) for f in sorted((root / name).rglob("*"))
             if f.suffix.lower() in VIDEO_EXTENSIONS]
    return _existing(items, classes, str(root))


def kinetics(csv_file: str | os.PathLike, root: str | os.PathLike, split: str | None = None,
             classes_csv: str | os.PathLike | None = None) -> VideoList:
    """Kinetics-400/600/700 annotation CSV (``label,youtube_id,time_start,time_end,split``); videos at
    ``root/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4``. Classes: the sorted labels of ``classes_csv``
    (pass the training CSV when reading another split), by default of ``csv_file``."""
    csv_file, root = Path(csv_file), Path(root)

    def rows(path: Path) -> list[dict]:
        reader = csv.DictReader(_read(path).splitlines())
        needed = {"label", "youtube_id", "time_start", "time_end", "split"}
        if not reader.fieldnames or not needed <= set(reader.fieldnames):
            raise VideomlError(f"{path}: expected the columns {sorted(needed)}, got {reader.fieldnames}")
        return list(reader)

    entries = rows(csv_file)
    classes = sorted({r["label"] for r in rows(Path(classes_csv)) if r["label"]} if classes_csv else
                     {r["label"] for r in entries if r["label"]})
    lookup = {name: i for i, name in enumerate(classes)}
    folder_of = {"train": "train", "validate": "val", "val": "val", "test": "test"}
    items = []
    for r in entries:
        if r["label"] not in lookup:
            continue  # the test CSV has no labels
        sub = folder_of.get(split or r["split"], split or r["split"])
        name = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        items.append((root / sub / r["label"] / name, lookup[r["label"]]))
    return _existing(items, classes, str(csv_file))


def ucf101(root: str | os.PathLike, split: int = 1, subset: str = "train") -> VideoList:
    """UCF101 with its official split files under ``root/ucfTrainTestlist``; videos under ``root/UCF-101``."""
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    index = {}
    for line in _read(lists / "classInd.txt").splitlines():
        if line.strip():
            number, name = line.split()
            index[name] = int(number) - 1
    classes = [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])]
    listing = lists / f"{'trainlist' if subset == 'train' else 'testlist'}0{split}.txt"
    items = []
    for line in _read(listing).splitlines():
        if line.strip():
            relative = line.split()[0]
            items.append((root / "UCF-101" / relative, index[relative.split("/")[0]]))
    return _existing(items, classes, str(listing))


def hmdb51(root: str | os.PathLike, split: int = 1, subset: str = "train") -> VideoList:
    """HMDB51: ``root/hmdb51/<class>/<video>.avi`` and ``root/testTrainMulti_7030_splits/<class>_test_split<N>.txt``
    (1 = train, 2 = test, 0 = unused)."""
    root = Path(root)
    splits = root / "testTrainMulti_7030_splits"
    if not splits.is_dir():
        raise VideomlError(f"{splits}: no such directory")
    suffix = f"_test_split{split}.txt"
    files = sorted(f for f in splits.iterdir() if f.name.endswith(suffix))
    classes = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if subset == "train" else "2"
    items = []
    for label, (name, listing) in enumerate(zip(classes, files)):
        for line in _read(listing).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == wanted:
                items.append((root / "hmdb51" / name / parts[0], label))
    return _existing(items, classes, str(splits))


def ssv2(root: str | os.PathLike, subset: str = "train") -> VideoList:
    """Something-Something v2: ``root/labels/something-something-v2-{labels,train,validation}.json`` and
    ``root/20bn-something-something-v2/<id>.webm``; a video's class is its template without brackets."""
    root = Path(root)
    labels_file = root / "labels" / "something-something-v2-labels.json"
    listing = root / "labels" / f"something-something-v2-{subset}.json"
    try:
        lookup = {name: int(i) for name, i in json.loads(_read(labels_file)).items()}
        entries = json.loads(_read(listing))
    except (ValueError, AttributeError) as e:
        raise VideomlError(f"{listing}: not the Something-Something v2 JSON layout ({e})") from None
    classes = [name for name, _ in sorted(lookup.items(), key=lambda kv: kv[1])]
    items = []
    for entry in entries:
        if "template" not in entry:
            continue  # the test list has no labels
        name = entry["template"].replace("[", "").replace("]", "")
        if name not in lookup:
            raise VideomlError(f"{listing}: video {entry.get('id')} has a template not in {labels_file.name}: {name!r}")
        items.append((root / "20bn-something-something-v2" / f"{entry['id']}.webm", lookup[name]))
    return _existing(items, classes, str(listing))


def shared_classes(splits: dict[str, VideoList]) -> tuple[str, ...]:
    """The class names every split has (a split with other classes is an error naming it)."""
    first = next(iter(splits.values()))
    for name, videos in splits.items():
        if videos.classes != first.classes:
            raise VideomlError(f"{name} data ({videos.source}) has other classes than {first.source}")
    return first.classes


def shards(url: str, split: str = "train") -> VideoList:
    """A split of a shard set (``videoml data shard``'s output) at a local path, an ``http(s)://`` or an ``s3://``
    URL; see :mod:`videoml.data.shard_reading`."""
    from videoml.data.shard_reading import shards as read

    return read(url, split)


SOURCES = {"labeled_paths": labeled_paths, "folder": folder, "kinetics": kinetics, "ucf101": ucf101,
           "hmdb51": hmdb51, "ssv2": ssv2, "shards": shards}


def load_source(kind: str, **options) -> VideoList:
    """``load_source("ucf101", root="/data/ucf101", split=1, subset="test")``: the reader named ``kind``."""
    check(kind, SOURCES, "data source", VideomlError)
    try:
        return SOURCES[kind](**options)
    except TypeError as e:
        raise VideomlError(f"data source {kind!r}: {e}") from None
