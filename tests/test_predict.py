"""``python -m scratchcnn.predict`` and ``python -m scratchcnn.evaluate`` on a checkpoint trained
here on the first 5,000 real MNIST images (about a second)."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from scratchcnn import evaluate, predict, train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "seed.npz"
    assert train.main(["--quiet", "--train-size", "5000", "--test-size", "500", "--epochs", "1",
                       "--save", str(path)]) == 0
    return path


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


def test_predict_reads_a_drawn_digit(checkpoint, tmp_path, capsys):
    image = draw(tmp_path / "1.png", 1)
    assert predict.main(["--model", str(checkpoint), str(image)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{image}: 1  (1: ")
    assert out.count("%") == 3  # the top three probabilities


def test_predict_top_k_lists_the_digits_in_order(checkpoint, tmp_path, capsys):
    # A weak network may take a drawn 0 for a 9 (the seed network is a linear classifier on
    # pooled edges), so only ask that 0 is among its five best guesses, in falling order.
    image = draw(tmp_path / "0.png", 0)
    assert predict.main(["--model", str(checkpoint), "--top", "5", str(image)]) == 0
    listed = capsys.readouterr().out.split("(")[1].rstrip(")\n").split(", ")
    shares = [float(item.split(": ")[1].rstrip("%")) for item in listed]
    assert len(listed) == 5 and "0" in [item.split(":")[0] for item in listed]
    assert shares == sorted(shares, reverse=True)


def test_predict_handles_light_on_dark_grayscale(checkpoint, tmp_path, capsys):
    image = tmp_path / "inverted.png"
    Image.fromarray(255 - np.asarray(Image.open(draw(tmp_path / "1.png", 1)).convert("L"))).save(image)
    assert predict.main(["--model", str(checkpoint), "--top", "1", str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: 1  (1: ")


def test_predict_reports_unreadable_images_and_goes_on(checkpoint, tmp_path, capsys):
    good = draw(tmp_path / "1.png", 1)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code = predict.main(["--model", str(checkpoint), str(tmp_path / "missing.png"), str(text), str(good)])
    captured = capsys.readouterr()
    assert code == 1 and f"{good}: 1" in captured.out
    assert "does not exist" in captured.err and "not an image" in captured.err
    assert "Traceback" not in captured.err


def test_predict_refuses_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert predict.main(["--model", str(bad), str(draw(tmp_path / "1.png", 1))]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_evaluate_cli(checkpoint, tmp_path, capsys):
    png = tmp_path / "confusion.png"
    assert evaluate.main(["--model", str(checkpoint), "--test-size", "1000", "--confusion", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Test Loss: " in out and "Per-class accuracy:" in out and "true \\ predicted" in out
    accuracy = float(out.split("Test Accuracy: ")[1].split("%")[0])
    assert accuracy > 80
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_refuses_missing_checkpoint_and_bad_size(tmp_path, capsys):
    assert evaluate.main(["--model", str(tmp_path / "none.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert evaluate.main(["--model", "x.npz", "--test-size", "0"]) == 2
