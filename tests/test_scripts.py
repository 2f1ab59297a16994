"""The scripts in scripts/ run end to end on a tiny model or the hand-made filters (seconds).

They are imported and their ``main(argv)`` called in-process, with MNIST replaced by a few
random images so that no download is needed; one test runs step_through.py under pdb with
exactly the commands the README gives.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from scratchcnn.checkpoint import save_checkpoint
from scratchcnn.models import build_model
from scratchcnn.optim import Momentum

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
NAMES = ["visualize_filters", "feature_maps", "step_through", "mistakes", "augmentations", "backward_figure", "make_docs_images",
         "explain"]


def fake_mnist(data_dir=None):
    """Twenty random 'test images' with labels 0-9, standing in for ``load_mnist``."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    return images, labels, images, labels


@pytest.fixture
def scripts(monkeypatch, tmp_path):
    """name -> the imported script module, MNIST faked, working in an empty folder."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.chdir(tmp_path)
    modules = {}
    for name in ["common"] + NAMES:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        if hasattr(module, "load_mnist"):
            monkeypatch.setattr(module, "load_mnist", fake_mnist)
        modules[name] = module
    return modules


@pytest.fixture
def tiny_model(tmp_path):
    """A seed network after a few training steps on random data, saved as the trainer would."""
    rng = np.random.default_rng(0)
    network, optimizer = build_model("seed", seed=0), Momentum(0.05)
    for _ in range(3):
        network.train_step(rng.random((8, 28, 28), dtype=np.float32) - 0.5, rng.integers(0, 10, 8), optimizer)
    path = tmp_path / "tiny.npz"
    save_checkpoint(path, network, optimizer, model="seed")
    return str(path)


@pytest.fixture
def drawn_digit(tmp_path):
    """A PNG of a dark '1' on white paper, 60x80 pixels."""
    image = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(image).line([(25, 10), (35, 10), (35, 70)], fill=0, width=7)
    path = tmp_path / "one.png"
    image.save(path)
    return str(path)


def png_size(path):
    with Image.open(path) as image:
        return image.size


@pytest.mark.parametrize("name", NAMES)
def test_every_script_has_help_with_out(scripts, capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        scripts[name].main(["--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


# With a model, visualize_filters, feature_maps and mistakes run in the make_docs_images test.

def test_visualize_filters_without_a_model_draws_the_handmade_ones(scripts, tmp_path, capsys):
    scripts["visualize_filters"].main(["--out", "figs"])  # no model.npz here
    assert "python -m scratchcnn.train --save model.npz" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["handmade_filters.png"]


def test_feature_maps_of_a_png_and_of_a_test_image(scripts, drawn_digit, tmp_path, capsys):
    scripts["feature_maps"].main(["--image", drawn_digit, "--out", "edges.png"])  # falls back to edges
    assert "hand-made 4x4 edge filters" in capsys.readouterr().out
    scripts["feature_maps"].main(["--index", "3", "--filters", "sobel", "--out", "sobel.png"])
    assert "label 3" in capsys.readouterr().out
    assert png_size(tmp_path / "edges.png")[0] > 400 and png_size(tmp_path / "sobel.png")[0] > 400
    with pytest.raises(SystemExit, match="does not exist"):
        scripts["feature_maps"].main(["--image", "missing.png"])


def printed_shapes(output):
    """``{name: shape}`` from step_through's ``describe`` lines."""
    shapes = {}
    for line in output.splitlines():
        if " shape (" in line:
            name, rest = line.split(" shape ", 1)
            shapes[name.strip()] = rest.split(")")[0] + ")"
    return shapes


@pytest.mark.parametrize("loop", [False, True])
def test_step_through_prints_the_documented_shapes(scripts, tiny_model, capsys, loop):
    extra = ["--loop", "--out", "maps.png"] if loop else []
    scripts["step_through"].main(["--model", tiny_model, "--index", "7"] + extra)
    output = capsys.readouterr().out
    assert printed_shapes(output) == {
        "image": "(28, 28)",
        "after Conv3x3: conv_out[0]": "(26, 26, 8)",
        "after MaxPool2: pool_out[0]": "(13, 13, 8)",
        "after Softmax: probs[0]": "(10,)",
        "d_L_d_probs[0]": "(10,)",
        "d_L_d_pool_out[0]": "(13, 13, 8)",
        'softmax.grads["weights"]': "(1352, 10)",
        'softmax.grads["biases"]': "(10,)",
        "d_L_d_conv_out[0]": "(26, 26, 8)",
        'conv.grads["filters"]': "(8, 3, 3)",
        "d_L_d_image[0]": "(28, 28)",
        # The classic network's training step on the image and three shifted copies.
        "outputs[1] Conv2D": "(4, 26, 26, 16)",
        "outputs[2] ReLU": "(4, 26, 26, 16)",
        "outputs[3] Conv2D": "(4, 24, 24, 32)",
        "outputs[4] ReLU": "(4, 24, 24, 32)",
        "outputs[5] MaxPool2": "(4, 12, 12, 32)",
        "outputs[6] Conv2D": "(4, 10, 10, 64)",
        "outputs[7] ReLU": "(4, 10, 10, 64)",
        "outputs[8] MaxPool2": "(4, 5, 5, 64)",
        "outputs[9] Softmax": "(4, 10)",
        'layers[0].grads["filters"]': "(16, 3, 3)",
    }
    assert ("loop twins" in output) == loop
    assert Path("maps.png").exists() == loop
    assert "true label 7" in output and "Loss: -log(probs[0][7])" in output
    before, after = output.split("After one SGD step (lr 0.005): loss ")[1].split("\n")[0].split(" -> ")
    assert float(after) < float(before)


def test_step_through_refuses_another_network(scripts, tmp_path):
    path = tmp_path / "mlp.npz"
    save_checkpoint(path, build_model("mlp"), model="mlp")
    with pytest.raises(SystemExit, match="for the tutorial network"):
        scripts["step_through"].main(["--model", str(path)])


def test_mistakes_without_a_model_says_how_to_make_one(scripts):
    with pytest.raises(SystemExit, match=r"python -m scratchcnn.train --save model\.npz"):
        scripts["mistakes"].main([])


def test_backward_of_a_test_image_a_png_and_without_a_model(scripts, tiny_model, drawn_digit, tmp_path, capsys):
    scripts["backward_figure"].main(["--model", tiny_model, "--index", "3", "--out", "three.png"])
    output = capsys.readouterr().out
    assert "true label 3; label 3: loss " in output
    before, after = output.split("loss ")[1].split(", after one SGD step (lr 0.1) ")
    assert float(after.rstrip(")\n")) < float(before)
    scripts["backward_figure"].main(["--model", tiny_model, "--image", drawn_digit, "--label", "5",
                              "--lr", "0.01", "--out", "five.png"])
    assert "one.png; label 5: loss " in capsys.readouterr().out
    scripts["backward_figure"].main(["--index", "1", "--out", "briefly.png"])   # no model.npz: trains first
    assert "training the tutorial network" in capsys.readouterr().out
    for name in ("three.png", "five.png", "briefly.png"):
        width, height = png_size(tmp_path / name)
        assert width > 1000 and height > 600
    with pytest.raises(SystemExit, match="label must be from 0 to 9, got 12"):
        scripts["backward_figure"].main(["--model", tiny_model, "--label", "12"])
    with pytest.raises(SystemExit, match="lr .* positive number"):
        scripts["backward_figure"].main(["--model", tiny_model, "--lr", "0"])


def test_explain_draws_digits_right_and_wrong_and_the_class_models(scripts, tiny_model, tmp_path, capsys):
    scripts["explain"].main(["--model", tiny_model, "--out", "why.png"])
    output = capsys.readouterr().out
    assert output.startswith("Wrote why.png (test images ")
    shown = [int(i) for i in output.split("test images ")[1].split(";")[0].split(", ")]
    network = scripts["common"].load_model(tiny_model)[0]
    images, labels, _, _ = fake_mnist()
    said = network.predict(scripts["explain"].normalize(images[shown]))
    assert (said != labels[shown]).sum() == 2 and len(shown) <= 6     # two mistakes, the rest right
    width, height = png_size(tmp_path / "why.png")
    assert (width, height) == (1000, round(100 * (1.35 * (len(shown) + 1) + 0.6)))   # a row per digit, one more


def test_make_docs_images_from_a_given_model(scripts, tiny_model, tmp_path, capsys):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"model": "seed", "epochs": [
        {"train_loss": 0.3, "train_accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.95}],
        "test_loss": 0.2, "test_accuracy": 0.95}))
    scripts["make_docs_images"].main(["--model", tiny_model, "--metrics", str(metrics), "--out", "d"])
    written = {p.name for p in (tmp_path / "d").iterdir()}
    assert written == {"handmade_filters.png", "learned_filters.png", "feature_maps_edges.png",
                       "feature_maps_seed.png", "confusion_matrix.png", "misclassified.png",
                       "worst_mistake.png", "near_miss.png", "training_curves.png", "augmentations.png",
                       "backward.png"}
    assert png_size(tmp_path / "d" / "confusion_matrix.png") == (640, 560)
    output = capsys.readouterr().out
    assert "seed: " in output and "of 20 right" in output and "Commonest confusions" in output


README = SCRIPTS.parent / "README.md"
PDB_COMMAND = "python scripts/step_through.py --loop --pdb"


def readme_pdb_session():
    """The README's "Step through it in a debugger" session: the pdb commands of the code block
    that starts with ``PDB_COMMAND``, comments dropped, a command marked "three times" written
    out three times."""
    lines = README.read_text().split(PDB_COMMAND + "\n", 1)[1].split("```", 1)[0].splitlines()
    commands = []
    for line in lines:
        assert line.startswith("(Pdb) "), line
        command, _, comment = line[len("(Pdb) "):].partition("  #")
        commands += [command.strip()] * (3 if "three times" in comment else 1)
    return commands


def test_the_readme_pdb_session_works(drawn_digit, tmp_path):
    """The session, word for word, on the Python running the tests (CI runs it on the oldest
    and the newest supported ones too): the script starts pdb itself."""
    session = readme_pdb_session()
    assert session[-1] == "q" and "b Network.train_step" in session
    script, *options = PDB_COMMAND.split()[1:]
    result = subprocess.run(
        [sys.executable, str(SCRIPTS.parent / script), *options, "--image", drawn_digit],
        input="\n".join(session) + "\n", capture_output=True, text=True, cwd=tmp_path, timeout=120)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "***" not in out, out  # pdb's mark for a command that failed
    tutorial, classic = out.split("(Pdb) Breakpoint 4 at ", 1)
    for expected in ["(Pdb) (28, 28)", "(1, 28, 28)", "iterate_regions()", "(28, 28, 1)", "(0, 0)",
                     "(8, 3, 3, 1)", "Deleted breakpoint 3", "backward_pass()", "(1, 13, 13, 8)", "(1352, 10)"]:
        assert expected in tutorial, (expected, out)
    assert "network.py" in classic.split("\n", 1)[0]  # breakpoint 4: Network.train_step
    # Stopped in train_step with the batch, then in the first Conv2D's forward, called from it.
    stops = classic.split("(Pdb) ")
    assert "train_step()" in stops[1] and stops[2].startswith("(4, 28, 28)"), out
    where = next(stop for stop in stops if "train_step()" in stop and "conv.py" in stop)  # `w`
    current = [line for line in where.splitlines() if line.startswith("> ")]
    assert len(current) == 1 and "conv.py" in current[0] and current[0].endswith("forward()"), where
    assert where.index("train_step()") < where.index(current[0]), where
    for expected in ["(4, 28, 28)", "(16, 3, 3)", "Deleted breakpoint 5", "backward()", "(4, 10, 10, 64)",
                     "(64, 3, 3, 32)"]:
        assert expected in classic, (expected, out)
