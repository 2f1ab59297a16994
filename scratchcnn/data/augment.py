"""Affine augmentation: every training image randomly rotated, scaled and shifted.

    rng = augment_rng(seed, epoch, step)        # the same draws when a run is resumed
    x = affine_augment(x, rng, rotate=10, scale=0.1, shift=2)   # (N, 28, 28) -> (N, 28, 28)

Each image gets its own transform about its centre, computed backwards: for every output
pixel, where in the input it comes from (one sampling grid per image, all images at once),
then the value there by bilinear interpolation between the four nearest pixels. Whatever comes
from outside the image is ``fill``, the value of a blank pixel (``-0.5`` once ``normalize``
has mapped 0 to it). ``warp`` applies given transforms; ``affine_augment`` draws them.
"""
import numpy as np


def augment_rng(seed, epoch, step):
    """The generator for one minibatch, from ``(seed, epoch, step)`` alone, so a resumed run
    draws the same transforms (``np.random.default_rng([seed, epoch, step])`` is the same)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, step]))


def random_transforms(n, rng, rotate=0.0, scale=0.0, shift=0):
    """Draw ``n`` transforms: ``(angles, scales, shifts)``, shapes ``(n,)``, ``(n,)``, ``(n, 2)``.

    Angles in degrees uniform in ``[-rotate, rotate]``, scale factors uniform in
    ``[1 - scale, 1 + scale]``, shifts ``(rows, columns)`` whole pixels in ``-shift..shift``
    (whole, as torchvision's ``RandomAffine`` rounds them: a shift alone then blurs nothing).
    All three are always drawn, so turning one on does not change the others' draws.
    """
    if not 0 <= rotate <= 180:
        raise ValueError(f"rotate must be an angle in degrees from 0 to 180, got {rotate}")
    if not 0 <= scale < 1:
        raise ValueError(f"scale must be a fraction in [0, 1) (0.1 = sizes 90% to 110%), got {scale}")
    if int(shift) != shift or shift < 0:
        raise ValueError(f"shift must be a whole number of pixels >= 0, got {shift}")
    angles = rng.uniform(-rotate, rotate, n)
    scales = rng.uniform(1 - scale, 1 + scale, n)
    shifts = rng.integers(-int(shift), int(shift) + 1, (n, 2))
    return angles, scales, shifts


def affine_augment(images, rng, rotate=0.0, scale=0.0, shift=0, fill=-0.5):
    """``images`` ``(N, H, W)`` floats, each randomly transformed -> new ``(N, H, W)`` array.

    ``rotate`` degrees, ``scale`` fraction and ``shift`` pixels are the largest changes (see
    ``random_transforms``); ``fill`` is the blank background value. All zero: an exact copy.
    """
    images = _checked_images(images)
    return warp(images, *random_transforms(len(images), rng, rotate, scale, shift), fill=fill)


def warp(images, angles, scales, shifts, fill=-0.5):
    """Rotate each image ``angles`` degrees counter-clockwise about its centre, scale it by
    ``scales`` and move it by ``shifts`` ``(rows down, columns right)`` pixels.

    images ``(N, H, W)``, angles ``(N,)``, scales ``(N,)``, shifts ``(N, 2)`` -> ``(N, H, W)``.
    """
    images = _checked_images(images)
    n, h, w = images.shape
    centre_row, centre_col = (h - 1) / 2, (w - 1) / 2
    # Output pixel offsets from the centre, minus the shift: (N, H, W) each.
    rows = np.arange(h)[None, :, None] - centre_row - np.asarray(shifts)[:, 0, None, None]
    cols = np.arange(w)[None, None, :] - centre_col - np.asarray(shifts)[:, 1, None, None]
    # The inverse rotation and scaling take them back to where they come from. (Rows point
    # down, so a counter-clockwise turn on screen has the sign of sin flipped.)
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64))
    cos = (np.cos(radians) / scales)[:, None, None]
    sin = (np.sin(radians) / scales)[:, None, None]
    source_rows = centre_row + rows * cos + cols * sin
    source_cols = centre_col + cols * cos - rows * sin
    return bilinear(images, source_rows, source_cols, fill)


def bilinear(images, rows, cols, fill):
    """``images[n]`` read at the fractional positions ``rows[n], cols[n]`` (each ``(N, H, W)``),
    interpolating between the four nearest pixels; positions outside read ``fill``."""
    n, h, w = images.shape
    # A one-pixel border of fill: positions clipped to [-1, h] then read only fill out there.
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
    rows, cols = np.clip(rows, -1, h), np.clip(cols, -1, w)
    top = np.minimum(np.floor(rows), h - 1).astype(np.intp)    # in -1..h-1, so top + 1 <= h
    left = np.minimum(np.floor(cols), w - 1).astype(np.intp)
    down = (rows - top).astype(images.dtype)                   # in [0, 1]: weight of the lower row
    right = (cols - left).astype(images.dtype)
    # Each top-left neighbour as a flat index into padded (faster to gather than 3 index
    # arrays); the other three are one column and/or one padded row further on.
    row = w + 2
    corner = (np.arange(n)[:, None, None] * (h + 2) + top + 1) * row + left + 1
    flat = padded.ravel()
    upper = flat.take(corner) * (1 - right) + flat.take(corner + 1) * right
    lower = flat.take(corner + row) * (1 - right) + flat.take(corner + row + 1) * right
    return upper * (1 - down) + lower * down


def _checked_images(images):
    images = np.asarray(images)
    if images.ndim != 3 or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"expected float images of shape (N, H, W), got {images.dtype} of shape "
                         f"{images.shape}; normalise uint8 pixels first (scratchcnn.data.normalize)")
    return images
