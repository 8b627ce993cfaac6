"""Model registry (build and list) and weights (checkpoints, model cards)."""

__all__ = ["registry", "weights"]
