import pytest
from helpers import SMALL

from videoml.data.synth import SynthConfig, generate


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """A small synthetic data set (all classes, H.264 with B-frames), shared by the session's tests."""
    return generate(SynthConfig(**SMALL), tmp_path_factory.mktemp("synth"), num_workers=2)
