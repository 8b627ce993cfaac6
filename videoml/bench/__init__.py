"""Benchmarks: the timing core, the suite (one worker process per framework) and its presets (decode, model,
infer), the video sets, ceilings, diagnosis and reports."""

__all__ = ["ceilings", "diagnose", "inference", "measure", "model", "presets", "reading", "records", "report", "suite",
           "tf_model", "videos", "worker"]
