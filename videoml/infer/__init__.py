"""Batch inference: ``videoml infer``."""

__all__ = ["clips", "predictor", "results", "run"]
