"""``python -m scratchcnn.predict`` on drawn digits, with a checkpoint trained here on the first
5,000 real MNIST images (``seed_checkpoint`` in conftest.py, about a second)."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from scratchcnn import predict


def draw(path, digit, size=(150, 200), ink=(20, 20, 120), paper=(250, 245, 235)):
    """A colour PNG of a hand-drawn-looking 0 or 1, dark ink on light paper by default."""
    image = Image.new("RGB", size, paper)
    pen = ImageDraw.Draw(image)
    w, h = size
    if digit == 1:
        pen.line([(w * 0.45, h * 0.25), (w * 0.55, h * 0.15), (w * 0.55, h * 0.85)], fill=ink, width=24)
    else:
        pen.ellipse([w * 0.25, h * 0.15, w * 0.75, h * 0.85], outline=ink, width=24)
    image.save(path)
    return path


@pytest.mark.network
def test_predict_reads_a_drawn_digit(seed_checkpoint, tmp_path, capsys):
    image = draw(tmp_path / "1.png", 1)
    assert predict.main(["--model", str(seed_checkpoint), str(image)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{image}: 1  (1: ")
    assert out.count("%") == 3  # the top three probabilities


@pytest.mark.network
def test_predict_top_k_lists_the_digits_in_order(seed_checkpoint, tmp_path, capsys):
    # A weak network may take a drawn 0 for a 9 (the seed network is a linear classifier on
    # pooled edges), so only ask that 0 is among its five best guesses, in falling order.
    image = draw(tmp_path / "0.png", 0)
    assert predict.main(["--model", str(seed_checkpoint), "--top", "5", str(image)]) == 0
    listed = capsys.readouterr().out.split("(")[1].rstrip(")\n").split(", ")
    shares = [float(item.split(": ")[1].rstrip("%")) for item in listed]
    assert len(listed) == 5 and "0" in [item.split(":")[0] for item in listed]
    assert shares == sorted(shares, reverse=True)


@pytest.mark.network
def test_predict_handles_light_on_dark_grayscale(seed_checkpoint, tmp_path, capsys):
    image = tmp_path / "inverted.png"
    Image.fromarray(255 - np.asarray(Image.open(draw(tmp_path / "1.png", 1)).convert("L"))).save(image)
    assert predict.main(["--model", str(seed_checkpoint), "--top", "1", str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: 1  (1: ")


@pytest.mark.network
def test_predict_reports_unreadable_images_and_goes_on(seed_checkpoint, tmp_path, capsys):
    good = draw(tmp_path / "1.png", 1)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code = predict.main(["--model", str(seed_checkpoint), str(tmp_path / "missing.png"), str(text), str(good)])
    captured = capsys.readouterr()
    assert code == 1 and f"{good}: 1" in captured.out
    assert "does not exist" in captured.err and "not an image" in captured.err
    assert "Traceback" not in captured.err


def test_predict_refuses_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert predict.main(["--model", str(bad), str(draw(tmp_path / "1.png", 1))]) == 1
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("argv", [["--top", "11"], ["--top", "three"], []])
def test_predict_refuses_bad_options_like_the_other_commands(argv, tmp_path, capsys):
    image = str(draw(tmp_path / "1.png", 1))
    assert predict.main(["--model", "x.npz", *argv] + ([image] if argv else [])) == 2
    assert "usage: python -m scratchcnn.predict" in capsys.readouterr().err
