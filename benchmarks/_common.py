"""What the benchmark scripts share: timing, the machine description, tables, JSON, plots, and the
page server in a child process (``ServerProcess``) with requests to it (``ServerClient``).

Each script calls ``setup(use)`` first: it applies the BLAS-thread and allocator settings of
``scratchcnn.engine`` (before any timed NumPy work) and returns them for the report header.
"""
import http.client
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout even without `pip install -e .`

from scratchcnn.engine import configure  # noqa: E402  (imports NumPy; configure() handles that)


def setup(use="benchmark"):
    return configure(use)


def time_call(fn, repeats=7, min_time=0.05, warmup=2, max_calls=None):
    """Seconds per call of ``fn()``: ``(median, spread)`` over ``repeats`` timings.

    Each timing runs ``fn`` enough times to last ``min_time`` (so timer resolution and one-off
    hiccups don't matter); spread is (max - min) / 2 of the repeats, a conservative error bar.
    """
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(min_time / one))
    if max_calls:
        calls = min(calls, max_calls)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples), (max(samples) - min(samples)) / 2


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine():
    """CPU, cores, Python, NumPy and its BLAS, and the thread settings in force."""
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average": [round(v, 2) for v in load_average()],
    }


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def markdown_table(headers, rows):
    """Rows of values -> a markdown table (floats formatted by the caller)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(seconds_per_image):
    """A time per image in the unit that reads best."""
    us = seconds_per_image * 1e6
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.1f} us" if us >= 10 else f"{us:.2f} us"


def header(title, settings):
    m = machine()
    return (f"## {title}\n\n{m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']} "
            f"({m['blas']}); BLAS threads {settings['blas_threads']}, allocator tuning "
            f"{'on' if settings['malloc_tuned'] else 'off'}; load average at start "
            f"{m['load_average'][0]:.2f}; commit {git_commit()}\n")


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file beside it and a rename, so a run
    stopped halfway never leaves a truncated result where an older whole one was."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, payload):
    if path:
        payload = {"machine": machine(), "commit": git_commit(), **payload}
        write_atomically(path, json.dumps(payload, indent=1))
        print(f"\nwrote {path}")


def pyplot():
    """matplotlib's pyplot with a non-interactive backend (the scripts only write files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def common_arguments(parser):
    parser.add_argument("--quick", action="store_true", help="a run of a few seconds (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="also write a PNG plot")
    parser.add_argument("--markdown", metavar="PATH", help="also write the printed tables to a file")
    return parser


def emit(text, args):
    print(text)
    if args.markdown:
        write_atomically(args.markdown, text + "\n")


# ----------------------------------------------------------------------------------------------
# Child processes: every measurement that depends on the thread count runs in a fresh one.

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads):
    """The environment of a child that must run NumPy's BLAS (and PyTorch's OpenMP) on ``threads``
    threads: set before the child starts, so every library reads it when it loads."""
    env = dict(os.environ, SCRATCHCNN_BLAS_THREADS=str(threads))
    env.update({name: str(threads) for name in BLAS_VARIABLES})
    return env


def run_child(script, payload, threads, timeout):
    """Run ``script --child JSON`` on ``threads`` threads; the dict it prints as its last line, or
    ``{"failed": reason}`` (a crash, an exception, a timeout): the caller reports it and goes on."""
    command = [sys.executable, os.path.abspath(script), "--child", json.dumps(payload)]
    try:
        proc = subprocess.run(command, env=thread_env(threads), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        return {"failed": lines[-1][:200]}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"failed": f"printed no result: {proc.stdout[-200:]!r}"}


def measure_per_item(step, items_per_call, samples, min_time, warmup_time):
    """Seconds per item of ``step()``: the median of ``samples`` timings, each running ``step``
    for at least ``min_time`` seconds, after warming up for ``warmup_time`` (at least one call)."""
    start = time.perf_counter()
    step()
    while time.perf_counter() - start < warmup_time:
        step()
    timings = []
    for _ in range(samples):
        calls, start = 0, time.perf_counter()
        while True:
            step()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        timings.append(elapsed / (calls * items_per_call))
    return statistics.median(timings)


def model_names(text, parser):
    """``"seed,classic"`` -> ``["seed", "classic"]``, or a usage error naming the unknown ones."""
    from scratchcnn.models import MODEL_NAMES
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown or not names:
        parser.error(f"--models: unknown {', '.join(unknown) or 'empty list'}; "
                     f"expected some of {', '.join(MODEL_NAMES)}")
    return names


def positive_ints(text, option, parser):
    """``"1,2"`` -> ``[1, 2]``, or a usage error."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        parser.error(f"{option}: expected comma-separated positive integers, got {text!r}")
    return values


class ServerClient:
    """Requests to a page server (``python -m scratchcnn.serve``) on loopback ``port``."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, timeout=60):
        """``(status, body bytes)``: one request on a fresh connection, as a page sends it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def state(self):
        """``GET /api/train``'s answer."""
        return json.loads(self.call("GET", "/api/train")[1])


class ServerProcess(ServerClient):
    """``python -m scratchcnn.serve --host 127.0.0.1 --port 0 *args`` in a child process (loopback
    only), with ``env`` (default: this process's) and the scratchcnn of ``checkout`` (default: this
    one); its output is read on a thread so its pipe never fills."""

    def __init__(self, *args, env=None, checkout=None):
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1",
                   PYTHONPATH=checkout or os.path.dirname(HERE))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scratchcnn.serve", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in self.process.stdout:
            match = re.search(r"Open http://127\.0\.0\.1:(\d+)/", line)
            if match:
                super().__init__(int(match.group(1)))
                threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
                return
        raise RuntimeError("the server did not start")

    def close(self):
        self.process.terminate()
        self.process.wait(30)
