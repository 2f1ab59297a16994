"""Checkpoints: a whole training state in a pickle-free, digest-checked ``.npz``."""
import json

import numpy as np
import pytest

from scratchcnn import checkpoint as checkpoint_mod
from scratchcnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from scratchcnn.models import build_model
from scratchcnn.optim import OPTIMIZERS


def trained(model, optimizer_name, rng):
    """A network and optimizer after two steps, so the optimizer has state."""
    network = build_model(model, seed=1)
    optimizer = OPTIMIZERS[optimizer_name](0.01)
    x = rng.uniform(-0.5, 0.5, (8, 28, 28)).astype(np.float32)
    for _ in range(2):
        network.train_step(x, rng.integers(0, 10, 8), optimizer)
    return network, optimizer


@pytest.mark.parametrize("model, optimizer_name", [("seed", "momentum"), ("classic", "adam"),
                                                   ("mlp", "sgd")])
def test_round_trip(model, optimizer_name, rng, tmp_path):
    network, optimizer = trained(model, optimizer_name, rng)
    path = tmp_path / "c.npz"
    save_checkpoint(path, network, optimizer, model=model, epoch=2, metrics={"test_accuracy": 0.9})
    with np.load(path, allow_pickle=False) as archive:  # no pickle anywhere
        assert "meta" in archive.files and json.loads(str(archive["meta"]))["model"] == model
    loaded = load_checkpoint(path)
    assert loaded.meta["epoch"] == 2 and loaded.meta["metrics"] == {"test_accuracy": 0.9}
    x = rng.uniform(-0.5, 0.5, (4, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(loaded.network.predict_proba(x), network.predict_proba(x))
    restored = loaded.make_optimizer()
    assert type(restored) is type(optimizer) and restored.hyperparameters() == optimizer.hyperparameters()
    state = optimizer.state_dict()
    assert restored.state_dict().keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(restored.state_dict()[key], state[key])


def test_interrupted_save_keeps_the_previous_file(rng, tmp_path, monkeypatch):
    network, optimizer = trained("seed", "sgd", rng)
    path = tmp_path / "c.npz"
    save_checkpoint(path, network, optimizer, epoch=1)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_mod.np, "savez", fail)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, network, optimizer, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_checkpoint_from_the_trainer_has_what_tools_need(tmp_path, monkeypatch):
    from scratchcnn import train
    from test_train import fake_mnist

    monkeypatch.setattr(train, "load_mnist", lambda data_dir=None: fake_mnist())
    path = tmp_path / "c.npz"
    assert train.main(["--quiet", "--train-size", "128", "--test-size", "64", "--epochs", "1",
                       "--save", str(path)]) == 0
    meta = load_checkpoint(path).meta
    assert meta["model"] == "seed" and meta["epoch"] == 1
    assert meta["hyperparameters"]["batch_size"] == 32 and meta["hyperparameters"]["lr"] == 0.03
    assert meta["metrics"]["epochs"][0]["train_loss"] > 0
    assert meta["trainer"]["shuffle_rng_state"]["bit_generator"] == "PCG64"


def test_a_different_file_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array(json.dumps({"format": "something-else"})), digest=np.array("x"))
    with pytest.raises(CheckpointError, match="not a scratchcnn checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"PK\x03\x04" + b"\x00" * 40])
def test_a_file_that_is_not_an_npz_gets_advice_without_pickle(tmp_path, content):
    """NumPy's own message for such files suggests allow_pickle=True, which we must never pass on."""
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "not a complete .npz archive" in message and "--save" in message
    assert "pickle" not in message
