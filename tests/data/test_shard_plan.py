"""An epoch over shards: every sample weighted exactly once across ranks x workers, every stream the same length,
the deal a function of (seed, epoch) alone."""

import itertools

import pytest

from videoml.data.shard_plan import deal, stream_of

CASES = [  # shard sizes, streams (ranks x workers)
    ([50, 50, 50, 50], 4),
    ([7, 13, 2, 31, 5, 8, 21, 1], 3),
    ([100, 3, 3, 3, 3], 2),
    ([4, 4, 4], 8),  # more streams than shards: the idle ones read weightless repeats
    ([9], 1),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 6),
]


@pytest.mark.parametrize("sizes, streams", CASES)
@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_every_sample_counts_once_and_every_stream_reads_as_many(sizes, streams, epoch):
    counts = {f"train/{i:04d}.tar": n for i, n in enumerate(sizes)}
    plans = deal(counts, streams, epoch, seed=3)
    assert len(plans) == streams
    weighted = {}
    for plan in plans:
        for shard in plan:
            weighted[shard.name] = weighted.get(shard.name, 0) + shard.weighted
            assert shard.weighted in (0, counts[shard.name])  # a shard counts whole, in one stream
    assert weighted == counts  # each sample weighted exactly once in the epoch
    lengths = {sum(s.reads for s in plan) for plan in plans}
    assert lengths == {max(sum(s.weighted for s in plan) for plan in plans)}  # all as long as the longest
    own = [sum(s.weighted for s in plan) for plan in plans]
    assert max(own) - min(own) <= max(sizes)  # dealt evenly (to within a shard)


def test_the_deal_is_the_same_on_every_rank_and_changes_with_the_epoch_and_seed():
    counts = {f"{i:04d}.tar": 10 + i for i in range(40)}
    assert deal(counts, 8, 2, seed=1) == deal(dict(reversed(counts.items())), 8, 2, seed=1)
    orders = {tuple(s.name for plan in deal(counts, 8, epoch, seed) for s in plan)
              for epoch, seed in itertools.product(range(3), range(2))}
    assert len(orders) == 6
    unshuffled = deal(counts, 1, 5, shuffle=False)
    assert [s.name for s in unshuffled[0]] == sorted(counts) and not any(s.padding for s in unshuffled[0])


def test_streams_are_numbered_rank_by_rank():
    assert [stream_of(r, w, 3) for r in range(2) for w in range(3)] == list(range(6))
