"""The networks ``python -m scratchcnn.train --model`` builds (``scratchcnn.models``)."""
import numpy as np
import pytest

from scratchcnn import loops
from scratchcnn.models import MODEL_NAMES, TRAINING_DEFAULTS, build_model


def test_every_model_builds_and_has_the_expected_output(rng):
    for name in MODEL_NAMES:
        probs = build_model(name).forward(rng.uniform(-0.5, 0.5, (2, 28, 28)).astype(np.float32))
        assert probs.shape == (2, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_every_model_has_training_defaults():
    assert set(TRAINING_DEFAULTS) == set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_seed_fixes_every_initial_weight(name):
    def weights(seed):
        return [p for layer in build_model(name, seed=seed).layers for p in layer.params.values()]
    same, other = weights(3), weights(4)
    assert all(np.array_equal(a, b) for a, b in zip(weights(3), same))
    assert not all(np.array_equal(a, b) for a, b in zip(other, same))


def test_loop_twins_only_for_the_seed_network():
    network = build_model("seed", loop=True)
    assert [type(layer) for layer in network.layers] == [loops.Conv3x3, loops.MaxPool2, loops.Softmax]
    with pytest.raises(ValueError, match="only for the seed network"):
        build_model("classic", loop=True)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")
