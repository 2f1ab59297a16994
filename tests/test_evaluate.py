"""``python -m scratchcnn.evaluate``: a checkpoint tested on the MNIST test set."""
import numpy as np
import pytest

from scratchcnn import evaluate, train
from scratchcnn.checkpoint import load_checkpoint
from scratchcnn.data import first_n, normalize
from scratchcnn.evaluate import format_confusion, format_per_class


@pytest.mark.network
def test_evaluate_cli(seed_checkpoint, tmp_path, capsys):
    png = tmp_path / "confusion.png"
    assert evaluate.main(["--model", str(seed_checkpoint), "--test-size", "1000", "--confusion", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Test Loss: " in out and "Per-class accuracy:" in out and "true \\ predicted" in out
    accuracy = float(out.split("Test Accuracy: ")[1].split("%")[0])
    assert accuracy > 80
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def fake_checkpoint(tmp_path, fake_data):
    """A checkpoint trained on the synthetic MNIST (``fake_data``), which evaluate then loads."""
    data = fake_data
    path = tmp_path / "fake.npz"
    assert train.main(["--quiet", "--train-size", "320", "--test-size", "100", "--epochs", "1",
                       "--save", str(path)]) == 0
    return path, data


def test_evaluate_reports_what_network_evaluate_computes(fake_checkpoint, capsys):
    """The one way to evaluate: the CLI's loss and accuracy are ``Network.evaluate``'s on the
    same images."""
    path, (_, _, test_x, test_y) = fake_checkpoint
    capsys.readouterr()
    assert evaluate.main(["--model", str(path), "--test-size", "150"]) == 0
    out = capsys.readouterr().out
    x, labels = first_n(test_x, test_y, 150)
    loss, accuracy = load_checkpoint(path).network.evaluate(normalize(x), labels.astype(np.int64))
    assert f"Test Loss: {loss:.4f} | Test Accuracy: {accuracy:.2%} ({round(accuracy * 150):,} of 150)" in out


def test_per_class_accuracy_and_confusion_text():
    matrix = np.zeros((10, 10), np.int64)
    matrix[7, 7], matrix[7, 1], matrix[0, 0] = 3, 1, 1200
    lines = format_per_class(matrix).splitlines()
    assert lines[7] == "  7:  75.00% of 4" and lines[0] == "  0: 100.00% of 1,200"
    assert lines[3] == "  3:       - of 0"  # a digit with no test images
    table = format_confusion(matrix).splitlines()
    assert table[0].split()[-1] == "9" and table[8].split() == ["7", "0", "1"] + ["0"] * 5 + ["3", "0", "0"]


def test_evaluate_refuses_missing_checkpoint_and_bad_size(tmp_path, capsys):
    assert evaluate.main(["--model", str(tmp_path / "none.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert evaluate.main(["--model", "x.npz", "--test-size", "0"]) == 2
    assert "--test-size: 0 is not from 1 to 10,000" in capsys.readouterr().err
    assert evaluate.main(["--model", "x.npz", "--test-size", "lots"]) == 2
    assert "--test-size: expected an integer, got 'lots'" in capsys.readouterr().err
