"""scratchcnn.viz draws every picture headless, at a predictable size; scratchcnn.filters holds
the tutorials' hand-made filters."""
import json
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from scratchcnn import Conv2D, viz
from scratchcnn.filters import (EDGE_4X4, EDGE_FILTERS, HANDMADE_FILTERS, SOBEL_HORIZONTAL, SOBEL_VERTICAL,
                                edge_network, handmade_network)
from scratchcnn.models import build_model

METRICS = {"model": "seed", "test_loss": 0.08, "test_accuracy": 0.976, "train_seconds": 9.5,
           "epochs": [{"train_loss": 0.3 / e, "train_accuracy": 1 - 0.1 / e, "val_loss": 0.2 / e,
                       "val_accuracy": 1 - 0.05 / e, "seconds": 3.0, "images_per_second": 20000.0}
                      for e in (1, 2, 3)]}


def assert_png(fig, path, size=None):
    """``path`` is a non-empty PNG of exactly the figure's size in pixels (and ``size`` if given)."""
    assert isinstance(fig.canvas, FigureCanvasAgg)
    expected = tuple(int(round(v)) for v in fig.get_size_inches() * fig.dpi)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == expected
        assert image.convert("L").getextrema()[0] < 128  # something dark was drawn
    assert size is None or expected == size


@pytest.fixture
def digit(rng):
    """A normalised (28, 28) float32 image: a vertical bar (rows 4-23, columns 12-15) at 0.5
    on a -0.5 background."""
    image = np.full((28, 28), -0.5, np.float32)
    image[4:24, 12:16] = 0.5
    return image


def test_handmade_filters_are_the_tutorials():
    assert EDGE_4X4.tolist() == [[-1, -1, 1, 1]] * 4
    np.testing.assert_array_equal(EDGE_FILTERS["edge, negated"], -EDGE_4X4)
    np.testing.assert_array_equal(EDGE_FILTERS["edge, transposed"], EDGE_4X4.T)
    np.testing.assert_array_equal(EDGE_FILTERS["edge, negated transpose"], -EDGE_4X4.T)
    assert SOBEL_VERTICAL.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    np.testing.assert_array_equal(SOBEL_HORIZONTAL, SOBEL_VERTICAL.T)


def test_edge_network_finds_the_edges_of_a_vertical_bar(digit):
    network = edge_network()
    pooled = network.forward(digit[None])
    assert [o.shape for o in network.outputs] == [(1, 28, 28), (1, 25, 25, 4), (1, 25, 25, 4), (1, 12, 12, 4)]
    conv = network.outputs[1][0]
    # Left edge of the bar (dark -> bright) lights "edge"; right edge lights "edge, negated";
    # a vertical bar has no horizontal edges in its middle.
    assert conv[12, 10, 0] == 8 and conv[12, 14, 1] == 8 and conv[12, :, 2].max() == 0
    assert pooled.min() >= 0
    assert handmade_network({"Sobel": SOBEL_VERTICAL}).forward(digit[None]).shape == (1, 13, 13, 1)


def test_plot_filters_annotates_every_value(tmp_path):
    fig = viz.plot_filters(HANDMADE_FILTERS, title="hand-made", path=tmp_path / "f.png")
    assert_png(fig, tmp_path / "f.png")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == 2 * 9 + 4 * 16
    assert texts[:9] == ["-1", "0", "1", "-2", "0", "2", "-1", "0", "1"]
    assert [ax.get_title() for ax in fig.axes][:2] == ["Sobel vertical", "Sobel horizontal"]


def test_plot_filters_of_learned_single_and_multi_channel_filters(tmp_path):
    seed = build_model("seed")
    fig = viz.plot_filters(seed, path=tmp_path / "seed.png")  # (8, 3, 3), values to 2 decimals
    assert_png(fig, tmp_path / "seed.png")
    assert all("." in t.get_text() for t in fig.axes[0].texts)
    conv = Conv2D(2, 3, in_channels=5)  # filters (2, 3, 3, 5): a row per filter, a panel per channel
    fig = viz.plot_filters(conv, max_channels=3, path=tmp_path / "multi.png")
    assert_png(fig, tmp_path / "multi.png")
    assert len(fig.axes) == 2 * 3
    assert "channels 0-2 of 5" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="shape"):
        viz.plot_filters(np.zeros((2, 3, 4)))


def test_plot_feature_maps_has_a_row_per_stage(tmp_path, digit):
    fig = viz.plot_feature_maps(edge_network(), digit, filter_names=list(EDGE_FILTERS), label=1,
                                path=tmp_path / "maps.png")
    assert_png(fig, tmp_path / "maps.png")
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["Conv2D, 4 filters\n(25, 25, 4)", "ReLU\n(25, 25, 4)", "MaxPool2\n(12, 12, 4)"]
    assert len(fig.axes) == 1 + 3 * 4

    fig = viz.plot_feature_maps(build_model("seed"), digit, path=tmp_path / "seed.png")
    assert_png(fig, tmp_path / "seed.png")
    assert "predicted" in fig._suptitle.get_text()
    assert len(fig.axes) == 1 + 2 * 8  # input, then Conv3x3 and MaxPool2 rows


def test_plot_training_curves_from_the_metrics_json(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS))
    fig = viz.plot_training_curves(path, path=tmp_path / "curves.png")
    assert_png(fig, tmp_path / "curves.png", size=(900, 360))
    loss_ax, acc_ax = fig.axes
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), [0.3, 0.15, 0.1])
    assert "final test: 97.6%" in [t.get_text() for t in acc_ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="epochs"):
        viz.plot_training_curves({"epochs": []})


def test_confusion_matrix_and_its_plot(tmp_path):
    labels = np.array([0, 0, 1, 1, 2, 9])
    predicted = np.array([0, 1, 1, 1, 2, 4])
    counts = viz.confusion_matrix(labels, predicted)
    assert counts.shape == (10, 10) and counts.sum() == 6
    assert counts[0, 0] == 1 and counts[0, 1] == 1 and counts[1, 1] == 2 and counts[9, 4] == 1
    fig = viz.plot_confusion_matrix(labels, predicted, path=tmp_path / "cm.png")
    assert_png(fig, tmp_path / "cm.png", size=(640, 560))
    assert "66.67% of 6 right" in fig.axes[0].get_title()


def test_misclassified_shows_the_most_confident_mistakes_first(tmp_path, rng):
    labels = np.array([3, 5, 7, 1])
    probs = np.full((4, 10), 0.01)
    probs[0, 3], probs[1, 6], probs[2, 2], probs[3, 8] = 0.91, 0.91, 0.6, 0.91  # 1, 2, 3 are wrong
    probs[1, 6] = 0.95
    assert viz.most_confident_mistakes(labels, probs).tolist() == [1, 3, 2]
    images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    fig = viz.plot_misclassified(images, labels, probs, path=tmp_path / "mis.png")
    assert_png(fig, tmp_path / "mis.png", size=(420, 215))
    assert fig.axes[0].get_title() == "#1: true 5\npredicted 6 (95.0%)"


def test_plot_probabilities_with_and_without_the_image(tmp_path, digit):
    probs = np.array([0.01, 0.7, 0.02, 0.2, 0.01, 0.01, 0.01, 0.02, 0.01, 0.01])
    fig = viz.plot_probabilities(probs, label=3, image=digit, path=tmp_path / "p.png")
    assert_png(fig, tmp_path / "p.png", size=(700, 320))
    bars = fig.axes[1].patches
    assert bars[1].get_height() == pytest.approx(70) and bars[1].get_facecolor()[0] > 0.7  # red: wrong
    fig = viz.plot_probabilities(probs, path=tmp_path / "q.png")
    assert_png(fig, tmp_path / "q.png", size=(550, 320))


def test_drawing_needs_no_display_and_no_pyplot(tmp_path):
    code = ("import sys, numpy as np; from scratchcnn import viz; "
            f"viz.plot_probabilities(np.full(10, 0.1), path={str(tmp_path / 'p.png')!r}); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "", "HOME": str(tmp_path)}  # no DISPLAY
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    assert (tmp_path / "p.png").stat().st_size > 1000
