"""``videoml fit --profile``: Lightning's profiler with :mod:`videoml.profiling`'s schedule (that module stays free of
Lightning, so inference and the benchmarks import it without Lightning)."""

from __future__ import annotations

from lightning.pytorch.profilers import PyTorchProfiler

from videoml.profiling import ProfileSchedule


class TrainingProfiler(PyTorchProfiler):
    """Lightning's PyTorchProfiler with a :class:`~videoml.profiling.ProfileSchedule` given as plain numbers (so a
    YAML config or ``videoml fit --profile`` can set it), writing the Chrome trace and the operator table to
    ``dirpath``."""

    def __init__(self, dirpath: str | None = None, skip_first: int = 2, wait: int = 1, warmup: int = 1,
                 active: int = 5, row_limit: int = 15):
        steps = ProfileSchedule(skip_first, wait, warmup, active)
        super().__init__(dirpath=dirpath, filename="profile", export_to_chrome=True, row_limit=row_limit,
                         schedule=steps.make(), record_shapes=True)
