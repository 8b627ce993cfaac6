"""Batch inference: ``videoml infer``."""
