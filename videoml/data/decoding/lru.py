"""A least-recently-used map bounded by the summed weight of its values, safe to share between threads (tf.data
loads samples in several). What a process keeps of the files it read: frame indices, decoded videos."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """Values by key, the least recently used leaving first once their weights sum over ``max_weight`` (the newest
    value always stays)."""

    def __init__(self, max_weight: int, weight: Callable[[V], int]):
        self.max_weight, self.weight, self.total = max_weight, weight, 0
        self.entries: OrderedDict[Hashable, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> V:
        """Keep ``value`` under ``key``; returns the value kept (one another thread put there first wins)."""
        with self.lock:
            if key in self.entries:
                return self.entries[key]
            self.entries[key] = value
            self.total += self.weight(value)
            while self.total > self.max_weight and len(self.entries) > 1:
                self.total -= self.weight(self.entries.popitem(last=False)[1])
        return value
