"""An epoch over shards, planned: which shards each loader stream (a rank's decoding worker) reads, in which order,
and the weightless padding that gives every stream the same length.

A shard is read from start to end (one request per shard, whatever the storage), so shards, not samples, are dealt
out. The guarantees are :class:`~videoml.data.clips.ShardSampler`'s, kept over streams: with ``world`` ranks of
``workers`` streams each, every sample of the split is read exactly once per epoch as a weighted sample; every stream
yields the same number of samples (so every rank makes the same number of batches and DDP's ranks stay in step), the
shortest ones topped up with weightless repeats of their own samples (no extra download); the deal depends on
(seed, epoch) alone, so every rank plans the same epoch without talking to the others, and a resumed run plans it
again.

Pure functions of the manifest's numbers, like :mod:`videoml.data.sampling`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PlannedShard(NamedTuple):
    """A shard as a stream reads it, from its start: the first ``weighted`` samples count (weight 1), then
    ``padding`` more, going round the shard again where needed, are weightless repeats."""

    name: str
    weighted: int
    padding: int = 0

    @property
    def reads(self) -> int:
        return self.weighted + self.padding


def deal(counts: dict[str, int], streams: int, epoch: int, seed: int = 0, shuffle: bool = True, multiple: int = 1
         ) -> list[list[PlannedShard]]:
    """``counts`` (shard name -> samples) dealt to ``streams`` streams: shuffled by (seed, epoch) when ``shuffle``
    (else in name order), each shard in turn to the stream with the fewest samples so far (the lowest-numbered on a
    tie), then every stream padded to the longest's length (rounded up to a ``multiple``: whole batches) from its own
    shards. A stream left without a shard (more
    streams than shards) reads the first stream's shards, weightless."""
    names = sorted(counts)
    if shuffle:
        names = [names[i] for i in np.random.default_rng([seed, epoch]).permutation(len(names))]
    dealt: list[list[str]] = [[] for _ in range(streams)]
    totals = [0] * streams
    for name in names:
        stream = int(np.argmin(totals))
        dealt[stream].append(name)
        totals[stream] += counts[name]
    length = -(-max(totals) // multiple) * multiple
    plans = []
    for shards, total in zip(dealt, totals):
        own = [PlannedShard(n, counts[n]) for n in shards] or [PlannedShard(n, 0) for n in dealt[0]]
        plans.append(_padded(own, length - total, counts))
    return plans


def _padded(shards: list[PlannedShard], missing: int, counts: dict[str, int]) -> list[PlannedShard]:
    """``shards`` with ``missing`` weightless samples spread over them from the first on, at most a shard's size
    each time round."""
    shards, at = list(shards), 0
    while missing > 0:
        shard = shards[at % len(shards)]
        extra = min(missing, counts[shard.name])
        shards[at % len(shards)] = shard._replace(padding=shard.padding + extra)
        missing -= extra
        at += 1
    return shards


def stream_of(rank: int, worker: int, workers: int) -> int:
    """The number of rank ``rank``'s worker ``worker`` among all streams (ranks' workers side by side)."""
    return rank * workers + worker
