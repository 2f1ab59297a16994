"""Training from the page: ``POST /api/train``, its event stream, stop, status, and what a
finished job changes (the served network, a saved checkpoint), in-process on a free port.

Jobs are tiny (a few hundred images, a 500-image test set) so each takes a second or two.
"""
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from helpers import request, serving
from scratchcnn import serve
from scratchcnn.checkpoint import load_checkpoint
from scratchcnn.data import normalize
from scratchcnn.imaging import to_mnist
from scratchcnn.serve import events as events_module
from scratchcnn.serve import training_desk

TINY = {"model": "seed", "epochs": 2, "train_size": 300}
LONG = {"model": "seed", "epochs": 50, "train_size": 60000}   # runs until stopped


@contextlib.contextmanager
def training_server(folder, description="test network"):
    """A page server whose jobs save to ``folder``, test on 500 images and beat every 0.3 s."""
    with serving(description=description, save_dir=str(folder), test_size=500) as srv:
        srv.desk.heartbeat_seconds = 0.3
        yield srv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with training_server(tmp_path_factory.mktemp("saved")) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path):
    with training_server(tmp_path, "fresh network") as srv:
        yield srv


def call(server, method, path, body=None):
    """``(status, parsed JSON answer)``; ``body`` a dict (sent as JSON) or bytes."""
    data = json.dumps(body) if isinstance(body, dict) else body
    status, _, answer = request(server, method, path, data, {"Content-Type": "application/json"})
    return status, json.loads(answer)


class EventStream:
    """A client of ``GET /api/train/events`` reading one block at a time."""

    def __init__(self, server):
        self.conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
        self.conn.request("GET", "/api/train/events")
        self.response = self.conn.getresponse()
        self.blocks = []   # every block read, as its raw lines (comments included)

    def next_block(self):
        lines = []
        while True:
            line = self.response.fp.readline().decode()
            if not line:
                raise EOFError("the stream ended")
            if line == "\n":
                if lines:
                    self.blocks.append(lines)
                    return lines
                continue
            lines.append(line.rstrip("\n"))

    def next_event(self):
        """``(name, data)`` of the next event, skipping comment blocks."""
        while True:
            lines = self.next_block()
            fields = [line for line in lines if not line.startswith(":")]
            if fields and not fields[0].startswith("retry:"):
                return parse_event(fields)

    def until_done(self, job):
        """Every event up to and including job ``job``'s ``done``."""
        seen = []
        while True:
            name, data = self.next_event()
            seen.append((name, data))
            if name == "done" and data["job"] == job:
                return seen

    def close(self):
        self.response.close()   # it holds the socket (HTTP/1.0: the connection let go of it)
        self.conn.close()


def parse_event(fields):
    """An event block's lines -> ``(name, data)``, checking the format: ``event:`` then exactly
    one ``data:`` line of JSON."""
    assert len(fields) == 2, fields
    assert fields[0].startswith("event: ") and fields[1].startswith("data: "), fields
    return fields[0][len("event: "):], json.loads(fields[1][len("data: "):])


def wait_until_done(server, job, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, state = call(server, "GET", "/api/train")
        if state["job"] == job and state["status"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} still running after {timeout} s")


def start_job(server, settings):
    status, answer = call(server, "POST", "/api/train", settings)
    assert status == 202, answer
    return answer["job"]


def drawing(seed=1, size=280):
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size))
    (y0, x0), (y1, x1) = rng.integers(size // 6, size - size // 6, (2, 2))
    for t in np.linspace(0, 1, 200):
        y, x = int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))
        image[max(0, y - 9):y + 9, max(0, x - 9):x + 9] = 255
    return image


def predict(server, image, network=None):
    body = {"width": 280, "height": 280, "pixels": image.astype(int).ravel().tolist()}
    if network:
        body["network"] = network
    return call(server, "POST", "/api/predict", body)


def expected_probabilities(network, image):
    return network.eval().forward(normalize(to_mnist(image / 255)[None]))[0]


# ----------------------------------------------------------------------------- starting

def test_start_answers_202_with_the_settings_and_the_models_defaults(server):
    status, answer = call(server, "POST", "/api/train", {"model": "seed", "train_size": 200, "epochs": 1})
    assert status == 202
    assert isinstance(answer["job"], int)
    assert {k: answer[k] for k in ("model", "epochs", "train_size", "batch_size", "lr")} == \
        {"model": "seed", "epochs": 1, "train_size": 200, "batch_size": 32, "lr": 0.03}
    state = wait_until_done(server, answer["job"])
    assert state["status"] == "completed" and state["settings"]["optimizer"] == "momentum"
    assert [entry["epoch"] for entry in state["history"]] == [1]
    assert 0 <= state["result"]["test_accuracy"] <= 1


def test_a_second_job_is_refused_with_409_while_one_runs_and_stop_keeps_the_network(server):
    job = start_job(server, LONG)
    try:
        status, answer = call(server, "POST", "/api/train", TINY)
        assert status == 409 and f"job {job} is still training" in answer["error"]
        assert "/api/train/stop" in answer["error"]
        assert call(server, "GET", "/api/train")[1]["status"] == "running"
    finally:
        status, answer = call(server, "POST", "/api/train/stop")
    assert status == 202 and answer == {"job": job, "status": "stopping"}
    state = wait_until_done(server, job, timeout=60)
    assert state["status"] == "stopped" and state["result"]["served"] is True
    description = call(server, "GET", "/api/model")[1]["description"]
    assert f"trained on the page (job {job})" in description
    assert call(server, "POST", "/api/train/stop")[0] == 409   # nothing runs now


@pytest.mark.parametrize("body, field", [
    ({}, '"model"'),
    ({"model": "resnet"}, '"model"'),
    ({"model": "seed", "epochs": 0}, '"epochs"'),
    ({"model": "seed", "epochs": 51}, '"epochs"'),
    ({"model": "seed", "epochs": 2.0}, '"epochs"'),
    ({"model": "seed", "epochs": True}, '"epochs"'),
    ({"model": "seed", "train_size": 99}, '"train_size"'),
    ({"model": "seed", "train_size": 60001}, '"train_size"'),
    ({"model": "seed", "batch_size": 0}, '"batch_size"'),
    ({"model": "seed", "batch_size": 1025}, '"batch_size"'),
    ({"model": "seed", "lr": 0}, '"lr"'),
    ({"model": "seed", "lr": -0.1}, '"lr"'),
    ({"model": "seed", "lr": "0.1"}, '"lr"'),
    ({"model": "seed", "learning_rate": 0.1}, '"learning_rate"'),
    (b"[1, 2]", "JSON object"),
    (b'{"model": "seed", "lr": NaN}', "not valid JSON"),
])
def test_bad_settings_get_400_naming_the_field_and_start_nothing(server, body, field):
    before = call(server, "GET", "/api/train")[1]["job"]
    status, answer = call(server, "POST", "/api/train", body)
    assert status == 400 and field in answer["error"], answer
    assert call(server, "GET", "/api/train")[1]["job"] == before


def test_status_before_any_job_and_the_models_defaults(fresh_server):
    status, state = call(fresh_server, "GET", "/api/train")
    assert status == 200 and state["job"] is None and state["status"] == "idle"
    assert state["models"]["seed"] == {"epochs": 3, "batch_size": 32, "lr": 0.03}
    assert set(state["models"]) == {"seed", "classic", "modern", "mlp"}
    assert state["limits"] == {"epochs": [1, 50], "train_size": [100, 60000], "batch_size": [1, 1024]}
    assert call(fresh_server, "POST", "/api/train/stop")[0] == 409
    status, answer = predict(fresh_server, drawing(), network="training")
    assert status == 409 and "POST /api/train" in answer["error"]
    status, answer = predict(fresh_server, drawing(), network="best")
    assert status == 400 and '"network"' in answer["error"]


# ----------------------------------------------------------------------------- the event stream

def test_the_event_stream_format_and_order(server):
    stream = EventStream(server)
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream"
    assert stream.response.getheader("Content-Length") is None
    job = start_job(server, dict(TINY, train_size=640))
    seen = stream.until_done(job)
    stream.close()
    names = [name for name, data in seen if data["job"] == job]
    events = [(name, data) for name, data in seen if data["job"] == job]

    assert names[0] == "start" and names[-1] == "done" and names.count("epoch") == 2
    start, done = events[0][1], events[-1][1]
    steps = start["steps_per_epoch"]
    assert steps == 20 and start["settings"]["train_size"] == 640
    first_snapshot = names.index("snapshot")
    assert first_snapshot < names.index("progress") and events[first_snapshot][1]["step"] == 0

    epochs = [data for name, data in events if name == "epoch"]
    for epoch in (1, 2):
        progress = [data for name, data in events if name == "progress" and data["epoch"] == epoch]
        assert progress, f"no progress in epoch {epoch}"
        assert [p["step"] for p in progress] == sorted({p["step"] for p in progress})
        assert progress[-1]["step"] == steps and progress[-1]["position"] == epoch
        for p in progress:
            assert set(p) >= {"epoch", "step", "steps_per_epoch", "loss", "accuracy", "images_per_second"}
            assert p["loss"] > 0 and 0 <= p["accuracy"] <= 1 and p["images_per_second"] > 0
        # the epoch's last progress, then its epoch event, then its snapshot
        at = names.index("epoch", names.index("start") + (0 if epoch == 1 else names.index("epoch") + 1))
        assert events[at][1]["epoch"] == epoch
        assert events[at - 1][0] == "progress" and events[at - 1][1]["step"] == steps
        assert events[at + 1][0] == "snapshot" and events[at + 1][1]["position"] == epoch
    assert set(epochs[0]) >= {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]

    snapshots = [data for name, data in events if name == "snapshot"]
    first, last = (np.array(s["filters"]) for s in (snapshots[0], snapshots[-1]))
    assert first.shape == last.shape == (8, 3, 3, 1) and snapshots[0]["layer"] == 0
    assert not np.allclose(first, last), "the filters should change while training"
    assert done["status"] == "completed" and done["test_accuracy"] == epochs[-1]["test_accuracy"]
    assert done["seconds"] > 0 and done["served"] is True


def test_a_late_joiner_gets_the_state_so_far_then_heartbeats(server):
    live = EventStream(server)
    job = start_job(server, TINY)
    seen_live = [event for event in live.until_done(job) if event[1]["job"] == job]
    live.close()

    # The job is over: its whole story is replayed, every event in order but the older
    # snapshots (only the latest is kept).
    last_snapshot = max(i for i, (name, _) in enumerate(seen_live) if name == "snapshot")
    expected = [event for i, event in enumerate(seen_live) if event[0] != "snapshot" or i == last_snapshot]
    late = EventStream(server)
    assert [late.next_event() for _ in expected] == expected
    assert late.next_block() == [": heartbeat"]    # idle: a comment every 0.3 s here
    late.close()


def test_ten_clients_get_the_same_events(server):
    streams = [EventStream(server) for _ in range(10)]
    job = start_job(server, TINY)
    results = [None] * 10

    def read(i):
        results[i] = streams[i].until_done(job)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(10)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(120)
    for stream in streams:
        stream.close()
    assert all(results) and all(result == results[0] for result in results)
    assert [name for name, _ in results[0] if _["job"] == job][-1] == "done"
    assert sum(name == "progress" for name, _ in results[0]) >= 2


def test_a_client_that_goes_away_frees_its_thread_and_never_blocks_the_trainer(server):
    wait_for_listeners(server, 0)   # the earlier tests' clients, all closed by now
    baseline_threads = threading.active_count()
    job = start_job(server, dict(TINY, train_size=2000, epochs=3))
    polite = EventStream(server)
    polite.next_event()
    abrupt = []
    for reset in (False, True):   # raw sockets: one closes normally, one resets the connection
        sock = socket.create_connection(server.server_address[:2], timeout=30)
        sock.sendall(b"GET /api/train/events HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"event:" not in received:
            received += sock.recv(4096)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        abrupt.append(sock)
    assert server.desk.hub.listener_count == 3
    polite.close()
    for sock in abrupt:
        sock.close()
    wait_for_listeners(server, 0)
    assert wait_until_done(server, job)["status"] == "completed"
    deadline = time.monotonic() + 10
    while threading.active_count() > baseline_threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= baseline_threads


def wait_for_listeners(server, count, timeout=10):
    deadline = time.monotonic() + timeout
    while server.desk.hub.listener_count != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.desk.hub.listener_count == count


def test_a_listener_that_never_reads_is_dropped_not_waited_for(monkeypatch):
    monkeypatch.setattr(events_module, "MAX_PENDING", 5)
    hub = events_module.EventHub()
    stuck, reading = hub.subscribe(), hub.subscribe()
    started = time.monotonic()
    for i in range(20):
        hub.publish("progress", {"step": i})
        assert reading.next(timeout=0) == events_module.format_event("progress", {"step": i})
    assert time.monotonic() - started < 1
    assert stuck.dropped and not reading.dropped and hub.listener_count == 1
    assert [stuck.next(timeout=0) for _ in range(6)][-1] is events_module._END


def test_replay_keeps_the_latest_snapshot_and_thins_progress(monkeypatch):
    monkeypatch.setattr(events_module, "MAX_REPLAY_PROGRESS", 10)
    hub = events_module.EventHub()
    hub.publish("start", {"job": 1}, new_job=True)
    for step in range(1, 41):
        hub.publish("progress", {"step": step})
        if step % 10 == 0:
            hub.publish("snapshot", {"step": step})
    listener = hub.subscribe()
    replay = []
    while (message := listener.next(timeout=0)) is not None:
        replay.append(message.decode())
    names = [re.match(r"event: (\w+)", block).group(1) for block in replay]
    steps = [json.loads(block.split("data: ")[1])["step"] for block in replay[1:]]
    assert names[0] == "start" and names.count("snapshot") == 1 and names[-2:] == ["progress", "snapshot"]
    assert 5 <= names.count("progress") <= 10
    assert steps == sorted(steps) and steps[-2:] == [40, 40]


# ----------------------------------------------------------------------------- networks

def test_the_finished_network_is_served_and_saved(server):
    image = drawing(7)
    job = start_job(server, TINY)
    wait_until_done(server, job)
    trained = server.desk.job.network   # the job's own network: what should now be served
    status, answer = predict(server, image)
    assert status == 200
    np.testing.assert_allclose(answer["probabilities"], expected_probabilities(trained, image),
                               rtol=1e-5, atol=1e-7)
    model = call(server, "GET", "/api/model")[1]
    assert f"trained on the page (job {job})" in model["description"]
    np.testing.assert_allclose(np.array(model["layers"][0]["filters"])[..., 0],
                               trained.layers[0].params["filters"], atol=1e-4)

    name = call(server, "GET", "/api/train")[1]["result"]["checkpoint"]
    assert name and name.endswith(f"job{job}.npz") and os.sep not in name
    saved = load_checkpoint(os.path.join(server.desk.save_dir, name))
    for layer, original in zip(saved.network.layers, trained.layers):
        for key, param in original.params.items():
            assert np.array_equal(layer.params[key], param)
    assert saved.meta["model"] == "seed" and saved.meta["epoch"] == TINY["epochs"]
    assert not [f for f in os.listdir(server.desk.save_dir) if f.startswith(".")], "temporary files left"


def test_predictions_on_the_training_snapshot_during_a_job(server):
    image = drawing(8)
    served = server.runner.network
    weights_before = [{name: p.copy() for name, p in layer.params.items()} for layer in served.layers]
    served_before = predict(server, image)[1]["probabilities"]
    job = start_job(server, LONG)
    try:
        seen = set()
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            status, answer = predict(server, image, network="training")
            assert status == 200
            seen.add(tuple(answer["probabilities"]))
            time.sleep(0.2)
        assert len(seen) >= 2, "the training snapshot's answer should change as it learns"
        # The default network is untouched while the job trains: the same object, the same
        # weights bit for bit, and the same answer to float32 rounding (the job sets the
        # process's BLAS thread count, and another count may sum the products in another order).
        assert server.runner.network is served
        for layer, before in zip(served.layers, weights_before):
            assert all(np.array_equal(layer.params[name], p) for name, p in before.items())
        served_now = predict(server, image)[1]["probabilities"]
        np.testing.assert_allclose(served_now, served_before, rtol=1e-5, atol=1e-7)
    finally:
        call(server, "POST", "/api/train/stop")
        wait_until_done(server, job, timeout=60)


def test_a_diverging_job_ends_diverged_and_changes_nothing_served(server, monkeypatch):
    monkeypatch.setattr(training_desk, "MAX_LR", 1e30)   # a learning rate that diverges at once
    image = drawing(9)
    model_before = call(server, "GET", "/api/model")[1]
    answer_before = predict(server, image)[1]
    saved_before = sorted(os.listdir(server.desk.save_dir))
    job = start_job(server, dict(TINY, lr=1e30))
    state = wait_until_done(server, job)
    assert state["status"] == "diverged"
    result = state["result"]
    assert result["served"] is False and result["checkpoint"] is None
    assert "lower learning rate" in result["message"] and "still serves" in result["message"]
    assert call(server, "GET", "/api/model")[1] == model_before
    assert predict(server, image)[1] == answer_before
    assert sorted(os.listdir(server.desk.save_dir)) == saved_before


# ----------------------------------------------------------------------------- the command line

def test_without_model_the_server_starts_untrained_at_once(monkeypatch, capsys):
    monkeypatch.setattr(serve.DigitServer, "serve_forever", lambda self: None)
    serve.main(["--port", "0"])
    out = capsys.readouterr().out
    assert "untrained" in out and "Press Train" in out and "Open http://127.0.0.1:" in out


def test_an_unusable_save_dir_is_refused_at_start_up(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        serve.main(["--port", "0", "--save-dir", str(blocker / "sub")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --save-dir") and "Traceback" not in err


def test_ctrl_c_stops_a_running_job_at_a_step_and_exits_cleanly(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "scratchcnn.serve", "--port", "0",
                                "--save-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = None
        for line in process.stdout:
            match = re.search(r"Open http://127\.0\.0\.1:(\d+)/", line)
            if match:
                url = int(match.group(1))
                break
        assert url, "the server did not print its address"

        class Address:
            server_address = ("127.0.0.1", url)
        stream = EventStream(Address)
        job = start_job(Address, dict(LONG, train_size=20000))
        while stream.next_event()[0] != "progress":
            pass
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out
    assert f"Stopping training job {job} at its next step" in out and "Stopped." in out
    assert "Traceback" not in out
    saved = [name for name in os.listdir(tmp_path) if name.endswith(f"job{job}.npz")]
    assert len(saved) == 1 and not [f for f in os.listdir(tmp_path) if f.startswith(".")]
    meta = load_checkpoint(str(tmp_path / saved[0])).meta
    assert meta["metrics"]["status"] == "stopped" and meta["trainer"]["step"] > 0


def test_requests_go_first_the_job_waits_between_steps_while_one_is_answered(monkeypatch):
    from scratchcnn.serve.jobs import RequestsFirst
    monkeypatch.setattr(RequestsFirst, "MAX_WAIT_SECONDS", 30)
    gate = RequestsFirst()
    gate.wait()                                  # nothing in flight: no wait at all
    passed = threading.Event()
    waiter = threading.Thread(target=lambda: (gate.wait(), passed.set()))
    with gate.serving(), gate.serving():         # two requests in flight
        waiter.start()
        assert not passed.wait(0.3), "the job went on while requests were being answered"
    assert passed.wait(10), "the job should continue once no request is in flight"
    waiter.join()


def test_backward_takes_the_same_network_choice(server, fresh_server, monkeypatch):
    image = drawing(10)
    body = {"width": 280, "height": 280, "pixels": image.astype(int).ravel().tolist(), "label": 3}
    status, answer = call(fresh_server, "POST", "/api/backward", dict(body, network="training"))
    assert status == 409 and "POST /api/train" in answer["error"]
    assert call(fresh_server, "POST", "/api/backward", dict(body, network="best"))[0] == 400

    # After a completed job and a diverged one, the training snapshot (the diverged job's
    # untrained start) is not the served network (the completed job's).
    wait_until_done(server, start_job(server, TINY))
    monkeypatch.setattr(training_desk, "MAX_LR", 1e30)   # a learning rate that diverges at once
    job = start_job(server, dict(TINY, lr=1e30))
    assert wait_until_done(server, job)["status"] == "diverged"
    snapshot = predict(server, image, network="training")[1]["probabilities"]
    assert snapshot != predict(server, image)[1]["probabilities"]
    status, answer = call(server, "POST", "/api/backward", dict(body, network="training"))
    assert status == 200 and answer["probabilities"] == snapshot
    assert call(server, "POST", "/api/backward", body)[1]["probabilities"] != snapshot


def test_the_training_network_is_there_as_soon_as_the_job_is_accepted(server):
    job = start_job(server, LONG)
    try:
        status, answer = predict(server, drawing(11), network="training")
        assert status == 200, answer
    finally:
        call(server, "POST", "/api/train/stop")
        wait_until_done(server, job, timeout=60)


@pytest.mark.parametrize("model", ["seed", "classic", "modern", "mlp"])
def test_page_jobs_train_with_the_command_lines_augmentation(model):
    from scratchcnn.models import TRAINING_DEFAULTS
    from scratchcnn.serve.training_desk import parse_train_settings
    settings = parse_train_settings({"model": model})
    for key in ("optimizer", "lr_decay", "shift", "rotate", "scale"):
        assert settings[key] == TRAINING_DEFAULTS[model][key], key
