"""A seedable mutator of files (videos, weights): what storage, transfers and careless tools do to them; and the fuzz
campaign's settings: VIDEOML_FUZZ_SEED and VIDEOML_FUZZ_CASES (defaults: 0 and 240) change it."""

from __future__ import annotations

import os

import numpy as np

SEED = int(os.environ.get("VIDEOML_FUZZ_SEED", "0"))
CASES = int(os.environ.get("VIDEOML_FUZZ_CASES", "240"))

EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".ts", ".mpg", ".ogv")


def _truncate(data: bytearray, rng) -> str:
    keep = int(rng.integers(1, len(data)))
    del data[keep:]
    return f"truncated at {keep}"


def _bit_flips(data: bytearray, rng) -> str:
    positions = rng.integers(0, len(data), size=int(rng.integers(1, 64)))
    for p in positions:
        data[p] ^= 1 << int(rng.integers(0, 8))
    return f"{len(positions)} bit flips"


def _zero_range(data: bytearray, rng) -> str:
    start = int(rng.integers(0, len(data)))
    size = int(rng.integers(1, max(len(data) // 8, 2)))
    data[start:start + size] = bytes(len(data[start:start + size]))
    return f"zeroed {size} bytes at {start}"


def _swap_chunks(data: bytearray, rng) -> str:
    size = int(rng.integers(16, max(len(data) // 10, 17)))
    a, b = sorted(int(x) for x in rng.integers(0, max(len(data) - size, 1), size=2))
    if b - a >= size:
        data[a:a + size], data[b:b + size] = data[b:b + size], data[a:a + size]
    return f"swapped {size} bytes at {a} and {b}"


def _garbage_head(data: bytearray, rng) -> str:
    size = int(rng.integers(1, 512))
    data[:size] = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
    return f"{size} random bytes over the head"


MUTATIONS = {"truncate": _truncate, "bit_flips": _bit_flips, "zero_range": _zero_range,
             "swap_chunks": _swap_chunks, "garbage_head": _garbage_head}


def mutate(data: bytes, seed: int) -> tuple[bytes, str, str]:
    """(mutated bytes, what was done, file extension): one to three mutations, and sometimes a wrong extension."""
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    done = [MUTATIONS[name](out, rng) for name in rng.choice(list(MUTATIONS), size=int(rng.integers(1, 4)))]
    extension = str(rng.choice(EXTENSIONS)) if rng.random() < 0.3 else ""
    return bytes(out), "; ".join(done), extension
