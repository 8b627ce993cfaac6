"""Clips read from shards (``data.<split>: {kind: shards, url: ...}``): the same clips as from the prepared files,
every sample once per epoch across ranks x workers, each worker reading its own shards once, from a folder, a
loopback HTTP server and a loopback S3 server; damaged shards and samples counted and named."""

import collections
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import damaged_shards
from torch.utils.data import BatchSampler

import videoml.data.shard_reading as shard_reading
from videoml.data.shard_reading import ShardClipDataset
from videoml.data.clips import ClipData, ClipDataset, ClipOptions, SampleKey
from videoml.data.datasets import labeled_paths, load_source
from videoml.errors import VideomlError
from videoml.models.registry import model_input

pytestmark = pytest.mark.slow


def _data(url, split="train", **options) -> ClipData:
    return ClipData(model_input("x3d_tiny"), {split: {"kind": "shards", "url": str(url), "split": split}},
                    ClipOptions(**options))


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_sample_from_a_shard_is_the_prepared_files_clip_frame_for_frame(small_prepared, small_shards, split):
    options = ClipOptions(views=2, crops=3, clips_per_video=2, batch_size=2)
    files = ClipDataset(labeled_paths(small_prepared / f"{split}.csv"), model_input("x3d_tiny"), options,
                        train=split == "train")
    shards = _data(small_shards, split, **vars(options)).dataset(split)
    assert len(shards) == len(files) and shards.videos.classes == files.videos.classes
    for index in range(len(files)):
        key = SampleKey(index, epoch=3)
        a, b = files[key], shards[key]
        assert torch.equal(a.video, b.video) and torch.equal(torch.as_tensor(a.label), torch.as_tensor(b.label))
        assert not bool(torch.as_tensor(b.bad).any())


@pytest.mark.parametrize("world, workers, clips_per_video", [(1, 0, 1), (2, 2, 2), (3, 2, 1)])
def test_every_video_and_repeat_once_per_epoch_each_worker_reading_its_own_shards(small_shards, world, workers,
                                                                                  clips_per_video):
    data = _data(small_shards, batch_size=2 * clips_per_video, clips_per_video=clips_per_video)
    dataset = data.dataset("train")
    shard_of, batch = dataset.videos.shard_of(), 2
    for epoch in (0, 1):
        weighted, lengths = [], set()
        for rank in range(world):
            sampler = dataset.sampler(world, rank, workers, batch)
            sampler.set_epoch(epoch)
            batches = list(BatchSampler(sampler, batch, drop_last=False))
            lengths.add(len(batches))
            streams = collections.defaultdict(set)  # a loader's worker w takes batches w, w + W, ...
            for n, keys in enumerate(batches):
                streams[n % max(workers, 1)].update(shard_of[k.index] for k in keys)
                weighted += [k.index for k in keys if not k.padding]
                assert all(k.epoch == epoch for k in keys)
            if len(dataset) >= world * max(workers, 1):  # (else the idle streams read repeats of a shard)
                assert sum(map(len, streams.values())) <= len(dataset.videos.shards) + len(streams) - 1
        assert sorted(weighted) == list(range(len(dataset)))  # each sample once; padding weightless
        assert len(lengths) == 1  # every rank makes the same number of steps
    orders = []
    for epoch in (0, 1, 0):
        sampler = dataset.sampler(world, 0, workers, batch)
        sampler.set_epoch(epoch)
        orders.append([k.index for k in sampler])
    assert orders[0] == orders[2] != orders[1]  # shuffled by (seed, epoch), planned again alike on a resumed run


def test_each_shard_is_fetched_once_per_epoch_by_one_worker(small_shards, monkeypatch):
    fetched = collections.Counter()
    fetch = shard_reading.fetch
    monkeypatch.setattr(shard_reading, "fetch", lambda url: fetched.update([url]) or fetch(url))
    data = _data(small_shards, batch_size=3, num_workers=0)
    manifest = json.loads((small_shards / "manifest.json").read_text())
    for batch in data.loader("train"):
        assert (batch.weight == 1).all() or (batch.weight == 0).any()
    shards = {f"{small_shards}/{s['name']}" for s in manifest["splits"]["train"]["shards"]}
    assert {url for url in fetched if url.endswith(".tar")} == shards and set(fetched.values()) == {1}


def test_http_and_s3_give_the_samples_a_folder_gives(small_shards, http_shards, s3_shards):
    here = _data(small_shards, "val").dataset("val")
    for url in (http_shards, s3_shards):
        there = _data(url, "val").dataset("val")
        assert [label for _, label in there.videos.items] == [label for _, label in here.videos.items]
        assert there.videos.items[0][0] == f"{url}/{here.videos.shards[0]['name']}:00000000"
        for index in (0, len(here) - 1):
            assert torch.equal(there[index].video, here[index].video)
    scored = []  # decoding workers (forked after this process made its S3 client) fetch with their own
    for batch in _data(s3_shards, "val", num_workers=2, batch_size=2).loader("val"):
        assert not batch.bad.any()
        scored += [int(v) for v, w in zip(batch.video_index, batch.weight) if w]
    assert sorted(scored) == list(range(len(here)))


def test_a_set_that_is_not_there_or_not_allowed_is_one_line(small_shards, http_shards, s3_shards, tmp_path):
    cases = {str(tmp_path / "none"): f"{tmp_path / 'none'}/manifest.json: No such file or directory",
             f"{http_shards}/none": f"{http_shards}/none/manifest.json: HTTP 404 File not found",
             "s3://videos/none": "s3://videos/none/manifest.json: NoSuchKey (The specified key does not exist.)"}
    for url, why in cases.items():
        with pytest.raises(VideomlError) as raised:
            load_source("shards", url=url)
        assert str(raised.value) == f"{why}; is {url} a shard set (videoml data shard)?"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")  # (no credentials anywhere: not even an instance's role)
    anonymous = subprocess.run([sys.executable, "-c", "from videoml.data.datasets import load_source; "
                                f"load_source('shards', url='{s3_shards}')"], env=env, capture_output=True, text=True)
    assert anonymous.stderr.strip().splitlines()[-1] == (
        f"videoml.errors.VideomlError: {s3_shards}/manifest.json: no AWS credentials (set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
    with pytest.raises(VideomlError, match=r"no split 'train2' \(it has train, val, test\)"):
        load_source("shards", url=str(small_shards), split="train2")


def _bad_samples(loader, epoch: int) -> list[int]:
    loader.sampler.set_epoch(epoch)
    bad = []
    for batch in loader:
        bad += [int(v) for v, b, w in zip(batch.video_index, batch.bad, batch.weight) if b]
        assert all(w == 0 for b, w in zip(batch.bad, batch.weight) if b)
    return bad


def test_damaged_shards_and_samples_are_named_once_and_their_samples_counted(small_shards, tmp_path, caplog,
                                                                             monkeypatch):
    url, whole, bad_key = damaged_shards(small_shards, tmp_path / "damaged")
    loader = _data(url, batch_size=2, num_workers=0).loader("train")
    with caplog.at_level(logging.WARNING, logger="videoml.data"):
        bad = _bad_samples(loader, 0)
    expected = sorted(int(k) for keys in whole.values() for k in keys) + [int(bad_key)]
    assert sorted(set(bad)) == sorted(expected)
    lines = [r.getMessage() for r in caplog.records]
    for name, why in zip(whole, ("bytes, the manifest says", "No such file or directory", "SHA-256 differs")):
        said = [line for line in lines if f"{url}/{name}" in line]
        assert len(said) == 1 and why in said[0] and f"its {len(whole[name])} samples count as unreadable" in said[0]
    assert sum(f"{bad_key}" in line for line in lines) == 1  # the sample in an intact shard, by shard and key

    missing = list(whole)[1]
    shutil.copy(small_shards / missing, url / missing)  # back: fetched again later (a failure may pass)
    monkeypatch.setattr(ShardClipDataset, "RETRY_S", 0.0)
    assert sorted(set(_bad_samples(loader, 1))) == sorted(set(expected) - {int(k) for k in whole[missing]})
