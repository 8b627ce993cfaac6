import os

import pytest
from helpers import LEARNABLE, SMALL

from videoml.data.corpus import corpus_dir
from videoml.data.synth import SynthConfig, generate

# The conformance corpus stays in the user's cache across runs (each test gets a private index cache, see below).
os.environ.setdefault("VIDEOML_CORPUS_DIR", str(corpus_dir()))


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """A small synthetic data set (all eight classes, H.264 with B-frames), shared by the session's tests."""
    return generate(SynthConfig(**SMALL), tmp_path_factory.mktemp("synth"), num_workers=2)


@pytest.fixture(scope="session")
def learnable(tmp_path_factory):
    """The learning tests' data set (helpers.LEARNABLE: 240 videos, two motions in both directions), made once."""
    return generate(SynthConfig(**LEARNABLE), tmp_path_factory.mktemp("learnable"), num_workers=2)


def _one_file_per_kind(kinds, tmp_path_factory) -> dict:
    from helpers import corpus_config

    files = {}
    for kind in kinds:
        dataset = generate(corpus_config(kind), tmp_path_factory.mktemp(kind))
        files[kind] = dataset.root / dataset.manifest()[0]["path"]
    return files


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """kind -> path of one file of that kind (see helpers.CORPUS)."""
    from helpers import CORPUS

    return _one_file_per_kind(CORPUS, tmp_path_factory)


@pytest.fixture(scope="session")
def traits(tmp_path_factory):
    """kind -> path of one file with that trait of real files (see helpers.TRAITS)."""
    from helpers import TRAITS

    return _one_file_per_kind(TRAITS, tmp_path_factory)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own index cache: no test reads another's entries or the user's."""
    monkeypatch.setenv("VIDEOML_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def checkpoint(small_synth, tmp_path_factory):
    """A `videoml fit` checkpoint (x3d_tiny, one quick epoch on the small set): real, if barely trained."""
    from helpers import fit_args, videoml

    root = tmp_path_factory.mktemp("fit")
    result = videoml("fit", *fit_args(small_synth, root, "--trainer.limit_train_batches", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "logs" / "version_0" / "checkpoints" / "last.ckpt"
