"""Model registry and weights loading."""
