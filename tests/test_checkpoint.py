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


def test_checkpoint_from_the_trainer_has_what_tools_need(tmp_path, fake_data):
    from scratchcnn import train

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


# --- resuming: the optimizer comes back bound to the restored network ---------------------------

def train_steps(network, optimizer, steps, seed):
    """``steps`` training steps on random batches drawn from ``seed`` (the same for twins)."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        network.train_step(rng.uniform(-0.5, 0.5, (8, 28, 28)).astype(np.float32),
                           rng.integers(0, 10, 8), optimizer)


def parameters(network):
    return [p for layer in network.layers for p in layer.params.values()]


@pytest.mark.parametrize("model, optimizer_name", [("seed", "momentum"), ("mlp", "adam")])
def test_resuming_continues_exactly_where_training_stopped(model, optimizer_name, rng, tmp_path):
    """mlp has dropout: its generators come back too, or the masks (and weights) would differ."""
    network, optimizer = trained(model, optimizer_name, rng)
    save_checkpoint(tmp_path / "c.npz", network, optimizer)
    train_steps(network, optimizer, 3, seed=5)  # the uninterrupted run

    loaded = load_checkpoint(tmp_path / "c.npz")
    resumed = loaded.make_optimizer()
    assert resumed.parameters is not None  # already bound, to the restored network
    train_steps(loaded.network, resumed, 3, seed=5)
    for uninterrupted, restored in zip(parameters(network), parameters(loaded.network)):
        np.testing.assert_array_equal(restored, uninterrupted)
    with pytest.raises(ValueError, match="not the array this optimizer is bound to"):
        train_steps(network, resumed, 1, seed=5)  # the restored optimizer won't step another network


def rewrite(path, edit_meta=lambda meta: None, edit_arrays=lambda arrays: None):
    """Change a saved checkpoint's meta and arrays, with a digest that matches again."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files if key not in ("meta", "digest")}
        meta = json.loads(str(archive["meta"]))
    edit_meta(meta)
    edit_arrays(arrays)
    meta_json = json.dumps(meta)
    np.savez(path, meta=np.array(meta_json), digest=np.array(checkpoint_mod._digest(meta_json, arrays)),
             **arrays)


def as_version_1(meta):
    """How checkpoints were written before layers kept their own extra state."""
    meta["version"] = 1
    meta["dropout_rng_states"] = {i: state["rng"] for i, state in meta.pop("extra_state").items()}


def test_a_version_1_checkpoint_still_loads_and_resumes(rng, tmp_path):
    network, optimizer = trained("mlp", "adam", rng)
    path = tmp_path / "old.npz"
    save_checkpoint(path, network, optimizer)
    rewrite(path, as_version_1)
    assert "dropout_rng_states" in json.loads(str(np.load(path)["meta"]))

    loaded = load_checkpoint(path)
    dropouts = [(i, layer) for i, layer in enumerate(network.layers) if layer.get_extra_state()]
    assert dropouts  # mlp has dropout layers, whose generators the old format kept apart
    for i, layer in dropouts:
        assert loaded.network.layers[i].get_extra_state() == layer.get_extra_state()
    train_steps(network, optimizer, 2, seed=3)
    train_steps(loaded.network, loaded.make_optimizer(), 2, seed=3)
    for uninterrupted, restored in zip(parameters(network), parameters(loaded.network)):
        np.testing.assert_array_equal(restored, uninterrupted)


def test_a_newer_version_is_refused_with_the_versions_read(rng, tmp_path):
    network, optimizer = trained("seed", "sgd", rng)
    save_checkpoint(tmp_path / "c.npz", network, optimizer)
    rewrite(tmp_path / "c.npz", lambda meta: meta.update(version=99))
    with pytest.raises(CheckpointError, match="has checkpoint version 99, this scratchcnn reads versions 1, 2"):
        load_checkpoint(tmp_path / "c.npz")


def test_extra_state_for_a_layer_that_has_none_is_refused(rng, tmp_path):
    network, optimizer = trained("seed", "sgd", rng)
    save_checkpoint(tmp_path / "c.npz", network, optimizer)
    rewrite(tmp_path / "c.npz", lambda meta: meta["extra_state"].update({"1": {"rng": {}}}))
    with pytest.raises(CheckpointError, match=r"extra state saved for layer 1 does not fit it "
                                              r"\(MaxPool2: has no extra state, got keys \['rng'\]\)"):
        load_checkpoint(tmp_path / "c.npz")


def test_optimizer_state_for_another_network_is_refused(rng, tmp_path):
    network, optimizer = trained("seed", "momentum", rng)
    save_checkpoint(tmp_path / "c.npz", network, optimizer)

    def move_to_layer_7(arrays):
        arrays["optim/velocity/7.weights"] = arrays.pop("optim/velocity/2.weights")

    rewrite(tmp_path / "c.npz", edit_arrays=move_to_layer_7)
    loaded = load_checkpoint(tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match=r"optimizer state in this checkpoint does not fit its "
                                              r"network: .*'velocity/7\.weights'"):
        loaded.make_optimizer()
