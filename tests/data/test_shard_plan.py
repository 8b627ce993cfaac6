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
@pytest.mark.parametrize("multiple", [1, 4])
def test_every_sample_counts_once_and_every_stream_reads_as_many(sizes, streams, epoch, multiple):
    counts = {f"train/{i:04d}.tar": n for i, n in enumerate(sizes)}
    plans = deal(counts, streams, epoch, seed=3, multiple=multiple)
    assert len(plans) == streams
    weighted = {name: [] for name in counts}
    for plan in plans:
        assert len({s.name for s in plan}) == len(plan)  # a shard fetched once by a stream
        for shard in plan:
            weighted[shard.name] += range(shard.start, shard.start + shard.weighted)
            assert 0 <= shard.start and shard.start + shard.weighted <= counts[shard.name]
        assert sum(s.weighted < counts[s.name] for s in plan) <= 2 or not any(s.weighted for s in plan)  # cut at the ends
    assert {name: sorted(w) for name, w in weighted.items()} == {n: list(range(c)) for n, c in counts.items()}
    own = [sum(s.weighted for s in plan) for plan in plans]
    assert max(own) - min(own) <= 1  # even to one sample: almost nothing decoded for nothing
    lengths = {sum(s.reads for s in plan) for plan in plans}
    assert lengths == {-(-max(own) // multiple) * multiple}  # all as long as the longest, in whole batches
    fetches = sum(len(plan) for plan in plans if any(s.weighted for s in plan))
    assert fetches <= len(counts) + streams - 1  # a shard cut between two streams is fetched by both


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
