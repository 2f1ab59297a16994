"""A class on one laptop (issue 24): the teacher's token, bounded resources, finite numbers, and
the compact wire formats of ``POST /api/predict``.

"Beyond loopback" is about the server's bind address, so those servers bind 0.0.0.0 and every
request still goes to 127.0.0.1: nothing here leaves this computer.
"""
import base64
import io
import json
import os
import socket
import time

import numpy as np
import pytest
from PIL import Image

from helpers import request, serving
from scratchcnn import serve
from scratchcnn.checkpoint import save_checkpoint
from scratchcnn.models import build_model
from scratchcnn.serve import classroom, retention
from scratchcnn.serve.server import Handler

TOKEN = "teacher-token-0123"
TINY = {"model": "seed", "epochs": 1, "train_size": 100}


@pytest.fixture
def room(tmp_path):
    """A server open to the room (bound to 0.0.0.0) with the teacher's token ``TOKEN``."""
    with serving(host="0.0.0.0", test_size=200, token=TOKEN, save_dir=str(tmp_path)) as srv:
        yield srv


@pytest.fixture
def local(tmp_path):
    with serving(test_size=200, save_dir=str(tmp_path)) as srv:
        yield srv


def call(srv, method, path, body=None, headers=None):
    """``(status, headers, answer)`` (JSON parsed), always to 127.0.0.1; ``body`` a dict or bytes."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    status, answer_headers, raw = request(srv, method, path, data,
                                          {"Content-Type": "application/json", **(headers or {})})
    kind = answer_headers.get("Content-Type", "")
    return status, answer_headers, json.loads(raw) if "json" in kind else raw


def wait_until_done(srv, job, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = call(srv, "GET", "/api/train")[2]
        if state["job"] == job and state["status"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} still running after {timeout} s")


def drawing(seed=1, size=280):
    """A white-on-black uint8 stroke, as the page draws it."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.uint8)
    (y0, x0), (y1, x1) = rng.integers(size // 6, size - size // 6, (2, 2))
    for t in np.linspace(0, 1, 200):
        y, x = int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))
        image[max(0, y - 9):y + 9, max(0, x - 9):x + 9] = 255
    return image


def png_of(image, mode="RGBA"):
    """``image`` as a canvas would send it: a ``data:image/png;base64,...`` URL."""
    picture = Image.fromarray(image)
    buffer = io.BytesIO()
    picture.convert(mode).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ----------------------------------------------------------------------------- the token

def test_beyond_loopback_training_needs_the_token(room):
    status, _, answer = call(room, "POST", "/api/train", TINY)
    assert status == 403 and "teacher's" in answer["error"] and TOKEN not in answer["error"]
    assert call(room, "POST", "/api/train?token=wrong-token-0000", TINY)[0] == 403
    assert call(room, "POST", "/api/train", TINY, {"Authorization": "token wrong-token-0000"})[0] == 403
    assert call(room, "POST", "/api/train", TINY, {"Authorization": f"Bearer {TOKEN}"})[0] == 403
    assert call(room, "GET", "/api/train")[2]["job"] is None, "a refused request starts nothing"

    status, _, answer = call(room, "POST", f"/api/train?token={TOKEN}", TINY)
    assert status == 202 and answer["job"] == 1
    assert call(room, "POST", "/api/train/stop", {})[0] == 403           # a student can't stop it
    wait_until_done(room, 1)
    status, _, answer = call(room, "POST", "/api/train", TINY, {"Authorization": f"token {TOKEN}"})
    assert status == 202 and answer["job"] == 2
    status, _, answer = call(room, "POST", "/api/train/stop", {}, {"Authorization": f"token {TOKEN}"})
    assert status in (202, 409)        # 409 only if the tiny job ended first
    wait_until_done(room, 2)


def test_beyond_loopback_everything_but_training_is_open_to_everyone(room):
    pixels = drawing().ravel().tolist()
    assert call(room, "POST", "/api/predict", {"width": 280, "height": 280, "pixels": pixels})[0] == 200
    assert call(room, "POST", "/api/backward", {"width": 280, "height": 280, "pixels": pixels,
                                                "label": 3})[0] == 200
    assert call(room, "GET", "/api/model")[0] == 200
    student = call(room, "GET", "/api/train")[2]
    assert student["can_train"] is False and "teacher's" in student["why_not"]
    teacher = call(room, "GET", f"/api/train?token={TOKEN}")[2]
    assert teacher["can_train"] is True and teacher["why_not"] is None
    with socket.create_connection(("127.0.0.1", room.server_address[1]), timeout=10) as sock:
        sock.sendall(b"GET /api/train/events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.0 200")


def test_on_loopback_no_token_is_needed(local):
    assert local.token is None
    assert call(local, "GET", "/api/train")[2]["can_train"] is True
    status, _, answer = call(local, "POST", "/api/train", TINY)
    assert status == 202
    wait_until_done(local, answer["job"])


def test_a_fresh_random_token_when_none_is_given_and_none_on_loopback():
    srv = serve.make_server(build_model("seed", seed=0), "0.0.0.0", 0)
    other = serve.make_server(build_model("seed", seed=0), "0.0.0.0", 0)
    local = serve.make_server(build_model("seed", seed=0), "127.0.0.1", 0, token=TOKEN)
    try:
        assert srv.token and other.token and srv.token != other.token
        assert classroom.TOKEN_CHARACTERS.fullmatch(srv.token)
        assert local.token is None
    finally:
        for server in (srv, other, local):
            server.server_close()


def test_the_token_is_compared_in_constant_time(room, monkeypatch):
    seen = []
    real = classroom.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(classroom.hmac, "compare_digest", spy)
    assert call(room, "POST", "/api/train/stop", {}, {"Authorization": "token not-the-token"})[0] == 403
    assert seen == [(b"not-the-token", TOKEN.encode())]
    assert classroom.token_matches(TOKEN, TOKEN) and not classroom.token_matches(None, TOKEN)
    assert not classroom.token_matches("é" * 10, TOKEN)      # not ASCII: compared as bytes, no error


def test_the_token_is_never_logged(tmp_path, capsys):
    with serving(test_size=200, host="0.0.0.0", token=TOKEN, log_requests=True) as srv:
        call(srv, "GET", f"/?token={TOKEN}")
        call(srv, "GET", f"/api/train?x=1&%74oken={TOKEN}&y=2")
        call(srv, "POST", f"/api/train?token={TOKEN}", b"{")                # a 400, logged as an error
        call(srv, "POST", "/api/train/stop", {}, {"Authorization": f"token {TOKEN}"})
        call(srv, "GET", f"/nowhere?token={TOKEN}")                        # a 404
    log = capsys.readouterr().err
    assert TOKEN not in log
    assert log.count("token=[hidden]") >= 3 and "%74oken=[hidden]" in log and "x=1" in log


def test_hide_token_hides_every_form():
    assert classroom.hide_token("GET /?token=abc&b=2 HTTP/1.1") == "GET /?token=[hidden]&b=2 HTTP/1.1"
    assert classroom.hide_token("GET /?a=1;TOKEN=abc HTTP/1.1") == "GET /?a=1;TOKEN=[hidden] HTTP/1.1"
    assert classroom.hide_token("Authorization: token abc") == "Authorization: token [hidden]"
    assert classroom.hide_token("GET /?tokens=abc") == "GET /?tokens=abc"


def test_the_command_line_prints_both_addresses_and_a_qr_code(tmp_path, monkeypatch, capsys):
    path = tmp_path / "seed.npz"
    save_checkpoint(str(path), build_model("seed", seed=0), model="seed")
    monkeypatch.setattr(serve.DigitServer, "serve_forever", lambda self: None)
    monkeypatch.setattr(classroom, "local_network_address", lambda: "192.168.1.20")
    serve.main(["--model", str(path), "--port", "0", "--host", "0.0.0.0", "--token", TOKEN])
    out = capsys.readouterr().out
    students = next(line for line in out.splitlines() if line.startswith("Students open: "))
    port = students.rsplit(":", 1)[1].rstrip("/")
    assert students == f"Students open: http://192.168.1.20:{port}/"
    assert f"Teacher (you) open: http://192.168.1.20:{port}/?token={TOKEN}" in out
    assert "▀" in out or "▄" in out, "a QR code drawn with half blocks"
    assert out.count(TOKEN) == 1, "the token only in the teacher's address"


@pytest.mark.parametrize("argv, message", [
    (["--token", "short"], "--token must be 8 to 128"),
    (["--token", "has space in it"], "--token must be"),
    (["--keep", "0"], "integer of 1 or more"),
    (["--max-listeners", "-1"], "integer of 1 or more"),
])
def test_bad_classroom_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve.main(argv + ["--port", "0"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------- bounded resources

def open_stream(srv):
    """A raw event-stream connection; returns ``(socket, status, what was read)``: the head of a
    stream, or the whole of a refusal (read until the server closes)."""
    sock = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10)
    sock.sendall(b"GET /api/train/events HTTP/1.1\r\nHost: x\r\n\r\n")
    read = b""
    while b"\r\n\r\n" not in read or not read.startswith(b"HTTP/1.0 200"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        read += chunk
    return sock, int(read.split()[1]), read.decode("latin-1")


def test_event_streams_are_capped_with_503_and_retry_after():
    with serving(test_size=200, max_listeners=2) as srv:
        first, second = open_stream(srv)[0], open_stream(srv)[0]
        sock, status, head = open_stream(srv)
        sock.close()
        assert status == 503 and "Retry-After: 10" in head and "--max-listeners" in head
        assert call(srv, "POST", "/api/predict", {"pixels": [0] * 784, "width": 28, "height": 28})[0] == 200
        first.close()                                       # noticed within half a second
        deadline = time.monotonic() + 10
        while srv.desk.hub.listener_count > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        sock, status, _ = open_stream(srv)
        assert status == 200
        sock.close()
        second.close()


def test_a_connection_that_sends_nothing_times_out(monkeypatch):
    monkeypatch.setattr(Handler, "timeout", 0.5)
    with serving(test_size=200) as srv:
        with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as sock:
            start_time = time.monotonic()
            assert sock.recv(4096) == b""                  # closed by the server
            assert time.monotonic() - start_time < 5


def test_keep_newest_removes_only_older_page_checkpoints(tmp_path):
    names = [f"seed-202501{day:02d}-120000-job1.npz" for day in range(1, 26)]     # 25 days
    others = ["mine.npz", "seed-notadate-job1.npz", "seed-20250101-120000-job1.npz.bak",
              "lenet-20250101-120000-job1.npz", ".seed-20250101-120000-job1.npz.unverified.npz",
              "notes.txt"]
    for name in names + others:
        (tmp_path / name).write_bytes(b"x")
    os.mkdir(tmp_path / "classic-20250101-120000-job9.npz")                      # a folder: left
    removed = retention.keep_newest(str(tmp_path), 20)
    assert sorted(removed) == names[:5]
    left = set(os.listdir(tmp_path))
    assert left == set(names[5:]) | set(others) | {"classic-20250101-120000-job9.npz"}
    assert retention.keep_newest(str(tmp_path), 20) == []


def test_the_save_folder_keeps_the_newest_n_after_each_job(tmp_path):
    old = ["seed-20240101-090000-job1.npz", "seed-20240102-090000-job1.npz",
           "classic-20240103-090000-job4.npz"]
    for name in old + ["teachers-own.npz"]:
        (tmp_path / name).write_bytes(b"x")
    with serving(test_size=200, save_dir=str(tmp_path), keep=2) as srv:
        job = call(srv, "POST", "/api/train", TINY)[2]["job"]
        state = wait_until_done(srv, job)
    saved = state["result"]["checkpoint"]
    assert retention.PAGE_CHECKPOINT.fullmatch(saved)
    assert set(os.listdir(tmp_path)) == {saved, "classic-20240103-090000-job4.npz", "teachers-own.npz"}


# ----------------------------------------------------------------------------- finite numbers

DRAWING = '"width": 28, "height": 28, "pixels": [' + ", ".join(["0"] * 784) + "]"
NUMBER_FIELDS = [  # (path, body with X where the number goes, field the message names)
    ("/api/predict", '{"width": X, "height": 28, "pixels": []}', '"width"'),
    ("/api/predict", '{"width": 28, "height": X, "pixels": []}', '"height"'),
    ("/api/predict", '{"width": 1, "height": 1, "pixels": [X]}', '"pixels"[0]'),
    ("/api/backward", '{' + DRAWING + ', "label": X}', '"label"'),
    ("/api/backward", '{' + DRAWING + ', "label": 3, "lr": X}', '"lr"'),
    ("/api/backward", '{"image": [[X]], "label": 3}', '"image"'),
    ("/api/train", '{"model": "seed", "epochs": X}', '"epochs"'),
    ("/api/train", '{"model": "seed", "train_size": X}', '"train_size"'),
    ("/api/train", '{"model": "seed", "batch_size": X}', '"batch_size"'),
    ("/api/train", '{"model": "seed", "lr": X}', '"lr"'),
]


@pytest.mark.parametrize("value", ["1e999", "-1e999", "1e400", "123456789012345678901234567890"])
@pytest.mark.parametrize("path, template, field", NUMBER_FIELDS,
                         ids=[f"{path}-{field}" for path, _, field in NUMBER_FIELDS])
def test_every_number_field_refuses_what_is_not_finite_or_out_of_range(local, path, template, field, value):
    status, _, answer = call(local, "POST", path, template.replace("X", value).encode())
    assert status == 400 and field in answer["error"], answer
    assert call(local, "GET", "/api/train")[2]["job"] is None


@pytest.mark.parametrize("lr, ok", [(10, True), (10.000001, False), (1e-12, True), (0, False)])
def test_a_jobs_lr_is_above_0_and_at_most_10(lr, ok):
    from scratchcnn.serve.training_desk import parse_train_settings
    from scratchcnn.serve.parsing import RequestError
    if ok:
        assert parse_train_settings({"model": "seed", "lr": lr})["lr"] == lr
    else:
        with pytest.raises(RequestError, match='"lr"'):
            parse_train_settings({"model": "seed", "lr": lr})


# ----------------------------------------------------------------------------- compact formats

@pytest.mark.parametrize("model", ["seed", "classic"])
def test_a_png_drawing_gives_exactly_the_answer_of_its_pixels(model):
    runner = serve.ModelRunner(build_model(model, seed=0))
    from scratchcnn.serve.parsing import drawing_from
    for seed in range(3):
        image = drawing(seed)
        by_pixels = drawing_from({"width": 280, "height": 280, "pixels": image.ravel().tolist()})
        for mode in ("RGBA", "RGB", "L"):
            by_png = drawing_from({"png": png_of(image, mode)})
            assert by_png.dtype == by_pixels.dtype and np.array_equal(by_png, by_pixels)
        assert runner.run(by_png) == runner.run(by_pixels)


def test_float32_arrays_are_the_same_numbers_unrounded(local):
    image = drawing(4)
    lists = call(local, "POST", "/api/predict", {"png": png_of(image)})[2]
    packed = call(local, "POST", "/api/predict", {"png": png_of(image), "arrays": "float32"})[2]
    assert "arrays" not in lists and packed["arrays"] == "float32"
    for key in ("prediction", "probabilities", "blank", "input"):
        assert packed[key] == lists[key]
    for as_lists, as_packed in zip(lists["layers"], packed["layers"]):
        key = "maps" if "maps" in as_lists else "values"
        values = np.frombuffer(base64.b64decode(as_packed[key]), dtype="<f4")
        expected = np.asarray(as_lists[key])
        assert values.size == expected.size and as_packed["shape"] == as_lists["shape"]
        # The lists are the float32 values rounded to 4 decimals: exactly that, no more.
        assert np.array_equal(np.round(values.astype(np.float64), 4).reshape(expected.shape), expected)
        assert as_packed["min"] == float(values.min()) and as_packed["max"] == float(values.max())
        assert round(as_packed["min"], 4) == as_lists["min"]


@pytest.mark.parametrize("body, message", [
    ({"png": "not base64!"}, '"png" is not valid base64'),
    ({"png": base64.b64encode(b"GIF89a....").decode()}, '"png" is not a PNG'),
    ({"png": 12}, '"png" must be a string'),
    ({"png": "data:image/png,abc"}, "must be base64"),
    ({"pixels": [0], "png": ""}, "either"),
    ({"arrays": "float64", "pixels": [0], "width": 1, "height": 1}, '"arrays"'),
])
def test_bad_compact_requests_get_400_naming_the_field(local, body, message):
    status, _, answer = call(local, "POST", "/api/predict", body)
    assert status == 400 and message in answer["error"], answer


def test_a_png_of_the_wrong_size_is_refused_before_it_is_decoded(local):
    assert "each side must be 1 to 1024" in call(local, "POST", "/api/predict",
                                                 {"png": png_of(np.zeros((4, 1100), np.uint8), "L")})[2]["error"]
    status, _, answer = call(local, "POST", "/api/predict", {"png": png_of(drawing()), "width": 100})
    assert status == 400 and '"width" is 100' in answer["error"]
