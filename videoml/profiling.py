"""PyTorch Profiler for ``videoml infer --profile``, ``videoml fit --profile`` and ``videoml bench ... --profile``.

A schedule keeps the trace small and free of start-up costs: ``skip_first`` steps are ignored, then ``wait`` steps
idle, ``warmup`` steps traced but discarded (the profiler's own start-up), and ``active`` steps recorded, once.
The trace is written as Chrome / TensorBoard JSON (open it in https://ui.perfetto.dev or TensorBoard's profiler
plugin) and the top operators are printed as a table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, schedule


@dataclass(frozen=True)
class ProfileSchedule:
    skip_first: int = 2
    wait: int = 1
    warmup: int = 1
    active: int = 5

    def make(self):
        return schedule(skip_first=self.skip_first, wait=self.wait, warmup=self.warmup, active=self.active, repeat=1)


def _activities(device_type: str) -> list[ProfilerActivity]:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device_type == "cuda" else [])


def _sort_key(device_type: str) -> str:
    return "self_cuda_time_total" if device_type == "cuda" else "self_cpu_time_total"


class Profile:
    """Profiles the steps of a loop: ``with Profile(folder, "cpu") as p: ... p.step()`` after each step."""

    def __init__(self, folder: str | os.PathLike, device_type: str = "cpu", steps: ProfileSchedule = ProfileSchedule(),
                 row_limit: int = 15):
        self.folder = Path(folder)
        self.device_type, self.row_limit = device_type, row_limit
        self.folder.mkdir(parents=True, exist_ok=True)
        self._profiler = profile(activities=_activities(device_type), schedule=steps.make(), record_shapes=True,
                                 on_trace_ready=self._write)
        self.trace: Path | None = None

    def _write(self, prof) -> None:
        self.trace = self.folder / f"trace.{os.getpid()}.json"
        prof.export_chrome_trace(str(self.trace))

    def __enter__(self):
        self._profiler.__enter__()
        return self

    def step(self) -> None:
        self._profiler.step()

    def __exit__(self, *exc):
        self._profiler.__exit__(*exc)
        if self.trace is None:
            print(f"profile: too few steps to record (schedule: {self._profiler.schedule})", file=sys.stderr)
            return False
        table = self._profiler.key_averages().table(sort_by=_sort_key(self.device_type), row_limit=self.row_limit)
        (self.folder / "operators.txt").write_text(table + "\n")
        print(table, file=sys.stderr)
        print(f"profile: trace in {self.trace}, table in {self.folder / 'operators.txt'}", file=sys.stderr)
        return False
