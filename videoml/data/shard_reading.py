"""Training and evaluation clips read from shards (``videoml data shard``'s output) on a local disk, over HTTP(S), or
from S3 or an S3-compatible store: ``data.train: {kind: shards, url: s3://bucket/kinetics, split: train}``.

The epoch is planned from the manifest alone (:mod:`videoml.data.shard_plan`): the shuffled shards' samples are cut
into one contiguous run per loader stream (every rank's decoding workers), each stream fetches the shards of its run
one after the other, one request each, and reads their samples in a seeded random order; runs differ by one sample
at most and weightless repeats give every stream the same length, so every sample is read exactly once per epoch
across ranks x workers, as :class:`~videoml.data.clips.ShardSampler` gives for files.
The plan is a sampler of :class:`~videoml.data.clips.SampleKey` (:class:`StreamSampler`): the loaders, the
crash-surviving :class:`~videoml.data.clips.ClipLoader`, the sample keys with epoch and padding, the clip sampling and
augmentation are the ones files go through; a sample's clip decodes from its bytes with the frame index stored
beside it (:class:`~videoml.data.decoding.VideoBytes`), so frame ``i`` is the same as from the file.

A shard is fetched whole and checked against the manifest's size and SHA-256 before any of its samples is used
(MosaicML Streaming checks its shards so too): a missing, truncated or altered shard is said in one line naming it,
and its samples count as unreadable (against ``max_bad_fraction``, each named), never skipped silently; so does a
sample whose video does not decode. A worker keeps at most two fetched shards in memory (``--max-mb`` of ``data
shard`` sizes them).

Reading tar members uses WebDataset's iterators; fetching is by hand because WebDataset's ``gopen`` runs ``curl``
per shard (absent from slim images; it reports only an exit status) and reads S3 through the ``aws`` command.
Mid-epoch resume is not supported: a run resumed from a checkpoint starts its epoch again, as with files.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from math import gcd
from urllib.parse import urlsplit

import numpy as np
from torch.utils.data import Sampler

from videoml.data.clips import ClipDataset, SampleKey
from videoml.data.datasets import VideoList
from videoml.data.decoding.index import FrameIndex, VideoBytes
from videoml.data.shard_plan import deal, stream_of
from videoml.errors import VideoDecodeError, VideomlError, install_hint

log = logging.getLogger("videoml.data")
_ATTEMPTS = 3  # tries of an HTTP request that failed in a way that may pass (a 5xx answer, a dropped connection)


class FetchError(Exception):
    """A shard or manifest could not be fetched; the message says which and why. ``absent``: there is nothing there
    (no such file, object or page), rather than a failure to read it."""

    def __init__(self, message: str, absent: bool = False):
        super().__init__(message)
        self.absent = absent


@functools.lru_cache(maxsize=1)
def _s3_client(pid: int):
    """boto3's S3 client: credentials, region and endpoint (``AWS_ENDPOINT_URL``, for MinIO, Ceph, a local server)
    from the environment and the AWS config files, never from a config of ours (nothing to log by mistake). One a
    process (``pid``): making one takes tens of ms, a client is thread-safe, but its connections are not to be shared
    with a forked loader worker."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": _ATTEMPTS}))


def _require(url: str) -> None:
    """Refuse now, not in a loader worker, when a package reading ``url``'s shards is missing."""
    for package in ("webdataset", *(("boto3",) if urlsplit(url).scheme == "s3" else ())):
        if importlib.util.find_spec(package) is None:
            raise VideomlError(f"reading shards from {url} needs {package}: {install_hint(package)}")


def _fetch_s3(url: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    parts = urlsplit(url)
    try:
        return _s3_client(os.getpid()).get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    except ClientError as e:
        error = e.response.get("Error", {})
        message = f" ({error['Message']})" if error.get("Message") else ""
        raise FetchError(f"{url}: {error.get('Code', 'error')}{message}",
                         absent=error.get("Code") in ("NoSuchKey", "NoSuchBucket", "404")) from None
    except NoCredentialsError:
        raise FetchError(f"{url}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                         "AWS_PROFILE)") from None
    except BotoCoreError as e:
        raise FetchError(f"{url}: {e}") from None


def _fetch_http(url: str) -> bytes:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                return answer.read()
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == _ATTEMPTS:
                raise FetchError(f"{url}: HTTP {e.code} {e.reason}", absent=e.code in (404, 410)) from None
        except (urllib.error.URLError, OSError) as e:
            if attempt == _ATTEMPTS:
                raise FetchError(f"{url}: {getattr(e, 'reason', e)}") from None
        time.sleep(0.5 * 2 ** attempt)
    raise AssertionError("unreachable")


def fetch(url: str) -> bytes:
    """The whole object at ``url``: a local path, ``file://``, ``http(s)://`` or ``s3://``."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return _fetch_http(url)
    if scheme == "s3":
        return _fetch_s3(url)
    path = urlsplit(url).path if scheme == "file" else url
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise FetchError(f"{path}: {e.strerror or e}",
                         absent=isinstance(e, (FileNotFoundError, NotADirectoryError))) from None


def _joined(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


@dataclass(frozen=True)
class ShardedList(VideoList):
    """A split's samples as a shard set's manifest lists them: the videos (named ``<shard url>:<key>``) and their
    labels, sample ``i`` being the prepared split's video ``i``; ``shards``: the manifest's records of the split's
    shards (name, bytes, sha256, keys, labels), ``url``: where the set is."""

    url: str = ""
    shards: tuple[dict, ...] = ()

    def shard_of(self) -> dict[int, int]:
        """sample number -> the number of its shard."""
        return {int(key): n for n, shard in enumerate(self.shards) for key in shard["keys"]}


def shards(url: str, split: str = "train") -> ShardedList:
    """Split ``split`` of the shard set at ``url`` (its ``manifest.json`` read there)."""
    _require(url)
    where = _joined(url, "manifest.json")
    try:
        manifest = json.loads(fetch(where))
    except FetchError as e:
        raise VideomlError(f"{e}; is {url} a shard set (videoml data shard)?" if e.absent else str(e)) from None
    except ValueError:
        raise VideomlError(f"{where}: not valid JSON; write the shards again") from None
    if manifest.get("format") != 1:
        raise VideomlError(f"{where}: format {manifest.get('format')}, this videoml reads 1")
    if split not in manifest["splits"]:
        raise VideomlError(f"{url}: no split {split!r} (it has {', '.join(manifest['splits'])})")
    records = tuple(manifest["splits"][split]["shards"])
    samples = {int(key): (_joined(url, s["name"]) + f":{key}", label)
               for s in records for key, label in zip(s["keys"], s["labels"])}
    if sorted(samples) != list(range(len(samples))):
        raise VideomlError(f"{where}: the samples of {split} are not numbered 0 to "
                           f"{len(samples) - 1}; write the shards again")
    classes = tuple(manifest["classes"])
    if any(not 0 <= label < len(classes) for _, label in samples.values()):
        raise VideomlError(f"{where}: a label out of range for {len(classes)} classes")
    return ShardedList(tuple(samples[i] for i in range(len(samples))), classes, f"{url} ({split})", url=url,
                       shards=records)


def _samples(data: bytes, name: str) -> dict[str, dict]:
    """key -> {suffix: bytes} of a fetched shard, read with WebDataset's tar iterators."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    files = ({**f, "__url__": name} for f in tar_file_iterator(io.BytesIO(data)))
    return {sample["__key__"]: sample for sample in group_by_keys(files)}


def _checked(record: dict, data: bytes) -> None:
    """Refuse a shard that is not the one the manifest lists."""
    if len(data) != record["bytes"]:
        raise FetchError(f"{len(data)} bytes, the manifest says {record['bytes']} (truncated or replaced)")
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise FetchError("its SHA-256 differs from the manifest's (altered since it was written)")


class ShardClipDataset(ClipDataset):
    """:class:`~videoml.data.clips.ClipDataset` over a :class:`ShardedList`: a sample's video comes from its shard,
    fetched whole when first needed and kept while the stream reads it (see the module's description)."""

    KEPT_SHARDS = 2  # a stream reads one shard at a time; the second covers a crash-restarted loader's handover
    RETRY_S = 60.0  # a shard that could not be fetched is kept as (why, when): said once while its samples are
    # read, and fetched again after this long (a failure may pass)

    def __init__(self, videos: ShardedList, *args, **kwargs):
        super().__init__(videos, *args, **kwargs)
        self.shard_of = videos.shard_of()
        self.fetched: OrderedDict[int, dict] = OrderedDict()
        self.lock = threading.Lock()  # tf.data's decoding threads share the fetched shards

    def __getstate__(self):  # (loader workers start with no shard fetched)
        return {**self.__dict__, "fetched": OrderedDict(), "lock": None}

    def __setstate__(self, state):
        self.__dict__.update(state, lock=threading.Lock())

    def sampler(self, world: int = 1, rank: int = 0, workers: int = 0, batch: int = 1, shuffle: bool | None = None,
                seed: int | None = None) -> "StreamSampler":
        return StreamSampler(self.videos, self.views, world, rank, workers, batch,
                             self.train if shuffle is None else shuffle, self.seed if seed is None else seed)

    def _source(self, video_index: int):
        number = self.shard_of[video_index]
        with self.lock:
            kept = self.fetched.get(number)
            if kept is None or isinstance(kept, tuple) and time.monotonic() - kept[1] > self.RETRY_S:
                self.fetched[number] = kept = self._fetch(self.videos.shards[number])
                self.fetched.move_to_end(number)
                while len(self.fetched) > self.KEPT_SHARDS:
                    self.fetched.popitem(last=False)
        name, _ = self.videos.items[video_index]
        if isinstance(kept, tuple):
            raise VideoDecodeError(name, f"in a damaged shard ({kept[0]})", said=True)
        sample = kept.get(f"{video_index:08d}", {})
        if "mp4" not in sample or "index.npz" not in sample:
            raise VideoDecodeError(name, "its video or frame index is missing from the shard")
        index = FrameIndex.from_arrays(np.load(io.BytesIO(sample["index.npz"])))
        return VideoBytes(name, sample["mp4"]), index

    def _fetch(self, record: dict) -> dict | tuple[str, float]:
        """The shard's samples by key; or, when it cannot be fetched or is not the manifest's, (why, when) (said
        here once for all its samples)."""
        url = _joined(self.videos.url, record["name"])
        try:
            data = fetch(url)
            _checked(record, data)
            return _samples(data, url)
        except (FetchError, OSError, ValueError) as e:  # (tarfile's errors are OSErrors)
            why = str(e).removeprefix(f"{url}: ")
            log.warning("skipping damaged shard: %s: %s; its %d samples count as unreadable", url, why,
                        len(record["keys"]))
            return why, time.monotonic()


class StreamSampler(Sampler):
    """The sample keys of rank ``rank``'s loader over a shard set: its ``workers`` streams' planned shards
    (:func:`~videoml.data.shard_plan.deal`), each shard's samples in a random order of (seed, epoch), weightless
    repeats flagged as padding; handed to the loader in batches of ``batch`` keys, worker after worker, so that each
    of the loader's workers (which take batches in turn) reads its own stream. ``views`` keys a video (evaluation)."""

    def __init__(self, videos: ShardedList, views: int, world: int, rank: int, workers: int, batch: int,
                 shuffle: bool, seed: int = 0):
        self.videos, self.views, self.rank, self.shuffle, self.seed = videos, views, rank, shuffle, seed
        self.workers, self.batch = max(workers, 1), batch
        self.streams = world * self.workers
        self.counts = {s["name"]: len(s["keys"]) for s in videos.shards}
        self.keys = {s["name"]: [int(k) for k in s["keys"]] for s in videos.shards}
        self.epoch = 0
        self.multiple = batch // gcd(batch, views)  # samples a stream reads: a whole number of batches of views

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(shard.reads for shard in self._plan()[0]) * self.views * self.workers  # (streams are alike long)

    def _plan(self):
        plans = deal(self.counts, self.streams, self.epoch, self.seed, self.shuffle, self.multiple)
        first = stream_of(self.rank, 0, self.workers)
        return plans[first:first + self.workers]

    def _stream(self, plan) -> list[SampleKey]:
        keys = []
        for shard in plan:
            own = self.keys[shard.name][shard.start:shard.start + shard.weighted] or self.keys[shard.name]
            reads = [(i, False) for i in own[:shard.weighted]] + \
                    [(own[j % len(own)], True) for j in range(shard.padding)]
            if self.shuffle:
                rng = np.random.default_rng([self.seed, self.epoch, own[0]])  # (a run's first key names it)
                reads = [reads[i] for i in rng.permutation(len(reads))]
            keys += [SampleKey(i * self.views + view, self.epoch, pad) for i, pad in reads
                     for view in range(self.views)]
        return keys

    def __iter__(self):
        streams = [self._stream(plan) for plan in self._plan()]
        batches = [[s[at:at + self.batch] for at in range(0, len(s), self.batch)] for s in streams]
        return iter([key for turn in zip(*batches) for batch in turn for key in batch])
