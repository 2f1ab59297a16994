"""``python -m scratchcnn.exercises`` (start, check) and ``--layers`` of train and serve.

The tests fill the skeletons that ``start`` writes the way a learner would: with correct code
(``SOLUTIONS``), and with each catalogued mistake written into it (``MISTAKES``), whose hint
the check must print.
"""
import os
import re
import textwrap

import numpy as np
import pytest

from scratchcnn import train
from scratchcnn.checkpoint import load_checkpoint
from scratchcnn.exercises import command, hints, learner
from scratchcnn.models import build_model


SOLUTIONS = {
    "Conv3x3.forward": """
        n, h, w = x.shape
        out = np.zeros((n, h - 2, w - 2, self.num_filters))
        for a in range(3):
            for b in range(3):
                out += x[:, a:a + h - 2, b:b + w - 2, np.newaxis] * filters[:, a, b]
        return out
        """,
    "Conv3x3.backward": """
        n, h, w = x.shape
        d_filters = np.zeros(filters.shape)
        d_x = np.zeros(x.shape)
        for a in range(3):
            for b in range(3):
                d_filters[:, a, b] = np.einsum("nij,nijf->f", x[:, a:a + h - 2, b:b + w - 2], d_out)
                d_x[:, a:a + h - 2, b:b + w - 2] += d_out @ filters[:, a, b]
        self.grads["filters"] = d_filters
        return d_x
        """,
    "MaxPool2.forward": """
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        """,
    "MaxPool2.backward": """
        n, h, w, c = x.shape
        windows = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
        windows = windows.reshape(n, h // 2, w // 2, c, 4)
        d_windows = np.zeros(windows.shape)
        np.put_along_axis(d_windows, windows.argmax(axis=-1)[..., None], d_out[..., None], axis=-1)
        return d_windows.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(x.shape)
        """,
    "Softmax.forward": """
        totals = x @ self.params["weights"] + self.params["biases"]
        exp = np.exp(totals - totals.max(axis=1, keepdims=True))
        self.last_output = exp / exp.sum(axis=1, keepdims=True)
        return self.last_output
        """,
    "Softmax.backward": """
        p = self.last_output
        d_totals = p * (d_out - (d_out * p).sum(axis=1, keepdims=True))
        self.grads["weights"] = self.last_input.T @ d_totals
        self.grads["biases"] = d_totals.sum(axis=0)
        return (d_totals @ self.params["weights"].T).reshape(self.last_input_shape)
        """,
}

EVERY_TIED_PIXEL = """
        n, h, w, c = x.shape
        out = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        is_max = x == np.repeat(np.repeat(out, 2, axis=1), 2, axis=2)
        return is_max * np.repeat(np.repeat(d_out, 2, axis=1), 2, axis=2)
        """

# name: (method, text of the solution to replace, its replacement, layer, the hint expected)
MISTAKES = {
    "flipped kernel": ("Conv3x3.forward", "filters[:, a, b]", "filters[:, 2 - a, 2 - b]",
                       "Conv3x3", hints.FLIPPED_FORWARD),
    "flipped in backward": ("Conv3x3.backward", "@ filters[:, a, b]", "@ filters[:, 2 - a, 2 - b]",
                            "Conv3x3", hints.FLIPPED_BACKWARD),
    "transposed gradient": ("Conv3x3.backward", "d_filters[:, a, b] =", "d_filters[:, b, a] =",
                            "Conv3x3", hints.TRANSPOSED),
    "one image only": ("Conv3x3.backward", 'np.einsum("nij,nijf->f", x[:, a:a + h - 2, b:b + w - 2], d_out)',
                       'np.einsum("ij,ijf->f", x[-1, a:a + h - 2, b:b + w - 2], d_out[-1])',
                       "Conv3x3", hints.ONE_IMAGE.format(image=2)),
    "factor of N": ("Conv3x3.backward", 'self.grads["filters"] = d_filters',
                    'self.grads["filters"] = d_filters / n', "Conv3x3", hints.MEAN.format(n=3)),
    "wrong sign": ("Conv3x3.backward", "d_x[:, a:a + h - 2, b:b + w - 2] +=",
                   "d_x[:, a:a + h - 2, b:b + w - 2] -=", "Conv3x3", hints.WRONG_SIGN),
    "every pixel of the window": ("MaxPool2.backward", SOLUTIONS["MaxPool2.backward"],
                                  "return np.repeat(np.repeat(d_out, 2, axis=1), 2, axis=2)",
                                  "MaxPool2", hints.EVERY_PIXEL),
    "every tied maximum": ("MaxPool2.backward", SOLUTIONS["MaxPool2.backward"], EVERY_TIED_PIXEL,
                           "MaxPool2", hints.TIED),
    "bias gradient missing": ("Softmax.backward", 'self.grads["biases"] = d_totals.sum(axis=0)', "",
                              "Softmax", hints.BIAS_MISSING),
    "no max subtracted": ("Softmax.forward", "totals - totals.max(axis=1, keepdims=True)", "totals",
                          "Softmax", hints.NO_MAX),
    "weights gradient transposed": ("Softmax.backward", "self.last_input.T @ d_totals",
                                    "d_totals.T @ self.last_input", "Softmax", hints.TRANSPOSED_SHAPE),
    "grads accumulate": ("Softmax.backward", 'self.grads["weights"] =', 'self.grads["weights"] +=',
                         "Softmax", hints.ACCUMULATES),
    "the tutorial's one-entry shortcut": ("Softmax.backward", "p = self.last_output",
                                          "p = self.last_output\n"
                                          "        d_out = d_out * (np.arange(d_out.shape[1]) == 0)",
                                          "Softmax", hints.TUTORIAL_SHORTCUT),
}

STUB = re.compile(r'^( *)raise NotImplementedError\("(\w+\.\w+) is not implemented yet"\)$', re.M)


def start(folder):
    assert command.main(["start", str(folder)]) == 0
    return folder


def fill(folder, bodies=SOLUTIONS):
    """Replace the skeletons' ``raise NotImplementedError`` lines in ``folder`` with ``bodies``."""
    for stem in ("conv3x3", "maxpool2", "softmax"):
        path = folder / f"{stem}.py"
        text = STUB.sub(lambda m: textwrap.indent(textwrap.dedent(bodies[m.group(2)]).strip("\n"), m.group(1))
                        if m.group(2) in bodies else m.group(0), path.read_text())
        path.write_text(text)
    return folder


def with_mistake(method, old, new):
    bodies = dict(SOLUTIONS)
    assert old in bodies[method], old
    bodies[method] = bodies[method].replace(old, new)
    return bodies


def check(folder, *layers, capsys):
    """``check`` on ``folder``: ``(exit code, output, {layer: its section of the output})``."""
    code = command.main(["check", str(folder), *layers])
    out = capsys.readouterr().out
    sections = dict(re.findall(r"^(Conv3x3|MaxPool2|Softmax), .*?\n(.*?)(?=^\S|\Z)", out, re.M | re.S))
    return code, out, sections


def words(text):
    return " ".join(text.split())


@pytest.fixture
def solved(tmp_path):
    return fill(start(tmp_path / "mine"))


# ------------------------------------------------------------------ start

def test_start_writes_the_skeletons_and_never_overwrites(tmp_path, capsys):
    folder = start(tmp_path / "new" / "ex")
    names = sorted(os.listdir(folder))
    assert names == ["README.md", "conv3x3.py", "maxpool2.py", "softmax.py"]
    readme = (folder / "README.md").read_text()
    assert f"python -m scratchcnn.exercises check {folder}" in readme and "--layers" in readme
    conv = (folder / "conv3x3.py").read_text()
    assert "class Conv3x3(Layer):" in conv and "(N, H - 2, W - 2, num_filters)" in conv
    (folder / "softmax.py").write_text("# my work\n")
    assert command.main(["start", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "conv3x3.py exists already" in err and "nothing was written" in err
    assert (folder / "softmax.py").read_text() == "# my work\n"

    only_readme = tmp_path / "other"
    only_readme.mkdir()
    (only_readme / "README.md").write_text("mine")
    assert command.main(["start", str(only_readme)]) == 1
    assert os.listdir(only_readme) == ["README.md"] and "README.md exists" in capsys.readouterr().err


# ------------------------------------------------------------------ check

def test_untouched_skeletons_are_not_implemented_yet(tmp_path, capsys):
    code, out, sections = check(start(tmp_path / "ex"), capsys=capsys)
    assert code == 1
    assert sorted(sections) == ["Conv3x3", "MaxPool2", "Softmax"]
    for name, section in sections.items():
        assert "passed  constructs" in section
        assert f"FAILED  forward's shape: {name}.forward is not implemented yet" in section
    assert "0 of 3 layers pass" in out


@pytest.mark.parametrize("module", ["scratchcnn.layers", "scratchcnn.loops"])
def test_scratchcnns_own_layers_pass(module, tmp_path, capsys):
    folder = tmp_path / "own"
    folder.mkdir()
    for stem, name in (("conv3x3", "Conv3x3"), ("maxpool2", "MaxPool2"), ("softmax", "Softmax")):
        (folder / f"{stem}.py").write_text(f"from {module} import {name}\n")
    code, out, sections = check(folder, capsys=capsys)
    assert code == 0, out
    assert "FAILED" not in out and "All 3 layers pass" in out
    assert "grads['filters'] matches finite differences" in sections["Conv3x3"]
    assert "ties: each window's gradient goes to one of its tied maxima" in sections["MaxPool2"]
    assert "stays finite and sums to 1" in sections["Softmax"]


def test_filled_in_skeletons_pass_every_check(solved, capsys):
    code, out, sections = check(solved, capsys=capsys)
    assert code == 0, out
    assert [line.split()[0] for section in sections.values() for line in section.splitlines()
            if line.strip()] == ["passed"] * 23


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_known_mistake_is_named(mistake, solved, capsys):
    method, old, new, layer, hint = MISTAKES[mistake]
    fill(start(solved.parent / "wrong"), with_mistake(method, old, new))
    code, out, sections = check(solved.parent / "wrong", capsys=capsys)
    assert code == 1
    assert "FAILED" in sections[layer] and words(f"hint: {hint}") in words(sections[layer]), out
    for other in set(sections) - {layer}:
        assert "FAILED" not in sections[other]
    failure = sections[layer].split("FAILED", 1)[1]
    if "has shape" not in failure:  # a wrong value: both arrays and the worst element, indexed
        assert re.search(r"expected \[.*\n.*got +\[.*\n.*worst element \[[\d, ]+\]: expected", failure), failure


def test_a_learners_exception_shows_their_traceback_and_the_next_layer_is_checked(tmp_path, capsys):
    bodies = with_mistake("Conv3x3.forward", "out = np.zeros(", "out = np.zeroes(")
    folder = fill(start(tmp_path / "ex"), bodies)
    code, out, sections = check(folder, capsys=capsys)
    assert code == 1
    conv = sections["Conv3x3"]
    assert "FAILED  forward's shape: your code raised AttributeError" in conv
    assert f'File "{folder / "conv3x3.py"}", line' in conv and "np.zeroes(" in conv
    assert "scratchcnn/exercises" not in conv  # the checker's own frames are left out
    assert "FAILED" not in sections["MaxPool2"] + sections["Softmax"]
    assert "2 of 3 layers pass (MaxPool2, Softmax); Conv3x3 fails" in out


def test_files_that_dont_load(tmp_path, capsys):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "conv3x3.py").write_text("class Conv3x3:\n    pass\n")
    (folder / "maxpool2.py").write_text("def forward(x:\n")
    code, out, sections = check(folder, capsys=capsys)
    assert code == 1
    assert "Conv3x3 is not a subclass of scratchcnn.layers.Layer" in sections["Conv3x3"]
    assert "your code raised SyntaxError" in sections["MaxPool2"] and "line 1" in sections["MaxPool2"]
    assert "there is no" in sections["Softmax"] and "exercises start" in sections["Softmax"]


def test_check_some_layers_and_usage_errors(solved, tmp_path, capsys):
    code, out, sections = check(solved, "softmax", "MaxPool2.py", capsys=capsys)
    assert code == 0 and sorted(sections) == ["MaxPool2", "Softmax"]
    assert command.main(["check", str(tmp_path / "nowhere")]) == 2
    assert "no folder" in capsys.readouterr().err
    assert command.main(["check", str(solved), "dense"]) == 2
    assert "unknown layer 'dense'" in capsys.readouterr().err
    assert command.main([]) == 2


# ------------------------------------------------------------------ train --layers

def run(*argv):
    """``train.main`` on 320 training and 100 test images (of ``fake_data``), one epoch."""
    return train.main(["--quiet", "--epochs", "1", "--train-size", "320", "--test-size", "100",
                       *map(str, argv)])


def test_train_with_correct_layers_follows_the_seed_network(solved, fake_data, tmp_path, capsys):
    assert run("--layers", solved, "--save", tmp_path / "mine.npz", "--metrics", tmp_path / "mine.json") == 0
    out = capsys.readouterr().out
    assert f"Your layers in {solved} pass all 23 checks" in out
    assert re.search(r"Your layers: a training step of 32 images takes [\d.,]+ ms, so this run "
                     r"\(1 epoch of 320 images, evaluating 100 after each\) needs about", out)
    assert run("--save", tmp_path / "seed.npz") == 0
    mine, seed = load_checkpoint(tmp_path / "mine.npz"), load_checkpoint(tmp_path / "seed.npz")
    # An ordinary checkpoint: scratchcnn's layers, the learner's weights, which are the seed
    # network's (the same start, the same steps, the same arithmetic up to rounding).
    assert [type(layer).__module__ for layer in mine.network.layers] == ["scratchcnn.layers.conv",
                                                                           "scratchcnn.layers.pool",
                                                                           "scratchcnn.layers.softmax"]
    for a, b in zip(mine.network.layers, seed.network.layers):
        for name in a.params:
            np.testing.assert_allclose(a.params[name], b.params[name], atol=1e-4)
    assert mine.meta["metrics"]["epochs"][0]["val_accuracy"] == pytest.approx(
        seed.meta["metrics"]["epochs"][0]["val_accuracy"], abs=0.011)


def test_train_refuses_wrong_layers_before_any_step(tmp_path, monkeypatch, capsys):
    method, old, new, layer, hint = MISTAKES["every tied maximum"]
    folder = fill(start(tmp_path / "ex"), with_mistake(method, old, new))
    monkeypatch.setattr(train.run, "load_mnist", lambda data_dir=None: pytest.fail("loaded the data"))
    assert run("--layers", folder) == 1
    captured = capsys.readouterr()
    assert "FAILED  ties" in captured.out and words(hint) in words(captured.out)
    assert "Epoch" not in captured.out
    assert f"your MaxPool2 in {folder} fails the checks above, so nothing was trained" in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--model", "classic"], "not --model classic"),
    (["--resume", "run.npz"], "can't --resume"),
    (["--loop"], "pick one"),
])
def test_train_layers_refuses_what_it_cant_do(argv, message, solved, capsys):
    assert run("--layers", solved, *argv) == 2
    assert message in capsys.readouterr().err
    assert run("--layers", solved.parent / "nowhere") == 2


def test_a_layer_keeping_a_copy_of_its_weights_is_refused(tmp_path, fake_data, capsys):
    folder = fill(start(tmp_path / "ex"))
    conv = folder / "conv3x3.py"
    text = conv.read_text()
    keeps = '        self.grads["filters"] = np.zeros((num_filters, 3, 3))\n'
    reads = '        filters = self.params["filters"]      # (num_filters, 3, 3)\n        # Step 1: one'
    assert keeps in text and reads in text
    conv.write_text(text.replace(keeps, keeps + '        self.kept = self.params["filters"]\n')
                    .replace(reads, reads.replace('self.params["filters"]', "self.kept")))
    assert run("--layers", folder) == 1
    assert "read their parameters from self.params" in capsys.readouterr().err


# ------------------------------------------------------------------ serve --layers

def test_serve_builds_the_network_from_the_layers_and_a_checkpoint(solved, tmp_path, capsys):
    from scratchcnn.checkpoint import save_checkpoint
    trained = build_model("seed", seed=3)
    save_checkpoint(tmp_path / "run.npz", trained)
    network, description = learner.network_to_serve(str(solved), str(tmp_path / "run.npz"))
    assert description == f"your layers from {solved}, with the weights of run.npz"
    assert type(network.layers[0]).__module__.startswith("scratchcnn_learner_")
    x = np.random.default_rng(0).standard_normal((3, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(network.predict_proba(x), trained.predict_proba(x), atol=1e-5)
    assert "Train on the page trains scratchcnn's own layers" in capsys.readouterr().out


def test_serve_fills_what_the_page_needs_and_says_so(solved, capsys):
    conv = solved / "conv3x3.py"
    conv.write_text(re.sub(r"\n    window = .*\n", "\n", conv.read_text()))
    network, description = learner.network_to_serve(str(solved))
    assert network.layers[0].window == (3, 1, 0) and "untrained" in description
    assert "your Conv3x3 has no `window`" in capsys.readouterr().out


def test_serve_refuses_layers_with_train_first(solved, capsys):
    from scratchcnn.serve import command as serve_command
    with pytest.raises(SystemExit) as exit_info:
        serve_command.main(["--layers", str(solved), "--train-first"])
    assert exit_info.value.code == 2 and "--train-first trains scratchcnn's own layers" in capsys.readouterr().err
