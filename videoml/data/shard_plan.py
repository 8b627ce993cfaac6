"""An epoch over shards, planned: which samples of which shards each loader stream (a rank's decoding worker)
reads, in which order, and the weightless padding that gives every stream the same length.

The shards, shuffled by (seed, epoch), are read as one sequence of samples cut into as many contiguous runs as there
are streams, their lengths differing by one sample at most: a stream reads whole shards, but for at most one at
each end of its run, which the neighbouring stream reads the rest of (each fetches it: one more request a stream
an epoch, at most). Dealing whole shards instead would leave streams uneven by up to a shard, to be made up with
weightless repeats, decoded for nothing (a third of an epoch with 3 shards over 2 streams).

The guarantees are :class:`~videoml.data.clips.ShardSampler`'s, kept over streams: with ``world`` ranks of
``workers`` streams each, every sample of the split is read exactly once per epoch as a weighted sample; every stream
yields the same number of samples (so every rank makes the same number of batches and DDP's ranks stay in step),
the shorter ones topped up with weightless repeats of their own samples (no extra request); the plan depends on
(seed, epoch) alone, so every rank plans the same epoch without talking to the others, and a resumed run plans it
again.

Pure functions of the manifest's numbers, like :mod:`videoml.data.sampling`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PlannedShard(NamedTuple):
    """A shard as a stream reads it: its samples ``start`` to ``start + weighted`` count (weight 1), then
    ``padding`` more, going round them again where needed (round the whole shard when none counts here), are
    weightless repeats."""

    name: str
    weighted: int
    padding: int = 0
    start: int = 0

    @property
    def reads(self) -> int:
        return self.weighted + self.padding


def deal(counts: dict[str, int], streams: int, epoch: int, seed: int = 0, shuffle: bool = True, multiple: int = 1
         ) -> list[list[PlannedShard]]:
    """``counts`` (shard name -> samples) cut into ``streams`` runs: shards shuffled by (seed, epoch) when
    ``shuffle`` (else in name order), their samples in that order cut into runs of equal length (to within one),
    then every stream padded to the longest's length rounded up to a ``multiple`` (whole batches). A stream left
    without a sample (more streams than samples) reads the first shard, weightless."""
    names = sorted(counts)
    if shuffle:
        names = [names[i] for i in np.random.default_rng([seed, epoch]).permutation(len(names))]
    share, extra = divmod(sum(counts.values()), streams)
    length = -(-(share + (extra > 0)) // multiple) * multiple
    plans, shard, offset = [], 0, 0  # where the next run starts: a shard (in ``names``) and a sample in it
    for stream in range(streams):
        run, wanted = [], share + (stream < extra)
        while wanted:
            taken = min(wanted, counts[names[shard]] - offset)
            run.append(PlannedShard(names[shard], taken, start=offset))
            wanted, offset = wanted - taken, offset + taken
            if offset == counts[names[shard]]:
                shard, offset = shard + 1, 0
        own = sum(s.weighted for s in run)
        plans.append(_padded(run or [PlannedShard(names[0], 0)], length - own, counts))
    return plans


def _padded(shards: list[PlannedShard], missing: int, counts: dict[str, int]) -> list[PlannedShard]:
    """``shards`` with ``missing`` weightless samples spread over them from the first on, at most a shard's share
    each time round."""
    shards, at = list(shards), 0
    while missing > 0:
        shard = shards[at % len(shards)]
        extra = min(missing, shard.weighted or counts[shard.name])
        shards[at % len(shards)] = shard._replace(padding=shard.padding + extra)
        missing -= extra
        at += 1
    return shards


def stream_of(rank: int, worker: int, workers: int) -> int:
    """The number of rank ``rank``'s worker ``worker`` among all streams (ranks' workers side by side)."""
    return rank * workers + worker
