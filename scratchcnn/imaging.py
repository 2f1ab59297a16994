"""Turning any picture of a digit into what an MNIST network expects.

MNIST digits are white on black, size-normalised to fit a 20x20 box (keeping their aspect
ratio) and placed in a 28x28 image so that their centre of mass sits at the centre. ``predict``
and the web page in ``serve`` both go through ``to_mnist``, so they see digits the same way.
"""
import numpy as np
from PIL import Image, UnidentifiedImageError

MNIST_SIZE = 28
DIGIT_BOX = 20


class ImageError(ValueError):
    """An image that can't be read or used, with what was wrong."""


def load_image(path):
    """Read a PNG (or any format Pillow reads) as grayscale ``(H, W)`` float32 in ``[0, 1]``.

    Transparent pixels count as white paper, so a dark stroke on a transparent canvas reads as
    a dark stroke on white.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(paper, rgba)
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    except FileNotFoundError:
        raise ImageError(f"image {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ImageError(f"{str(path)!r} is a folder, not an image") from None
    except PermissionError:
        raise ImageError(f"image {str(path)!r} can't be read (permission denied)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{str(path)!r} is not an image Pillow can read ({e})") from None
    return gray


def to_mnist(gray):
    """``(H, W)`` grayscale in ``[0, 1]`` (or uint8), either polarity -> ``(28, 28)`` uint8, MNIST-style.

    Steps: make the digit light on dark (a light border means dark ink on light paper, so
    invert); crop to the ink; scale the longer side to 20 pixels keeping the aspect ratio;
    paste into 28x28 with the centre of mass at the centre. A blank image gives zeros.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ImageError(f"expected a grayscale image of shape (H, W), got shape {gray.shape}")
    if gray.max() > 1:
        gray = gray / 255
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light_paper = border.mean() > 0.5
    ink = 1 - gray if light_paper else gray
    paper_level = np.median(1 - border if light_paper else border)  # grey paper isn't ink
    ink = np.clip(ink - paper_level, 0, 1)
    if ink.max() <= 0.05:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)

    rows, cols = np.nonzero(ink > 0.05 * ink.max())
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    scale = DIGIT_BOX / max(h, w)
    new_size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (width, height)
    digit = Image.fromarray(np.uint8(np.round(ink / ink.max() * 255))).resize(new_size, Image.LANCZOS)
    digit = np.asarray(digit, dtype=np.float32)

    # Place the centre of mass at (14, 14), keeping the digit inside the frame.
    total = digit.sum()
    com_y = (digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / total
    com_x = (digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / total
    top = int(np.clip(round(MNIST_SIZE / 2 - 0.5 - com_y), 0, MNIST_SIZE - digit.shape[0]))
    left = int(np.clip(round(MNIST_SIZE / 2 - 0.5 - com_x), 0, MNIST_SIZE - digit.shape[1]))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.uint8(np.clip(np.round(out), 0, 255))
