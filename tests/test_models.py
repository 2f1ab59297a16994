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


def test_modern_wiring_comments_state_each_layers_output_shape(rng):
    """Every line of ``models.modern`` says ``# (N, in...) -> (N, out...)``; check them all."""
    import inspect
    import re
    from scratchcnn import models
    comments = re.findall(r"# (\(N[^)]*\))\s*-> (\(N[^)]*\))", inspect.getsource(models.modern))
    network = build_model("modern")
    network.forward(rng.uniform(-0.5, 0.5, (2, 28, 28)).astype(np.float32))
    shapes = [str(tuple(output.shape)).replace("(2,", "(N,") for output in network.outputs]
    assert len(comments) == len(network.layers)
    assert [(before, after) for before, after in comments] == list(zip(shapes[:-1], shapes[1:]))


def test_modern_normalises_after_every_convolution_and_ends_in_softmax():
    from scratchcnn.layers import BatchNorm, Conv2D, Dense, Softmax
    layers = build_model("modern").layers
    for i, layer in enumerate(layers):
        if isinstance(layer, (Conv2D, Dense)):
            assert isinstance(layers[i + 1], BatchNorm), i
        if isinstance(layer, Conv2D):  # BatchNorm's beta replaces the bias it would cancel
            assert "biases" not in layer.params
    assert isinstance(layers[-1], Softmax)
    assert sum(p.size for layer in layers for p in layer.params.values()) == 197_930


def test_modern_trains_with_rotation_and_scaling_by_default():
    defaults = TRAINING_DEFAULTS["modern"]
    assert defaults["rotate"] > 0 and defaults["scale"] > 0 and defaults["shift"] > 0
    assert all({"shift", "rotate", "scale"} <= set(d) for d in TRAINING_DEFAULTS.values())
