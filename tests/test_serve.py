"""``scratchcnn.serve``: the JSON API, in-process on an ephemeral port, with an untrained network.

Covers the happy path (shapes, and the same numbers as running the network directly), every
kind of bad request (413, 400 with a message, 404, 405, 411), that no request reaches the file
system, that 20 concurrent requests answer exactly as 20 sequential ones, and the command line.
"""
import json
import socket
import threading

import numpy as np
import pytest

from helpers import request, serving
from scratchcnn import serve
from scratchcnn.serve import routes
from scratchcnn.checkpoint import save_checkpoint
from scratchcnn.data import normalize
from scratchcnn.imaging import to_mnist
from scratchcnn.models import build_model


@pytest.fixture(scope="module")
def server():
    """The tutorial network (untrained, seeded) served on a free port in a background thread."""
    with serving() as srv:
        yield srv


call = request  # (status, headers, body bytes)


def raw(server, request_bytes):
    """Send raw bytes, return the status code of the answer."""
    with socket.create_connection(server.server_address[:2], timeout=20) as sock:
        sock.sendall(request_bytes)
        answer = sock.recv(4096)
    return int(answer.split()[1])


def stroke_drawing(seed, size=280):
    """A white-on-black (size, size) drawing of one thick random line, as the page draws it."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.float64)
    (y0, x0), (y1, x1) = rng.integers(size // 6, size - size // 6, (2, 2))
    for t in np.linspace(0, 1, 200):
        y, x = int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))
        image[max(0, y - 9):y + 9, max(0, x - 9):x + 9] = 255
    return image


def predict(server, image):
    body = json.dumps({"width": image.shape[1], "height": image.shape[0],
                       "pixels": image.astype(int).ravel().tolist()})
    status, _, answer = call(server, "POST", "/api/predict", body, {"Content-Type": "application/json"})
    assert status == 200, answer
    return json.loads(answer)


# ----------------------------------------------------------------------------- happy path

@pytest.mark.parametrize("path, ctype, marker", [
    ("/", "text/html", b'<canvas id="pad" width="280" height="280"'),
    ("/static/main.js", "text/javascript", b'from "./drawing_flow.js"'),
    ("/static/drawing_flow.js", "text/javascript", b"/api/predict"),
    ("/static/style.css", "text/css", b"#pad"),
])
def test_page_files_are_served(server, path, ctype, marker):
    status, headers, body = call(server, "GET", path)
    assert status == 200
    assert headers["Content-Type"].startswith(ctype)
    assert marker in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_page_loads_nothing_from_elsewhere(server):
    for path in routes.STATIC_FILES:
        body = call(server, "GET", path)[2].decode()
        assert "http://" not in body and "https://" not in body, path


def test_model_description(server):
    status, _, body = call(server, "GET", "/api/model")
    assert status == 200
    model = json.loads(body)
    assert model["description"] == "test network"
    assert model["input_shape"] == [28, 28] and model["num_classes"] == 10
    conv, pool, softmax = model["layers"]
    assert (conv["type"], pool["type"], softmax["type"]) == ("Conv3x3", "MaxPool2", "Softmax")
    assert conv["output_shape"] == [26, 26, 8] and pool["output_shape"] == [13, 13, 8]
    assert softmax["output_shape"] == [10]
    assert conv["window"] == {"size": 3, "stride": 1, "padding": 0}
    assert pool["window"] == {"size": 2, "stride": 2, "padding": 0}
    assert softmax["window"] is None
    filters = np.array(conv["filters"])
    assert filters.shape == (8, 3, 3, 1)
    expected = server.runner._network.layers[0].params["filters"][..., None]
    np.testing.assert_allclose(filters, expected, atol=1e-4)


def test_predict_matches_running_the_network_directly(server):
    image = stroke_drawing(1)
    answer = predict(server, image)

    seen = to_mnist(image / 255)
    assert np.array_equal(np.array(answer["input"], np.uint8), seen)
    network = build_model("seed", seed=0).eval()
    expected = network.forward(normalize(seen[None]))[0]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-5, atol=1e-7)
    assert answer["prediction"] == int(np.argmax(expected))
    assert answer["blank"] is False

    conv, pool, softmax = answer["layers"]
    assert conv["shape"] == [26, 26, 8] and np.array(conv["maps"]).shape == (8, 26, 26)
    assert pool["shape"] == [13, 13, 8] and np.array(pool["maps"]).shape == (8, 13, 13)
    assert softmax["shape"] == [10] and len(softmax["values"]) == 10
    np.testing.assert_allclose(np.array(conv["maps"]),
                               np.moveaxis(network.outputs[1][0], -1, 0), atol=1e-4)
    assert conv["min"] == pytest.approx(network.outputs[1].min(), abs=1e-4)
    assert conv["max"] == pytest.approx(network.outputs[1].max(), abs=1e-4)


def test_other_sizes_and_polarity(server):
    small = stroke_drawing(2, size=56)
    white_paper = 255 - small[:, :40]          # black ink on white, 40 wide x 56 high
    answer = predict(server, white_paper)
    assert np.array_equal(np.array(answer["input"], np.uint8), to_mnist(white_paper / 255))
    assert answer["input"] and not answer["blank"]


def test_blank_drawing(server):
    answer = predict(server, np.zeros((280, 280)))
    assert answer["blank"] is True
    assert not np.any(answer["input"])
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-5)


def test_default_size_is_the_canvas(server):
    body = json.dumps({"pixels": [0] * (280 * 280)})
    assert call(server, "POST", "/api/predict", body)[0] == 200


# ----------------------------------------------------------------------------- bad requests

def test_body_over_the_limit_is_refused_with_413(server):
    body = b'{"pixels": [' + b"0," * (serve.MAX_BODY_BYTES // 2) + b"0]}"
    assert len(body) > serve.MAX_BODY_BYTES
    status, _, answer = call(server, "POST", "/api/predict", body)
    assert status == 413
    assert "limit" in json.loads(answer)["error"]


def test_a_claimed_huge_body_is_refused_without_waiting_for_it(server):
    request = (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{")
    assert raw(server, request) == 413


@pytest.mark.parametrize("body, message", [
    (b"not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe\xfa", "not"),
    (b"[" * 100_000, "not valid JSON"),
    (b"[1, 2, 3]", "expected a JSON object"),
    (b'{"width": 280}', 'missing "pixels"'),
    (b'{"pixels": "0,0,0"}', "must be a flat list"),
    (b'{"pixels": [0, 0, 0]}', "has 3 values"),
    (b'{"width": 2, "height": 2, "pixels": [[0, 0], 0, 0, 0]}', '"pixels"[0] is [0, 0], not a number'),
    (b'{"width": 2, "height": 2, "pixels": [0, "1", 0, 0]}', '"pixels"[1] is "1", not a number'),
    (b'{"width": 2, "height": 2, "pixels": [0, 0, null, 0]}', '"pixels"[2] is null'),
    (b'{"width": 2, "height": 2, "pixels": [0, 0, 0, true]}', '"pixels"[3] is true'),
    (b'{"width": 2, "height": 2, "pixels": [0, -1, 0, 0]}', "outside 0..255"),
    (b'{"width": 2, "height": 2, "pixels": [0, 256, 0, 0]}', "outside 0..255"),
    (b'{"width": 2, "height": 2, "pixels": [0, 1e999, 0, 0]}', "outside 0..255"),
    (b'{"width": 2, "height": 2, "pixels": [0, NaN, 0, 0]}', "not valid JSON"),
    (b'{"width": 2, "height": 2, "pixels": [0, 10' + b"0" * 400 + b', 0, 0]}', "outside 0..255"),
    (b'{"width": 0, "height": 2, "pixels": []}', '"width" must be an integer'),
    (b'{"width": "280", "pixels": []}', '"width" must be an integer'),
    (b'{"width": 2.0, "height": 2, "pixels": [0, 0, 0, 0]}', '"width" must be an integer'),
    (b'{"height": 5000, "pixels": []}', '"height" must be an integer'),
])
def test_malformed_requests_get_400_with_a_message(server, body, message):
    status, headers, answer = call(server, "POST", "/api/predict", body)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(answer)["error"]


def test_missing_content_length_is_refused(server):
    assert raw(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n") == 411
    chunked = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert raw(server, chunked) == 411
    assert raw(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n") == 400


@pytest.mark.parametrize("path", [
    "/nope", "/api", "/api/", "/static/", "/static/index.html", "/static/serve.py",
    "/../setup.cfg", "/static/../../setup.cfg", "/static/../serve.py", "/static/%2e%2e/%2e%2e/setup.cfg",
    "/%2e%2e/setup.cfg", "//etc/passwd", "/etc/passwd", "/static/..%2f..%2fsetup.cfg",
    "/static//main.js", "/static/app.js", "/README.md", "/scratchcnn/serve.py",
])
def test_unknown_paths_are_404_and_never_read_files(server, path):
    status, _, answer = call(server, "GET", path)
    assert status == 404
    error = json.loads(answer)["error"]
    assert error.startswith("no such page")
    assert b"[metadata]" not in answer and b"root:" not in answer


def test_unknown_api_paths_are_404(server):
    assert call(server, "POST", "/api/nope", b"{}")[0] == 404
    assert call(server, "POST", "/../api/predict", b"{}")[0] == 404


def test_wrong_methods_get_405(server):
    status, headers, answer = call(server, "GET", "/api/predict")
    assert status == 405 and headers["Allow"] == "POST" and "POST" in json.loads(answer)["error"]
    status, headers, _ = call(server, "POST", "/", b"{}")
    assert status == 405 and headers["Allow"] == "GET"


def test_a_route_is_one_line_in_the_table_and_can_stream(server, monkeypatch):
    """What the later API routes rely on: registering a function in ``routes.ROUTES`` is all it
    takes, other methods on its path get 405, and a route may stream without a length."""
    def stream_two_events(request):
        request.send_head(200, "text/event-stream")
        for number in (1, 2):
            request.wfile.write(f"event: tick\ndata: {number}\n\n".encode())
            request.wfile.flush()

    monkeypatch.setitem(routes.ROUTES, ("GET", "/api/ticks"), stream_two_events)
    status, headers, body = call(server, "GET", "/api/ticks")
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert "Content-Length" not in headers
    assert body == b"event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n"
    status, headers, _ = call(server, "POST", "/api/ticks", b"{}")
    assert status == 405 and headers["Allow"] == "GET"


def test_query_strings_are_ignored(server):
    assert call(server, "GET", "/?x=1")[0] == 200
    assert call(server, "GET", "/static/main.js?v=2")[0] == 200


def test_the_server_keeps_serving_after_bad_requests(server):
    call(server, "POST", "/api/predict", b"{")
    with socket.create_connection(server.server_address[:2], timeout=20) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        sock.recv(4096)
    assert predict(server, stroke_drawing(3))["layers"]


# ----------------------------------------------------------------------------- threads

def test_20_concurrent_requests_answer_as_sequential_ones(server):
    drawings = [stroke_drawing(seed) for seed in range(20)]
    sequential = [predict(server, image) for image in drawings]
    assert len({answer["prediction"] for answer in sequential} | {json.dumps(a["input"]) for a in sequential}) > 2

    for _ in range(3):  # a race shows up only sometimes: give it three chances
        concurrent = [None] * len(drawings)
        start = threading.Barrier(len(drawings))

        def worker(i):
            start.wait()
            try:
                concurrent[i] = predict(server, drawings[i])
            except Exception as e:  # reported below rather than lost in the thread
                concurrent[i] = repr(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(drawings))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        failed = [answer for answer in concurrent if not isinstance(answer, dict)]
        assert not failed, failed
        assert concurrent == sequential  # every probability and every map, exactly


def test_the_shared_network_is_never_run(server):
    predict(server, stroke_drawing(4))
    for layer in server.runner._network.layers:
        assert not hasattr(layer, "last_input"), f"{layer} was run: its cache is shared by threads"


def test_runner_works_for_deeper_models():
    network = build_model("classic", seed=0)
    runner = serve.ModelRunner(network)
    info = runner.info["layers"]
    assert len(info) == len(network.layers) and info[-1]["output_shape"] == [10]
    deep_convs = [(entry, layer) for entry, layer in zip(info, network.layers)
                  if "filters" in entry and layer.in_channels > 1]
    assert deep_convs, "the classic network should have a convolution over several maps"
    for entry, layer in deep_convs:
        filters = layer.params["filters"]                      # (F, k, k, C)
        assert np.array(entry["filters"]).shape == filters.shape
        assert entry["window"] == {"size": layer.kernel_size, "stride": layer.stride,
                                   "padding": layer.padding}
    answer = runner.run(stroke_drawing(5) / 255)
    for entry, out in zip(info, answer["layers"]):
        assert out["shape"] == entry["output_shape"]
        if len(out["shape"]) == 3:
            h, w, c = out["shape"]
            assert np.array(out["maps"]).shape == (c, h, w)
    mlp = serve.ModelRunner(build_model("mlp", seed=0))
    assert all(layer["window"] is None for layer in mlp.info["layers"])
    assert len(mlp.run(stroke_drawing(5) / 255)["layers"][1]["values"]) == 512


# ----------------------------------------------------------------------------- command line

@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "seed.npz"
    save_checkpoint(str(path), build_model("seed", seed=0), model="seed")
    return str(path)


def test_main_prints_the_url_and_says_it_binds_loopback(checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(serve.DigitServer, "serve_forever", lambda self: None)
    serve.main(["--model", checkpoint, "--port", "0"])
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "only this computer" in out
    assert "Open http://127.0.0.1:" in out


def test_main_warns_when_listening_beyond_loopback(checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(serve.DigitServer, "serve_forever", lambda self: None)
    serve.main(["--model", checkpoint, "--port", "0", "--host", "0.0.0.0"])
    assert "WARNING: other computers" in capsys.readouterr().out


def test_main_refuses_a_bad_checkpoint_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    for path in (str(bad), str(tmp_path / "missing.npz")):
        with pytest.raises(SystemExit) as exit_info:
            serve.main(["--model", path, "--port", "0"])
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err


def test_main_reports_a_port_in_use(checkpoint, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            serve.main(["--model", checkpoint, "--port", str(port)])
    assert exit_info.value.code == 1
    assert "already in use" in capsys.readouterr().err


def test_main_refuses_a_bad_port(capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve.main(["--port", "70000"])
    assert exit_info.value.code == 2
    assert "port must be 0..65535" in capsys.readouterr().err


def test_without_model_the_tutorial_network_is_trained_briefly(monkeypatch, capsys):
    """The wiring only (a stand-in trainer writes the checkpoint and metrics): the real
    training is the trainer's business and its own tests'."""
    from scratchcnn import train
    calls = []

    def fake_train(argv):
        calls.append(argv)
        save_checkpoint(argv[argv.index("--save") + 1], build_model("seed", seed=3), model="seed")
        with open(argv[argv.index("--metrics") + 1], "w") as f:
            json.dump({"test_accuracy": 0.9391}, f)
        return 0

    monkeypatch.setattr(train, "main", fake_train)
    network, description = serve.train_briefly()
    assert calls and calls[0][:6] == ["--model", "seed", "--epochs", "1", "--train-size",
                                      str(serve.BRIEF_TRAIN_SIZE)]
    assert "trained just now" in description and "93.9% test accuracy" in description
    assert "No --model given: training the tutorial network" in capsys.readouterr().out
    expected = build_model("seed", seed=3).layers[0].params["filters"]
    assert np.array_equal(network.layers[0].params["filters"], expected)

    monkeypatch.setattr(train, "main", lambda argv: 1)
    with pytest.raises(serve.TrainingFailed, match="exit code 1"):
        serve.train_briefly()
