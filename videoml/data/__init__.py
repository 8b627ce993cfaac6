"""Video data: decoding, clip sampling, data sets and loaders, synthetic and prepared data, checks."""

__all__ = ["check", "clips", "conformance", "corpus", "datamodule", "datasets", "decoding", "encode", "files", "frame_cache", "outdir", "prepare", "sampling", "synth", "transforms"]
