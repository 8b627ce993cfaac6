"""Training with Lightning: the LightningModule, callbacks and the LightningCLI wiring."""
