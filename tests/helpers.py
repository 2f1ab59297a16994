"""What several test files share that is not a fixture (fixtures live in conftest.py)."""
import contextlib
import http.client
import threading

import numpy as np

F64 = np.float64


def images_and_labels(rng, n, dtype=np.float64, shape=(28, 28)):
    """``n`` random images in [-0.5, 0.5) ``(n, *shape)`` (MNIST-shaped by default) and labels
    ``(n,)`` from 0 to 9."""
    return (rng.random((n, *shape)) - 0.5).astype(dtype), rng.integers(0, 10, n)


def trained_seed(rng=None, dtype=np.float64, steps=5):
    """The tutorial network after a few Momentum steps on random images (so no gradient is
    trivially 0), in evaluation mode."""
    from scratchcnn.models import build_model
    from scratchcnn.optim import Momentum
    rng = np.random.default_rng(0) if rng is None else rng
    network, optimizer = build_model("seed", dtype=dtype, seed=0), Momentum(0.05)
    for _ in range(steps):
        network.train_step(*images_and_labels(rng, 16), optimizer)
    return network.eval()


def parameters(network):
    """Copies of every parameter array of ``network``, layer by layer."""
    return [p.copy() for layer in network.layers for p in layer.params.values()]


def synthetic_mnist(n_train=640, n_test=200, seed=0):
    """An MNIST look-alike, as ``load_mnist`` returns it: uint8 ``(N, 28, 28)`` images whose
    label says which of ten 7x7 cells holds a bright square (learnable in one quick epoch)."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            r, c = divmod(int(label), 4)
            images[i, 2 + 7 * r:7 + 7 * r, 2 + 7 * c:7 + 7 * c] = 255
        return images, labels

    return (*make(n_train), *make(n_test))


# ---------------------------------------------------------------------------------- a served page

@contextlib.contextmanager
def serving(network=None, host="127.0.0.1", description="test network", test_size=None, **options):
    """``serve.make_server`` on a free port of ``host`` (``network`` None: the untrained, seeded
    tutorial network), serving in a background thread inside the block; ``options`` go to
    ``make_server`` (``save_dir``, ``token``, ...), ``test_size`` to its training desk."""
    from scratchcnn import serve
    from scratchcnn.models import build_model
    network = build_model("seed", seed=0) if network is None else network
    server = serve.make_server(network, host, 0, description=description, **options)
    if test_size is not None:
        server.desk.test_size = test_size  # the test accuracy after each epoch: quick
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(server, method, path, body=None, headers=None, timeout=30):
    """``(status, headers, body bytes)`` of one request to ``server``, always through 127.0.0.1
    (a server bound to 0.0.0.0 listens there too); the path is sent exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
