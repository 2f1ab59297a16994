"""The trainer CLI (``python -m scratchcnn.train``) and its loop (``scratchcnn.trainer``).

Most runs use a small synthetic MNIST look-alike patched in for ``load_mnist`` (``fake_data``
in conftest.py); two smoke runs use the real MNIST (``real_mnist`` in conftest.py, marked ``network``).
"""
import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from helpers import synthetic_mnist
from scratchcnn import train
from scratchcnn.optim import SGD
from scratchcnn.models import build_model
from scratchcnn.data.augment import affine_augment, augment_rng
from scratchcnn.data.preprocess import random_shifts
from scratchcnn.trainer import Trainer, TrainingDiverged, nice_log_every


def run(*argv):
    """``train.main`` on a small, quiet run; returns its exit code."""
    return train.main(["--quiet", "--train-size", "320", "--test-size", "100", *map(str, argv)])


def arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k.startswith(("param/", "optim/"))}


# ------------------------------------------------------------------ smoke runs

@pytest.mark.network
@pytest.mark.parametrize("model", ["seed", "mlp"])
def test_real_mnist_smoke_run(model, real_mnist, tmp_path, capsys):
    code = train.main(["--model", model, "--train-size", "500", "--test-size", "200", "--epochs", "1",
                       "--metrics", str(tmp_path / "m.json"), "--log-every", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "[Step 2] Past 2 steps: Average Loss " in out and "| Accuracy: " in out
    assert "Epoch 1/1: train loss" in out and "images/s" in out
    assert "Test Loss: " in out and " | Test Accuracy: " in out
    assert json.loads((tmp_path / "m.json").read_text())["test_accuracy"] > 0.3


def test_classic_model_runs(fake_data, capsys):
    assert train.main(["--model", "classic", "--train-size", "64", "--test-size", "32",
                       "--epochs", "1", "--quiet"]) == 0
    assert "Test Accuracy" in capsys.readouterr().out


def test_quiet_prints_only_summaries(fake_data, capsys):
    assert run("--epochs", "2", "--log-every", "1") == 0
    out = capsys.readouterr().out
    assert "Past" not in out and "Epoch 2/2" in out and "Test Loss" in out


@pytest.mark.parametrize("model, use", [("seed", "train"), ("classic", "train-large"),
                                        ("modern", "train-large"), ("mlp", "train-large")])
def test_blas_threads_are_chosen_per_model(model, use, fake_data, monkeypatch):
    from scratchcnn import engine
    uses = []
    monkeypatch.setattr(engine, "configure", lambda use="train": uses.append(use) or {"blas_threads": 1})
    assert run("--model", model, "--epochs", "0") == 0
    assert uses == ["train", use]  # before anything is computed, then once the model is known


def test_loop_layers_train_and_warn(fake_data, capsys):
    assert train.main(["--loop", "--train-size", "16", "--test-size", "8", "--batch-size", "8",
                       "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning: --loop" in out and "ms each" in out and "Test Accuracy" in out


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "scratchcnn.train", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--model", "--epochs", "--batch-size", "--lr", "--optimizer", "--train-size",
                   "--test-size", "--val-size", "--seed", "--dtype", "--data-dir", "--loop",
                   "--save", "--resume", "--metrics", "--plot", "--quiet", "--log-every"):
        assert option in result.stdout


# ------------------------------------------------------------------ outputs

def test_metrics_json_schema_and_plot(fake_data, tmp_path):
    metrics, plot = tmp_path / "out" / "m.json", tmp_path / "curves.png"
    assert run("--epochs", "2", "--val-size", "64", "--metrics", metrics, "--plot", plot,
               "--log-every", "2") == 0
    m = json.loads(metrics.read_text())
    assert m["model"] == "seed" and len(m["epochs"]) == 2
    for epoch in m["epochs"]:
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                    "images_per_second"):
            assert isinstance(epoch[key], float), key
    assert isinstance(m["test_loss"], float) and 0 <= m["test_accuracy"] <= 1
    assert m["train_seconds"] > 0 and m["validation"] == "held-out training images"
    assert m["train_size"] == 320 and m["test_size"] == 100 and m["steps"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_metrics(fake_data, tmp_path):
    results = []
    for name in ("a", "b"):
        assert run("--model", "mlp", "--epochs", "2", "--metrics", tmp_path / f"{name}.json") == 0
        m = json.loads((tmp_path / f"{name}.json").read_text())
        results.append([(e["train_loss"], e["val_loss"]) for e in m["epochs"]] + [m["test_loss"]])
    assert results[0] == results[1]


# ------------------------------------------------------------------ checkpoints and resume

@pytest.mark.parametrize("model", ["seed", "mlp", "modern"])  # dropout generators, BatchNorm statistics
def test_resume_matches_an_uninterrupted_run(model, fake_data, tmp_path):
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert run("--model", model, "--epochs", "3", "--save", whole, "--metrics", tmp_path / "w.json") == 0
    assert run("--model", model, "--epochs", "2", "--save", part) == 0
    assert run("--resume", part, "--epochs", "3", "--metrics", tmp_path / "p.json") == 0
    a, b = arrays(whole), arrays(part)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    w, p = (json.loads((tmp_path / f).read_text()) for f in ("w.json", "p.json"))
    strip = lambda m: [{k: v for k, v in e.items() if k not in ("seconds", "images_per_second")}
                       for e in m["epochs"]]
    assert strip(w) == strip(p) and w["test_loss"] == p["test_loss"]


def interrupt_at_step(monkeypatch, n):
    """Ctrl-C after the ``n``-th training step (of the process); returns the real step to
    restore with ``monkeypatch.setattr(Trainer, "_train_step", ...)``."""
    calls = []
    real_step = Trainer._train_step

    def step_then_ctrl_c(self, x, labels):
        result = real_step(self, x, labels)
        calls.append(1)
        if len(calls) == n:
            signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    return real_step


# shifted, rotated and scaled images must be drawn again alike
@pytest.mark.parametrize("extra", [[], ["--shift", "1"], ["--rotate", "10", "--scale", "0.1", "--shift", "1"]])
def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(extra, fake_data, tmp_path, monkeypatch, capsys):
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert run("--epochs", "2", "--save", whole, *extra) == 0
    real_step = interrupt_at_step(monkeypatch, 13)  # in the middle of the second epoch (10 steps per epoch)
    assert run("--epochs", "2", "--save", part, *extra) == 130
    out = capsys.readouterr().out
    assert "Interrupted" in out and "Epoch 1/2" in out and "stopped at step 3/10" in out
    assert f"--resume {part}" in out
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    assert run("--resume", part) == 0  # --epochs comes from the checkpoint
    a, b = arrays(whole), arrays(part)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("argv, reported", [
    (["--seed", "3"], ["--seed 3 (checkpoint: 0)", "start a new run"]),
    (["--optimizer", "adam"], ["--optimizer adam (checkpoint: momentum)", "does not carry over"]),
    (["--dtype", "float64"], ["--dtype float64 (checkpoint: float32)", "precision"]),
    (["--val-size", "10"], ["--val-size 10 (checkpoint: 0)", "held out"]),
])
def test_resume_refuses_changed_settings(argv, reported, fake_data, tmp_path, capsys):
    path = tmp_path / "c.npz"
    assert run("--epochs", "1", "--save", path) == 0
    before = path.read_bytes()
    assert run("--resume", path, "--epochs", "2", "--lr", "0.01", *argv) == 1
    err = capsys.readouterr().err
    assert all(text in err for text in reported) and "--lr" not in err  # --lr may change
    assert path.read_bytes() == before


def checkpoint_meta(path):
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["meta"]))


def test_resume_with_another_learning_rate_fine_tunes_and_records_it(fake_data, tmp_path, capsys):
    path, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    assert run("--epochs", "1", "--save", path) == 0
    capsys.readouterr()
    assert run("--resume", path, "--epochs", "2", "--lr", "0.01", "--metrics", metrics) == 0
    out = capsys.readouterr().out
    assert "--lr 0.03 -> 0.01" in out and "no longer matches an uninterrupted run" in out
    assert "learning rate is 0.01 (was 0.015) from epoch 2, x0.5 per epoch after" in out
    change = dict(epoch=2, step=0, option="lr", old=0.03, new=0.01)
    m = json.loads(metrics.read_text())
    assert m["changes"] == [change] and checkpoint_meta(path)["changes"] == [change]
    assert m["hyperparameters"]["lr"] == 0.01 and m["hyperparameters"]["lr_from_epoch"] == 1
    assert [e["lr"] for e in m["epochs"]] == [0.03, 0.01]
    # Resumed again without options: the new schedule goes on, nothing more is recorded.
    assert run("--resume", path, "--epochs", "3", "--metrics", metrics) == 0
    assert "note:" not in capsys.readouterr().out
    m = json.loads(metrics.read_text())
    assert m["changes"] == [change] and [e["lr"] for e in m["epochs"]] == [0.03, 0.01, 0.005]


def test_another_decay_on_resuming_keeps_the_current_rate(fake_data, tmp_path, capsys):
    path, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    assert run("--epochs", "2", "--save", path) == 0    # rates 0.03, 0.015
    capsys.readouterr()
    assert run("--resume", path, "--epochs", "4", "--lr-decay", "0.1", "--metrics", metrics) == 0
    assert "learning rate is 0.0075 from epoch 3, x0.1 per epoch after" in capsys.readouterr().out
    m = json.loads(metrics.read_text())
    assert m["changes"] == [dict(epoch=3, step=0, option="lr_decay", old=0.5, new=0.1)]
    assert np.allclose([e["lr"] for e in m["epochs"]], [0.03, 0.015, 0.0075, 0.00075])


def test_changed_augmentation_mid_epoch_is_recorded_where_it_happened(fake_data, tmp_path, monkeypatch, capsys):
    path, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    real_step = interrupt_at_step(monkeypatch, 13)
    assert run("--epochs", "2", "--save", path) == 130
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    capsys.readouterr()
    assert run("--resume", path, "--rotate", "10", "--scale", "0.1", "--metrics", metrics) == 0
    assert "continuing at epoch 2, step 3" in capsys.readouterr().out
    m = json.loads(metrics.read_text())
    assert m["changes"] == [dict(epoch=2, step=3, option="rotate", old=0.0, new=10.0),
                            dict(epoch=2, step=3, option="scale", old=0.0, new=0.1)]
    assert m["hyperparameters"]["rotate"] == 10 and len(m["epochs"]) == 2


def test_batch_size_changes_only_at_an_epoch_boundary(fake_data, tmp_path, monkeypatch, capsys):
    path, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    real_step = interrupt_at_step(monkeypatch, 13)
    assert run("--epochs", "2", "--save", path) == 130
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    capsys.readouterr()
    assert run("--resume", path, "--batch-size", "64") == 1
    err = capsys.readouterr().err
    assert "--batch-size 64 (checkpoint: 32)" in err and "after step 3 of epoch 2" in err
    assert run("--resume", path) == 0                   # finishes epoch 2 with batches of 32
    assert run("--resume", path, "--epochs", "3", "--batch-size", "64", "--metrics", metrics) == 0
    m = json.loads(metrics.read_text())
    assert m["changes"] == [dict(epoch=3, step=0, option="batch_size", old=32, new=64)]
    assert m["epochs"][-1]["train_accuracy"] is not None and m["hyperparameters"]["batch_size"] == 64


def damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "corrupt":
        i = data.index(b"param/0.filters")  # flip bytes inside the first parameter's data
        path.write_bytes(data[:i + 200] + bytes(b ^ 0xFF for b in data[i + 200:i + 260]) + data[i + 260:])
    elif how == "foreign":
        np.savez(path, weights=np.zeros(3))
    elif how == "not-npz":
        path.write_text("just some text\n")


@pytest.mark.parametrize("how", ["truncated", "corrupt", "foreign", "not-npz", "missing",
                                 "other-architecture"])
def test_bad_checkpoint_is_refused_cleanly(how, fake_data, tmp_path, capsys):
    path = tmp_path / "c.npz"
    assert run("--epochs", "1", "--save", path) == 0
    capsys.readouterr()
    extra = []
    if how == "missing":
        path.unlink()
    elif how == "other-architecture":
        extra = ["--model", "classic"]
    else:
        damage(path, how)
    before = path.read_bytes() if path.exists() else None
    assert run("--resume", path, "--epochs", "2", *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert (path.read_bytes() if path.exists() else None) == before


# ------------------------------------------------------------------ failures

def test_unwritable_output_is_refused_before_training(fake_data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run("--epochs", "1", "--save", blocker / "c.npz") == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --save") and "Epoch" not in captured.out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(fake_data, tmp_path, capsys):
    path = tmp_path / "c.npz"
    assert run("--epochs", "1", "--save", path) == 0
    good = path.read_bytes()
    capsys.readouterr()
    assert run("--epochs", "2", "--save", path, "--lr", "1e30", "--optimizer", "sgd") == 1
    err = capsys.readouterr().err
    assert "lower learning rate" in err and "left as it was" in err and "Traceback" not in err
    assert path.read_bytes() == good


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-1"], "--epochs: -1 is not an epoch count >= 0"),
    (["--batch-size", "0"], "--batch-size: 0 is not a batch size >= 1"),
    (["--lr", "0"], "--lr: 0.0 is not a learning rate > 0"),
    (["--lr", "-0.1"], "--lr: -0.1 is not a learning rate > 0"),
    (["--lr", "nan"], "--lr: nan is not a learning rate > 0"),
    (["--lr", "fast"], "--lr: expected a number"),
    (["--model", "resnet"], "--model: invalid choice: 'resnet'"),
    (["--optimizer", "rmsprop"], "--optimizer: invalid choice"),
    (["--test-size", "10001"], "--test-size: 10001 is not from 1 to 10,000"),
    (["--train-size", "60001"], "--train-size: 60001 is not from 1 to 60,000"),
    (["--train-size", "0"], "--train-size: 0 is not from 1 to 60,000"),
    (["--train-size", "59000", "--val-size", "2000"], "is more than the 60,000 training images"),
    (["--loop", "--model", "classic"], "loop layers exist only for the seed model"),
    (["--dtype", "float16"], "--dtype: invalid choice"),
    (["--rotate", "200"], "--rotate: 200.0 is not an angle in degrees from 0 to 180"),
    (["--scale", "0.7"], "--scale: 0.7 is not a fraction from 0 to 0.5"),
    (["--scale", "-0.1"], "--scale: -0.1 is not a fraction from 0 to 0.5"),
])
def test_bad_options_are_refused(argv, message, capsys):
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err


# ------------------------------------------------------------------ the loop itself

def test_nice_log_every():
    assert nice_log_every(1875) == 500 and nice_log_every(938) == 200 and nice_log_every(3) == 1
    assert nice_log_every(10) == 2


def test_random_shifts_move_whole_images():
    x = np.zeros((50, 28, 28), np.float32)
    x[:, 10:18, 10:18] = 1
    shifted = random_shifts(x, 2, np.random.default_rng(0))
    assert shifted.shape == x.shape and np.allclose(shifted.sum(axis=(1, 2)), 64)
    assert not np.array_equal(shifted, x)


def small_trainer(**augmentation):
    train_x, train_y = synthetic_mnist(64, 1)[:2]
    x = (train_x / 255 - 0.5).astype(np.float32)
    return Trainer(build_model("seed"), SGD(0.01), x, train_y.astype(np.int64), batch_size=16,
                   seed=5, **augmentation)


def test_shifts_alone_are_drawn_as_before_rotation_and_scaling_existed():
    trainer = small_trainer(shift=2)
    trainer.epoch, trainer.step = 1, 3
    x = trainer.train_x[:16]
    # What the trainer drew before --rotate and --scale existed, seeded by (seed, epoch, step).
    assert np.array_equal(trainer.augment(x), random_shifts(x, 2, np.random.default_rng([5, 1, 3])))
    assert np.array_equal(small_trainer().augment(x), x)


def test_rotation_and_scaling_draw_per_step_and_again_alike():
    trainer = small_trainer(shift=1, rotate=15, scale=0.2)
    x = trainer.train_x[:16]
    trainer.epoch, trainer.step = 2, 4
    first = trainer.augment(x)
    assert first.shape == x.shape and first.dtype == x.dtype and not np.array_equal(first, x)
    assert np.array_equal(first, affine_augment(x, augment_rng(5, 2, 4), 15, 0.2, 1))
    assert np.array_equal(trainer.augment(x), first)    # the same step draws the same images
    trainer.step = 5
    assert not np.array_equal(trainer.augment(x), first)


def test_augmentation_is_recorded_in_the_run_settings(fake_data, tmp_path, capsys):
    path, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    assert run("--epochs", "1", "--rotate", "12.5", "--scale", "0.05", "--save", path, "--metrics", metrics) == 0
    assert "turns up to 12.5 degrees, sizes 95% to 105%" in capsys.readouterr().out
    for settings in (json.loads(metrics.read_text())["hyperparameters"], checkpoint_meta(path)["hyperparameters"]):
        assert settings["rotate"] == 12.5 and settings["scale"] == 0.05 and settings["shift"] == 0


def test_trainer_stops_before_a_non_finite_update():
    train_x, train_y = synthetic_mnist(64, 1)[:2]
    x = (train_x / 255 - 0.5).astype(np.float32)
    network = build_model("seed")
    trainer = Trainer(network, SGD(1e30), x, train_y.astype(np.int64), batch_size=16)
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        trainer.fit(50)
    assert all(np.isfinite(p).all() for layer in network.layers for p in layer.params.values())


def test_a_bad_thread_setting_is_an_error_line_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setenv("SCRATCHCNN_BLAS_THREADS", "x")
    assert train.main(["--epochs", "1"]) == 1
    assert "error: SCRATCHCNN_BLAS_THREADS must be a positive integer, got 'x'" in capsys.readouterr().err
