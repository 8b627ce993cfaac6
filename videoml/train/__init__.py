"""Training with Lightning: the LightningModule, callbacks and the LightningCLI wiring."""

__all__ = ["callbacks", "cli", "module"]
