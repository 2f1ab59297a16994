"""``scratchcnn.imaging``: any picture of a digit -> a 28x28 MNIST-style image."""
import numpy as np
import pytest
from PIL import Image

from scratchcnn.imaging import ImageError, load_image, to_mnist


def stroke_image(h=120, w=90, light_paper=True):
    """A thick diagonal bar, dark on light (or light on dark), as float [0, 1]."""
    gray = np.zeros((h, w), np.float32)
    for i in range(20, h - 20):
        j = int(20 + (w - 40) * (i - 20) / (h - 40))
        gray[i, max(0, j - 6):j + 6] = 1
    return 1 - gray if light_paper else gray


def test_to_mnist_is_28x28_light_on_dark_and_centred():
    digit = to_mnist(stroke_image())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit[0].max() == 0 and digit.max() > 200  # dark border, bright ink
    rows, cols = np.nonzero(digit > 25)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) <= 21  # the 20x20 box
    mass = digit.astype(float)
    com = [(mass.sum(axis=1 - a) * np.arange(28)).sum() / mass.sum() for a in (0, 1)]
    assert np.allclose(com, 13.5, atol=1.0)


def test_either_polarity_gives_the_same_digit():
    np.testing.assert_array_equal(to_mnist(stroke_image(light_paper=True)),
                                  to_mnist(stroke_image(light_paper=False)))


def test_blank_image_gives_zeros():
    assert not to_mnist(np.ones((40, 40))).any()


def test_load_image_colour_and_transparent(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (30, 20), (255, 0, 0)).save(rgb)
    gray = load_image(rgb)
    assert gray.shape == (20, 30) and gray.dtype == np.float32 and 0 <= gray.min() <= gray.max() <= 1
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(clear)
    assert load_image(clear).min() == pytest.approx(1.0)  # transparent = white paper


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "does not exist"),
    (lambda p: (p.write_text("hello"), p)[1], "not an image"),
    (lambda p: (p.mkdir(), p)[1], "is a folder"),
])
def test_load_image_errors(make, message, tmp_path):
    with pytest.raises(ImageError, match=message):
        load_image(make(tmp_path / "x.png"))


def test_to_mnist_refuses_wrong_shape():
    with pytest.raises(ImageError, match="shape"):
        to_mnist(np.zeros((4, 4, 3)))
