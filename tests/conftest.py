import os
import signal

# Parallel test workers (make test's TEST_WORKERS, pytest-xdist's -n) share the cores: each worker, and every process
# it starts, gets its share of threads, so the workers' thread pools do not spin against one another.
# A worker ignores SIGINT (its controller handles Ctrl-C), and the commands it starts would inherit that: they get
# Python's default, as from a terminal, so the tests of Ctrl-C see what a user's command does.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_name, _share)
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402  (after the thread settings, which torch reads when it loads)
from helpers import LEARNABLE, SMALL, videoml

from videoml.data.corpus import corpus_dir
from videoml.data.synth import SynthConfig, generate

# The conformance corpus stays in the user's cache across runs (each test gets a private index cache, see below).
os.environ.setdefault("VIDEOML_CORPUS_DIR", str(corpus_dir()))


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """A small synthetic data set (all eight classes, H.264 with B-frames), shared by the session's tests."""
    return generate(SynthConfig(**SMALL), tmp_path_factory.mktemp("synth"), num_workers=2)


@pytest.fixture(scope="session")
def small_prepared(small_synth, tmp_path_factory):
    """``small_synth`` prepared for training (``videoml data prepare``, short side 48)."""
    out = tmp_path_factory.mktemp("prepared") / "set"
    result = videoml("data", "prepare", str(small_synth.root), str(out), "--short-side", "48")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def small_shards(small_prepared, tmp_path_factory):
    """``small_prepared`` in shards of about 5 kB (``videoml data shard``): two samples each, four shards a split."""
    out = tmp_path_factory.mktemp("shards") / "set"
    result = videoml("data", "shard", str(small_prepared), str(out), "--max-mb", "0.005")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def http_shards(small_shards):
    """``small_shards`` served by an HTTP server on 127.0.0.1 (the benchmark's): the set's URL."""
    from videoml.bench.storage import serve

    with serve(small_shards) as (url, _):
        yield url


@pytest.fixture(scope="session")
def s3_shards(small_shards):
    """``small_shards`` uploaded to an S3-compatible server on 127.0.0.1 (moto's), which this process and the
    commands it starts reach through the environment (endpoint and credentials): the set's ``s3://`` URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "videoml-test-key",
           "AWS_SECRET_ACCESS_KEY": "videoml-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket="videos")
        for path in small_shards.rglob("*"):
            if path.is_file():
                client.upload_file(str(path), "videos", f"small/{path.relative_to(small_shards).as_posix()}")
        yield "s3://videos/small"
    server.stop()


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
