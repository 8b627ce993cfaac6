import pytest
import torch
from helpers import BACKEND_PARAMS

from videoml.data.clips import ClipData, ClipDataset, ClipOptions, SampleKey, ShardSampler, flatten_repeats
from videoml.data.datasets import VideoList, labeled_paths
from videoml.errors import VideomlError
from videoml.models.registry import model_input


def _train(small_synth) -> dict:
    return {"train": {"kind": "labeled_paths", "path": str(small_synth.split_file("train"))}}


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (7, 2), (1, 4)])
def test_shards_count_every_sample_exactly_once_across_ranks(n, world):
    for epoch in (0, 5):
        real, shard_lengths = [], set()
        for rank in range(world):
            sampler = ShardSampler(Sized(n), num_replicas=world, rank=rank, shuffle=True, seed=3)
            sampler.set_epoch(epoch)
            values = list(sampler)
            shard_lengths.add(len(values))
            for index, e, padding in values:
                assert e == epoch
                if not padding:
                    real.append(index)
        assert sorted(real) == list(range(n))
        assert len(shard_lengths) == 1  # equal shards: DDP steps stay in lockstep


def test_order_changes_with_the_epoch_and_repeats_with_the_seed():
    def order(epoch, seed):
        sampler = ShardSampler(Sized(50), num_replicas=1, rank=0, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [key.index for key in sampler]

    assert order(0, 1) == order(0, 1) and order(0, 1) != order(1, 1) and order(0, 1) != order(0, 2)


def test_training_samples_depend_only_on_seed_epoch_and_index(small_synth):
    videos = labeled_paths(small_synth.split_file("train"))
    spec = model_input("x3d_tiny")
    dataset = ClipDataset(videos, spec, train=True)
    again = ClipDataset(videos, spec, train=True)
    a, b = dataset[SampleKey(3, epoch=0)], again[SampleKey(3, epoch=0)]
    assert a.video.shape == (3, spec.frames, 64, 64) and a.video.dtype == torch.uint8
    assert torch.equal(a.video, b.video) and a.label == videos.items[3][1] and a.weight == 1.0
    assert torch.equal(dataset[3].video, a.video)  # a plain index is that sample in epoch 0
    later = dataset[SampleKey(3, epoch=1)]  # same video, next epoch: another clip or crop
    assert not torch.equal(a.video, later.video)
    padded = dataset[SampleKey(3, epoch=0, padding=True)]
    assert padded.weight == 0.0 and torch.equal(padded.video, a.video)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_repeated_sampling_gives_every_video_repeat_pair_once_per_epoch_across_ranks(small_synth, world):
    data = ClipData(model_input("x3d_tiny"), _train(small_synth), ClipOptions(batch_size=6, clips_per_video=3))
    dataset = data.dataset("train")
    seen = []
    for rank in range(world):
        sampler = ShardSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(4)
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=flatten_repeats)
        for batch in loader:
            assert batch.video.shape[0] == batch.label.shape[0] <= 6
            seen += [(int(v), int(r)) for v, r, w in zip(batch.video_index, batch.repeat, batch.weight) if w]
    assert sorted(seen) == [(v, r) for v in range(len(dataset)) for r in range(3)]


def test_repeated_clips_are_drawn_and_augmented_independently_from_one_decode(small_synth, monkeypatch):
    videos = labeled_paths(small_synth.split_file("train"))
    spec = model_input("x3d_tiny").replace(train_scale=(64, 96))
    single, repeated = (ClipDataset(videos, spec, ClipOptions(clips_per_video=k, flip=True), train=True) for k in (1, 4))
    from videoml.data.decoding.pyav_reader import PyAVReader

    calls = []
    decode = PyAVReader.get_frames
    monkeypatch.setattr(PyAVReader, "get_frames", lambda self, *a, **k: calls.append(1) or decode(self, *a, **k))
    item = repeated[SampleKey(5, 2)]
    assert len(calls) == 1  # one decode for the four clips
    assert item.video.shape == (4, 3, spec.frames, 64, 64) and item.repeat.tolist() == [0, 1, 2, 3]
    assert len({clip.numpy().tobytes() for clip in item.video}) == 4
    assert (item.video_index == 5).all() and (item.weight == 1).all()
    first = single[SampleKey(5, 2)]  # repeat 0 draws what a single clip draws
    rng = single.sample_rng(2, 5)
    assert first.label == item.label[0]
    difference = (first.video.float() - item.video[0].float()).abs().mean()
    assert difference < 3, difference  # the same clip; scaled from a larger decode unless its size was the largest
    assert rng.integers(0, 100) == repeated.sample_rng(2, 5, 0).integers(0, 100)


@pytest.mark.parametrize("megabytes", [64, 1])  # all videos kept; or one at a time, the others evicted
def test_decoded_videos_kept_in_memory_give_the_same_clips_without_reopening_files(small_synth, monkeypatch,
                                                                                   megabytes):
    import videoml.data.clips as clips

    videos = labeled_paths(small_synth.split_file("train"))
    spec = model_input("x3d_tiny")
    plain = ClipDataset(videos, spec, ClipOptions(clips_per_video=2, flip=True), train=True)
    cached = ClipDataset(videos, spec, ClipOptions(clips_per_video=2, flip=True, decoded_cache_mb=megabytes), train=True)
    opened = []
    original = clips.open_video
    monkeypatch.setattr(clips, "open_video", lambda *a, **k: opened.append(a[0]) or original(*a, **k))
    n = len(videos)
    for epoch in range(3):
        for i in range(n):
            a, b = plain[SampleKey(i, epoch)], cached[SampleKey(i, epoch)]
            assert torch.equal(a.video, b.video) and torch.equal(a.label, b.label)
    reopened = len(opened) - 3 * n - n  # the plain data set opens every video every epoch; the cache once each
    assert reopened == (0 if megabytes == 64 else 2 * n)
    assert cached.cache.bytes <= megabytes * 2**20


def test_batch_size_must_hold_whole_videos(small_synth):
    with pytest.raises(VideomlError, match="multiple of data.clips_per_video"):
        ClipOptions(batch_size=6, clips_per_video=4)


def test_mirrored_and_reversed_clips_take_the_mapped_labels(small_synth):
    videos = labeled_paths(small_synth.split_file("train"))
    spec = model_input("x3d_tiny")
    plain = ClipDataset(videos, spec, train=True)
    swaps = {"move_left": "move_right", "move_right": "move_left"}  # as mirror images and played backwards
    augmented = ClipDataset(videos, spec, ClipOptions(flip=True, flip_label_map=swaps, reverse_label_map=swaps),
                            train=True)
    index = next(i for i, (_, label) in enumerate(videos.items) if label == 0)
    seen = set()
    for epoch in range(16):
        value = SampleKey(index, epoch)
        clip, sample = plain[value].video, augmented[value]  # the same clip and crop, then flips
        outcomes = {"none": (clip, 0), "mirrored": (clip.flip(-1), 1), "reversed": (clip.flip(1), 1),
                    "both": (clip.flip(-1).flip(1), 0)}
        match = [k for k, (frames, label) in outcomes.items()
                 if torch.equal(sample.video, frames) and sample.label == label]
        assert match, epoch
        seen.add(match[0])
    assert seen == {"none", "mirrored", "reversed", "both"}


def test_label_maps_name_known_classes(small_synth):
    with pytest.raises(VideomlError, match=r"data.flip_label_map: unknown classes \['move_sideways'\] \(known: move_left, "):
        ClipData(model_input("x3d_tiny"), _train(small_synth),
                 ClipOptions(flip=True, flip_label_map={"move_left": "move_sideways"}))


def test_evaluation_samples_are_video_view_pairs_with_all_crops(small_synth):
    videos = labeled_paths(small_synth.split_file("val"))
    dataset = ClipDataset(videos, model_input("x3d_tiny"), ClipOptions(views=3, crops=3), train=False)
    assert len(dataset) == 8 * 3
    sample = dataset[3 * 4 + 2]  # video 4, view 2
    assert (sample.video_index, sample.view) == (4, 2)
    assert sample.video.shape == (3, 3, 4, 64, 64)  # 3 crops of x3d_tiny's 4x64x64 clips


def test_slowfast_pathways_are_made_in_the_data_path(small_synth):
    videos = labeled_paths(small_synth.split_file("val"))
    spec = model_input("slowfast_r50").replace(frames=8, stride=1, crop=32, train_scale=(40, 48), eval_scale=40)
    slow, fast = ClipDataset(videos, spec, train=True)[0].video
    assert slow.shape == (3, 2, 32, 32) and fast.shape == (3, 8, 32, 32)
    assert torch.equal(slow, fast[:, [0, 7]])


def test_an_unreadable_video_gives_a_weightless_placeholder(small_synth, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    videos = VideoList(((broken, 2),), ("a", "b", "c"))
    sample = ClipDataset(videos, model_input("x3d_tiny"), train=True)[0]
    assert sample.bad and sample.weight == 0.0 and sample.video.shape == (3, 4, 64, 64)


def test_clip_data_reads_its_sources_and_classes_and_loads_batches(small_synth):
    data = ClipData(model_input("x3d_tiny", {"frames": 4}), {**_train(small_synth), "val": {
        "kind": "labeled_paths", "path": str(small_synth.split_file("val"))}, "test": None},
                    ClipOptions(batch_size=4, num_workers=0))
    assert set(data.sources) == {"train", "val"} and len(data.classes) == 8 and data.classes[0] == "move_left"
    batch = next(iter(data.loader("train")))
    assert batch.video.shape == (4, 3, 4, 64, 64) and batch.weight.tolist() == [1.0] * 4
    shards = [[int(i) for b in data.loader("val", world=3, rank=r) for i, w in zip(b.video_index, b.weight) if w]
              for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(len(data.sources["val"])))  # every video once across 3 ranks


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_every_backend_reads_every_training_sample(small_synth, backend):
    clips = ClipData(model_input("x3d_tiny"), _train(small_synth), ClipOptions(backend=backend)).dataset("train")
    samples = [clips[SampleKey(i, epoch)] for epoch in range(2) for i in range(len(clips))]
    assert len(samples) == 2 * len(clips) and not any(s.bad for s in samples)
    assert all(s.video.shape == samples[0].video.shape for s in samples)


def test_a_backend_that_is_not_installed_is_refused_with_the_options(monkeypatch):
    import videoml.data.decoding as decoding

    monkeypatch.setitem(decoding.BACKENDS, "decord", ("videoml.no_such_module", "DecordReader"))
    with pytest.raises(VideomlError, match=r"decord backend is not available here .*pip install 'videoml\[decord\]'"):
        ClipOptions(backend="decord")
