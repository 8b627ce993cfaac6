"""Benchmarks: the timing core, the suite (one worker process per framework), the decode, model and inference
benchmarks, ceilings, diagnosis and reports."""

__all__ = ["ceilings", "common", "decode", "diagnose", "infer", "measure", "model", "report", "suite", "train_clips", "worker"]
