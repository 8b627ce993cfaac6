"""Video data: decoding, clip sampling, data sets and loaders, synthetic and prepared data, checks."""

__all__ = ["check", "conformance", "corpus", "datamodule", "datasets", "decoding", "encode", "files", "frame_cache", "lru", "outdir", "prepare", "sampling", "synth", "transforms"]
