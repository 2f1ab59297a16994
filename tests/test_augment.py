"""Affine augmentation: exact special cases, a per-image reference, seeding, errors, the script."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchcnn.data.augment import affine_augment, augment_rng, random_transforms, warp

FILL = -0.5


def digits(rng, n=5, size=28):
    """Normalised random 'images' in [-0.5, 0.5], float64."""
    return rng.random((n, size, size)) - 0.5


def reference_warp(image, angle, scale, shift, fill):
    """One image, one output pixel at a time: where it comes from, then bilinear interpolation,
    written independently of ``warp`` (a matrix inverse, explicit bounds checks)."""
    h, w = image.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    t = np.deg2rad(angle)
    # Forward map in (row, col) coordinates: counter-clockwise on screen, then scale, then shift.
    forward = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    inverse = np.linalg.inv(forward)

    def pixel(r, c):
        return image[r, c] if 0 <= r < h and 0 <= c < w else fill

    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            sr, sc = inverse @ (np.array([r, c]) - centre - shift) + centre
            r0, c0 = int(np.floor(sr)), int(np.floor(sc))
            dr, dc = sr - r0, sc - c0
            out[r, c] = ((1 - dr) * (1 - dc) * pixel(r0, c0) + (1 - dr) * dc * pixel(r0, c0 + 1)
                         + dr * (1 - dc) * pixel(r0 + 1, c0) + dr * dc * pixel(r0 + 1, c0 + 1))
    return out


def test_all_ranges_zero_is_the_exact_identity(rng):
    x = digits(rng).astype(np.float32)
    y = affine_augment(x, augment_rng(0, 0, 0))
    assert y.dtype == np.float32 and y is not x
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("angle, turns", [(90, 1), (-90, -1), (180, 2)])
def test_quarter_turns_equal_rot90(rng, angle, turns):
    x = digits(rng, 3)
    y = warp(x, np.full(3, angle), np.ones(3), np.zeros((3, 2)), fill=FILL)
    np.testing.assert_allclose(y, np.rot90(x, turns, axes=(1, 2)), rtol=0, atol=1e-9)


def test_a_one_pixel_shift_is_a_roll_with_fill(rng):
    x = digits(rng, 2)
    y = warp(x, np.zeros(2), np.ones(2), np.array([[0, 1], [-1, 0]]), fill=FILL)
    right = np.roll(x[0], 1, axis=1)
    right[:, 0] = FILL
    up = np.roll(x[1], -1, axis=0)
    up[-1] = FILL
    np.testing.assert_array_equal(y, [right, up])


def test_random_transforms_match_a_per_image_reference(rng):
    x = digits(rng, 6, size=12)
    angles, scales, shifts = random_transforms(6, augment_rng(3, 1, 4), rotate=30, scale=0.3, shift=2)
    assert np.ptp(angles) > 0 and np.ptp(scales) > 0 and np.ptp(shifts) > 0  # really random
    y = affine_augment(x, augment_rng(3, 1, 4), rotate=30, scale=0.3, shift=2, fill=0.25)
    expected = [reference_warp(image, a, s, t, 0.25) for image, a, s, t in zip(x, angles, scales, shifts)]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_the_same_seed_epoch_and_step_draw_the_same_images(rng):
    x = digits(rng, 8)
    options = dict(rotate=15, scale=0.1, shift=2)
    first = affine_augment(x, augment_rng(7, 2, 30), **options)
    np.testing.assert_array_equal(affine_augment(x, augment_rng(7, 2, 30), **options), first)
    for other in [(8, 2, 30), (7, 3, 30), (7, 2, 31)]:
        assert not np.allclose(affine_augment(x, augment_rng(*other), **options), first)


def test_one_option_does_not_change_the_others_draws():
    with_rotation = random_transforms(4, augment_rng(0, 0, 0), rotate=20, shift=2)
    without = random_transforms(4, augment_rng(0, 0, 0), shift=2)
    np.testing.assert_array_equal(with_rotation[2], without[2])


def test_augmented_digits_stay_in_range_and_keep_their_ink(rng):
    x = np.full((4, 28, 28), FILL)
    x[:, 8:20, 12:16] = 0.5  # a bar in the middle, well inside the frame
    y = affine_augment(x, augment_rng(0, 0, 0), rotate=15, scale=0.1, shift=2)
    assert y.min() >= FILL - 1e-12 and y.max() <= 0.5 + 1e-12
    ink = (y + 0.5).sum(axis=(1, 2)) / (x + 0.5).sum(axis=(1, 2))
    assert np.all(abs(ink - 1) < 0.25)  # area changes with scale^2 only


@pytest.mark.parametrize("call, words", [
    (lambda x: affine_augment(x[0], augment_rng(0, 0, 0)), r"shape \(N, H, W\), got float64 of shape \(28, 28\)"),
    (lambda x: affine_augment((x * 255).astype(np.uint8), augment_rng(0, 0, 0)), "normalise uint8"),
    (lambda x: affine_augment(x, augment_rng(0, 0, 0), rotate=-5), "degrees from 0 to 180"),
    (lambda x: affine_augment(x, augment_rng(0, 0, 0), scale=1.5), r"fraction in \[0, 1\)"),
    (lambda x: affine_augment(x, augment_rng(0, 0, 0), shift=1.5), "whole number of pixels"),
])
def test_bad_arguments_are_explained(rng, call, words):
    with pytest.raises(ValueError, match=words):
        call(digits(rng, 2))


def test_the_script_draws_digits_and_their_augmented_versions(monkeypatch, tmp_path, capsys):
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("augmentations", scripts / "augmentations.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "augmentations", module)
    spec.loader.exec_module(module)
    fake = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    monkeypatch.setattr(module, "load_mnist", lambda data_dir=None: (fake, labels, fake, labels))
    module.main(["--out", str(tmp_path / "aug.png"), "--digits", "3", "--versions", "4"])
    assert "Wrote" in capsys.readouterr().out
    with Image.open(tmp_path / "aug.png") as image:
        assert image.size[0] > 300 and image.size[1] > 200
