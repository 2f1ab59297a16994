"""Regenerate docs/tutorial.ipynb: build its cells, run them top to bottom in a fresh kernel and
store the notebook with its outputs, so that it reads on a code-hosting site without running.

    python scripts/make_notebook.py                        # about a minute; rewrites docs/tutorial.ipynb
    python scripts/make_notebook.py --out /tmp/t.ipynb     # somewhere else
    python scripts/make_notebook.py --no-execute           # the cells only, no outputs

The notebook's text and code are CELLS below, in order: edit them here, not in the notebook,
and rerun. Progress-bar widgets are dropped from the stored copy (a widget only draws while a
kernel runs); everything else the cells print or draw is kept. Nothing is written if a cell
raises or writes to stderr (a warning, say). Needs nbformat, nbclient and ipykernel (the
``test`` extra) and MNIST (fetched on first use).
"""
import argparse
import os
import sys
import textwrap
from pathlib import Path

import nbformat

from scratchcnn.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TIMEOUT = 600  # seconds a cell may take before the run is abandoned


def md(text):
    return ("markdown", textwrap.dedent(text).strip())


def code(text):
    return ("code", textwrap.dedent(text).strip())


CELLS = [
    md("""
    # A CNN from scratch, in a notebook

    This notebook builds the classic tutorial network, a 3x3 convolution with 8 filters, then 2x2
    max pooling, then a softmax layer, out of scratchcnn's NumPy layers, one layer at a time. Along
    the way you will:

    1. build the three layers and watch the shape of the data change at each;
    2. send one digit through them and look at every feature map;
    3. compare each fast layer with its slow twin written with loops: same numbers, very
       different times;
    4. prove each layer's gradients right by measuring them, then write a layer of your own and
       check it the same way;
    5. train the network on all 60,000 MNIST training images, which takes seconds;
    6. look inside the trained network: its filters, its learning curves, its confusion matrix
       and its mistakes.

    Run the cells from top to bottom (*Run All*); the whole notebook takes about a minute. The
    first run fetches MNIST once into a cache folder (the README's *Data* section says where);
    later runs load it in a fraction of a second.
    """),
    code("""
    import time

    import numpy as np

    import scratchcnn as sc
    from scratchcnn import loops, viz
    from scratchcnn.data import load_mnist, normalize
    from scratchcnn.engine import configure

    # What python -m scratchcnn.train does first: one BLAS thread (the fastest for this small
    # network; two can be many times slower when another program keeps a core busy).
    configure("train")

    train_x, train_y, test_x, test_y = load_mnist()
    print("training images:", train_x.shape, train_x.dtype, "  labels:", train_y.shape)
    print("test images:    ", test_x.shape, test_x.dtype, "  labels:", test_y.shape)
    """),
    md("""
    Each image is 28x28 grey levels from 0 (black) to 255 (white), with a label saying which digit
    it is. The first eight training images:
    """),
    code("""
    fig = viz.new_figure(8, 1.3)  # a matplotlib Figure, 8 x 1.3 inches
    for ax, digit, label in zip(fig.subplots(1, 8), train_x, train_y):
        ax.imshow(digit, cmap="gray")
        ax.set_title(f"label {label}")
        ax.axis("off")
    fig
    """),
    md("""
    ## 1. Three layers, one at a time

    The layers work on a *batch* of images, shape `(N, 28, 28)`, so one image goes in as a batch
    of one. `normalize` scales the grey levels from 0..255 to -0.5..0.5, which keeps the first
    layer's outputs small while the network is untrained.
    """),
    code("""
    image = normalize(train_x[0])   # (28, 28) float32 in [-0.5, 0.5]
    batch = image[np.newaxis]       # (1, 28, 28): a batch of one
    rng = np.random.default_rng(0)  # seeded, so every run draws the same starting weights
    print("input:", batch.shape)
    """),
    md("""
    **Convolution.** `Conv3x3(8)` holds 8 filters of 3x3 weights. Each filter slides over the
    image; at every position it multiplies its 9 weights with the 9 pixels under it and adds the
    products up. A 3x3 window fits in 26 x 26 positions of a 28 x 28 image, so each filter makes a
    26 x 26 map, and the 8 maps are stacked along the last axis.
    """),
    code("""
    conv = sc.Conv3x3(8, rng=rng)
    conv_out = conv.forward(batch)
    print("filters:", conv.params["filters"].shape)
    print(batch.shape, "->", conv_out.shape)
    """),
    md("""
    **Max pooling.** `MaxPool2` keeps the largest value of every 2x2 block of each map, which
    halves height and width: 26 x 26 becomes 13 x 13, still 8 maps. It has nothing to learn.
    """),
    code("""
    pool = sc.MaxPool2()
    pool_out = pool.forward(conv_out)
    print(conv_out.shape, "->", pool_out.shape, "  parameters:", pool.params)
    """),
    md("""
    **Softmax.** The last layer flattens the 13 x 13 x 8 = 1,352 pooled values into one vector,
    multiplies it by a 1,352 x 10 weight matrix and adds 10 biases: one total per digit. Softmax
    then turns the totals into probabilities, positive and adding up to 1.
    """),
    code("""
    softmax = sc.Softmax(13 * 13 * 8, 10, rng=rng)
    probs = softmax.forward(pool_out)
    print(pool_out.shape, "->", probs.shape)
    print("weights:", softmax.params["weights"].shape, "  biases:", softmax.params["biases"].shape)
    print("probabilities:", np.round(probs[0], 3), "  sum:", round(float(probs[0].sum()), 6))
    """),
    md("""
    The weights are random, so every digit gets about 10%. A `Network` chains the layers and keeps
    every layer's output in `network.outputs` (the input first), which is handy for looking inside:
    """),
    code("""
    network = sc.Network([conv, pool, softmax])
    network.forward(batch)
    for layer, output in zip(network.layers, network.outputs[1:]):
        print(f"{type(layer).__name__:<8} -> {output.shape}")
    """),
    md("""
    ## 2. One digit, stage by stage

    `viz.plot_feature_maps` sends an image through a network and draws what each layer made of
    it: the input on the left, then a row per stage and a panel per filter. With random filters
    the maps are blurred, shifted or inverted copies of the digit:
    """),
    code("""
    viz.plot_feature_maps(network, image, label=train_y[0], title="Random filters")
    """),
    md("""
    Filters that mean something are easier to read. The tutorial's hand-made 4x4 edge filter is -1
    on its left half and +1 on its right half, so it responds where the image gets brighter from
    left to right: the left side of each stroke. Its negation finds the right side, its transpose
    the top, and the negated transpose the bottom. `edge_network()` puts the four in a convolution,
    followed by ReLU (negative responses become 0) and max pooling:
    """),
    code("""
    from scratchcnn.filters import EDGE_FILTERS, edge_network

    viz.plot_feature_maps(edge_network(), image, filter_names=list(EDGE_FILTERS), label=train_y[0],
                          title="Hand-made edge filters")
    """),
    md("""
    ## 3. The loop twin: same numbers, different speed

    The tutorial writes its layers with Python loops, one image and one 3x3 region at a time:
    easy to follow, slow to run. scratchcnn's layers do the same arithmetic on a whole batch with a
    few large array operations. `scratchcnn.loops` keeps the tutorial's way, with the same
    interface, so the two can be compared directly. Give the loop layers the same weights, send the
    same 16 images forward, then the same gradient backward:
    """),
    code("""
    twins = [(conv, loops.Conv3x3(8)), (pool, loops.MaxPool2()), (softmax, loops.Softmax(13 * 13 * 8, 10))]
    for fast, slow in twins:
        for name, value in fast.params.items():
            slow.params[name][...] = value  # the same weights

    images = normalize(train_x[:16])  # (16, 28, 28)
    x = images
    for fast, slow in twins:  # both get the same input: the previous fast layer's output
        fast_out, slow_out = fast.forward(x), slow.forward(x)
        print(f"forward  {type(fast).__name__:<8} largest difference {np.abs(fast_out - slow_out).max():.1e}")
        x = fast_out

    d_out = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)  # a made-up gradient
    for fast, slow in reversed(twins):
        fast_d, slow_d = fast.backward(d_out), slow.backward(d_out)
        differences = [np.abs(fast.grads[name] - slow.grads[name]).max() for name in fast.grads]
        print(f"backward {type(fast).__name__:<8} largest difference {np.abs(fast_d - slow_d).max():.1e}"
              + "".join(f", in grads[{name!r}] {d:.1e}" for name, d in zip(fast.grads, differences)))
        d_out = fast_d
    """),
    md("""
    The differences are float32 rounding: the two add the same products in a different order. (The
    test suite compares them in float64, where they agree to 1e-10.) Now the time each takes for a
    forward and a backward pass over the 16 images, on the machine running this notebook (the
    numbers stored with the notebook come from the machine that last ran it):
    """),
    code("""
    def seconds(run, repeat=3):
        \"\"\"The fastest of `repeat` calls of `run()`, in seconds.\"\"\"
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best


    x = images
    for fast, slow in twins:
        d_out = np.ones_like(fast.forward(x))
        fast_time = seconds(lambda: (fast.forward(x), fast.backward(d_out)))
        slow_time = seconds(lambda: (slow.forward(x), slow.backward(d_out)), repeat=1)
        print(f"{type(fast).__name__:<8} vectorized {fast_time * 1e3:8.2f} ms   loops {slow_time * 1e3:8.1f} ms"
              f"   {slow_time / fast_time:6,.0f} times slower")
        x = fast.forward(x)
    """),
    md("""
    ## 4. Checking gradients

    Training needs every layer's `backward`: given how the loss changes with the layer's output,
    it returns how the loss changes with the layer's input, and fills `grads` with how it changes
    with each weight. A mistake there crashes nothing; the network just learns badly. So measure
    the gradient instead of deriving it: nudge one input value (or weight) by a tiny `h`, up and
    down, and see how much the loss moves. `(loss(x + h) - loss(x - h)) / 2h` is the slope in that
    direction.

    `scratchcnn.gradcheck.check_layer` does this for every input value and every weight of a layer
    and compares with `backward`. For each gradient it reports the worst element's relative error
    `|a - n| / (|a| + |n|)` between backward's value `a` and the measured `n`, where that element
    is, and both values. (An element far smaller than the gradient's largest is divided by 1% of
    that largest instead, so rounding noise on a value that should be 0 is not called an error.)
    Right gradients stay below about 1e-7; wrong ones are near 1e-2 or worse.

    It needs float64: the measurement divides a tiny difference of two losses by `2h`, and
    float32's 7 digits would be mostly rounding. So the checks build the same three layers in
    float64:
    """),
    code("""
    from scratchcnn.gradcheck import check_layer

    rng = np.random.default_rng(2)
    checks = [
        (sc.Conv3x3(8, dtype=np.float64, rng=rng), batch.astype(np.float64)),         # the digit
        (sc.MaxPool2(), rng.standard_normal((1, 26, 26, 8))),                          # random: see below
        (sc.Softmax(13 * 13 * 8, 10, dtype=np.float64, rng=rng), rng.standard_normal((1, 13, 13, 8))),
    ]
    for layer, layer_input in checks:
        print(check_layer(layer, layer_input))
    """),
    md("""
    Why random numbers for max pooling? Its output is the largest of four values, and where two of
    them tie there is no slope: nudging one up makes it the maximum, nudging it down leaves the
    other one, and the measurement lands halfway between the two answers. A real digit has a large
    flat background, so its feature maps are full of ties. This is what the check then says (the
    layer is right; the measurement is what breaks down):
    """),
    code("""
    check_layer(sc.MaxPool2(), conv.forward(batch).astype(np.float64))
    """),
    md("""
    Where values tie, scratchcnn sends the whole gradient to the first maximum, as PyTorch does;
    the test suite checks that case separately.

    ### Your turn: a leaky ReLU

    ReLU turns negative values into 0, and their gradient is 0 too, so a unit that only ever sees
    negative inputs stops learning. A *leaky* ReLU keeps a small slope instead: `f(x) = x` where
    `x > 0`, and `f(x) = slope * x` elsewhere (`slope = 0.1`, say).

    Below is a first attempt. `forward` is right; `backward` was copied from ReLU. Run the check and
    read the report: which gradient fails, at which element, and how do the two values compare?
    """),
    code("""
    class LeakyReLU(sc.Layer):
        \"\"\"x where x > 0, slope * x elsewhere. Any shape, no parameters.\"\"\"

        def __init__(self, slope=0.1):
            super().__init__()
            self.slope = slope

        def forward(self, x):
            self.last_input = x
            return np.where(x > 0, x, self.slope * x)

        def backward(self, d_out):
            return d_out * (self.last_input > 0)  # ReLU's backward


    x = rng.standard_normal((2, 6, 6, 3))  # random values: none of them sits on the kink at 0
    check_layer(LeakyReLU(), x)
    """),
    md("""
    Fix `backward` (edit the cell above, or copy the class into a new cell) and run the check again
    until it says the gradient matches. A hint: where `x <= 0`, how much does `f` change when `x`
    changes a little? The worked answer is below.

    ### Answer

    Where `x > 0`, `f(x) = x`, so its slope is 1; elsewhere `f(x) = slope * x`, so its slope is
    `slope`. By the chain rule, `backward` multiplies the gradient arriving from above by that
    slope, element by element:
    """),
    code("""
    class LeakyReLU(sc.Layer):
        \"\"\"x where x > 0, slope * x elsewhere. Any shape, no parameters.\"\"\"

        def __init__(self, slope=0.1):
            super().__init__()
            self.slope = slope

        def forward(self, x):
            self.last_input = x
            return np.where(x > 0, x, self.slope * x)

        def backward(self, d_out):
            local_slope = np.where(self.last_input > 0, 1.0, self.slope)  # d f / d x
            return d_out * local_slope


    check_layer(LeakyReLU(), x)
    """),
    md("""
    It plugs into a network like any other layer, for example
    `sc.Network([sc.Conv3x3(8), LeakyReLU(), sc.MaxPool2(), sc.Softmax(13 * 13 * 8, 10)])`.

    ## 5. Training on all of MNIST

    Training repeats one step: take a minibatch of 32 images, run them forward, measure the
    cross-entropy loss, run backward, and let the optimizer move every weight a little against its
    gradient. `python -m scratchcnn.train` does exactly this; here its pieces are used directly.
    `build_model("seed")` is the network above, and the `Trainer` runs the command line's defaults
    for it: 3 epochs over all 60,000 images in a new random order each time, minibatches of 32,
    SGD with momentum at learning rate 0.03, halved after each epoch.

    The trainer tells a *report* object how it is going: `epoch_start`, `step` after every
    minibatch, `log` every few hundred steps, `epoch_end` with the epoch's numbers, and `close`
    (`scratchcnn.report.SilentReport` lists them, if you want to write your own).
    `ConsoleReport` is what the command line prints; in Jupyter its progress bar is a widget
    (`tqdm.auto`). A widget only draws while the notebook runs, so a stored copy, like the one a
    code-hosting site shows, keeps just the printed lines.
    """),
    code("""
    from scratchcnn.models import build_model
    from scratchcnn.report import ConsoleReport
    from scratchcnn.trainer import Trainer

    train_images, test_images = normalize(train_x), normalize(test_x)  # float32 in [-0.5, 0.5]
    train_labels, test_labels = train_y.astype(np.int64), test_y.astype(np.int64)

    model = build_model("seed", seed=0)  # Conv3x3(8) -> MaxPool2 -> Softmax(1352 -> 10)
    trainer = Trainer(model, sc.Momentum(lr=0.03), train_images, train_labels, batch_size=32, seed=0,
                      lr_decay=0.5, val=(test_images, test_labels), report=ConsoleReport(val_name="test"))
    history = trainer.fit(epochs=3)
    print(f"3 epochs of {len(train_labels):,} images in {trainer.train_seconds:.1f} s")
    """),
    md("""
    The test images are only ever looked at, never trained on, so the test accuracy is a fair
    estimate of how the network does on digits it has not seen: about 98%, from 8 filters and one
    weight matrix.

    ## 6. Inside the trained network

    **Filters.** The 8 learned 3x3 filters, with their values; mid-grey is 0, white a filter's
    largest positive weight and black its most negative. Several have turned into edge detectors,
    like the hand-made ones above.
    """),
    code("""
    viz.plot_filters(model, title="The 8 learned filters")
    """),
    md("""
    **The digit again**, through the trained filters. Compare with the random filters of part 2:
    """),
    code("""
    viz.plot_feature_maps(model, image, label=train_y[0], title="Trained filters")
    """),
    md("""
    **Learning curves.** `viz.plot_training_curves` reads the metrics `python -m scratchcnn.train
    --metrics` writes; the trainer's `history` and `step_log` hold the same numbers:
    """),
    code("""
    test_loss, test_accuracy = model.evaluate(test_images, test_labels)
    metrics = dict(model="seed", epochs=history, steps=trainer.step_log, validation="test set",
                   test_loss=float(test_loss), test_accuracy=test_accuracy)
    viz.plot_training_curves(metrics)
    """),
    md("""
    **Where it goes wrong.** Each row of the confusion matrix is a true digit and each column a
    predicted one: right answers on the green diagonal, mistakes in red, and each digit's accuracy
    on the right.
    """),
    code("""
    probs = model.predict_proba(test_images)  # (10000, 10)
    viz.plot_confusion_matrix(test_labels, probs.argmax(axis=1))
    """),
    md("""
    The test images the network got wrong most confidently, each with its index in the test set.
    Some are hard for people too; some are plain mistakes.
    """),
    code("""
    viz.plot_misclassified(test_x, test_labels, probs, count=8)
    """),
    md("""
    The most confident mistake, through the network:
    """),
    code("""
    worst = viz.most_confident_mistakes(test_labels, probs, count=1)[0]
    viz.plot_feature_maps(model, test_images[worst], label=test_labels[worst], title=f"Test image {worst}")
    """),
    md("""
    Not every mistake is confident. The nearest miss is the wrong answer that gave the right digit
    the highest probability:
    """),
    code("""
    wrong = np.flatnonzero(probs.argmax(axis=1) != test_labels)
    near_miss = wrong[np.argmax(probs[wrong, test_labels[wrong]])]
    viz.plot_probabilities(probs[near_miss], label=test_labels[near_miss], image=test_x[near_miss],
                           title=f"Test image {near_miss}: a near miss")
    """),
    md("""
    ## 7. Why did it say 7?

    `scratchcnn.explain` asks the trained network *why*, in several ways, each with its own
    blind spot. Every function takes the network, one image and the class to explain, runs on a
    float64 copy of the network through the layers' own `backward`, and returns a 28x28 map (the
    network itself is left as it was). "The logit" is the class's score before the softmax.

    **Saliency** is d logit / d pixel: how fast the score would change with each pixel. You can
    check it the way the gradient checks above did, by nudging each pixel in turn. Do it on a copy
    of the digit with a whisper of noise: MNIST's flat background and saturated strokes leave four
    equal values in most pooling windows, and there the slope differs on either side of the pixel
    (the gradient takes the first maximum's, as `MaxPool2` routes it).
    """),
    code("""
    from scratchcnn import explain

    seven = test_images[0].astype(np.float64)          # the first test image, a 7
    said = int(model.predict(seven[None])[0])
    noisy = seven + 1e-3 * np.random.default_rng(0).standard_normal(seven.shape)
    saliency = explain.saliency(model, noisy, said)

    copy64 = explain.explaining_copy(model)            # what every method runs on
    nudges = 1e-6 * np.eye(784).reshape(784, 28, 28)   # 784 images, each with one pixel nudged
    copy64.forward(noisy + nudges)
    up = copy64.layers[-1].last_totals[:, said]        # the logits: the Softmax's totals
    copy64.forward(noisy - nudges)
    down = copy64.layers[-1].last_totals[:, said]
    numeric = ((up - down) / 2e-6).reshape(28, 28)
    print(f"It says {said}. Saliency against nudging each pixel: they differ by at most "
          f"{np.abs(numeric - saliency).max():.1e}, for slopes up to {np.abs(saliency).max():.2f}")
    """),
    md("""
    **Integrated Gradients** shares out the score's rise from a blank image to this one among the
    pixels, and the shares add up to that rise; **occlusion** blanks squares and watches the
    probability drop; **Grad-CAM** says which of the 13x13 pooled positions the score leans on;
    an **adversarial** digit changes no pixel by more than `eps`, yet reads as another digit;
    the **class models** are images grown from blank to raise one digit's score. Below, the 7 and
    the network's most confident mistake through all of them (the README's *Why did it say 7?*
    says where each one misleads; the page's Explain view shows them for your own drawings):
    """),
    code("""
    shares, gap = explain.integrated_gradients(model, seven, said, with_gap=True)
    print(f"Integrated Gradients: the shares add up to {shares.sum():.4f}; "
          f"logit({said}) rose by {gap:.4f} from the blank image")
    fooled = explain.adversarial(model, seven, eps=0.15)
    print(f"Adversarial: no pixel moved by more than {np.abs(fooled - seven).max():.2f}, "
          f"and it now says {model.predict(fooled[None])[0]}")
    from scratchcnn.viz.explanations import plot_explanations
    plot_explanations(model, test_images[[0, worst]], test_labels[[0, worst]])
    """),
    md("""
    ## Where next

    * **Draw your own digits.** `python -m scratchcnn.serve` starts a small local web page: draw a
      digit and watch it flow through the layers, map by map, with the probabilities. Without
      `--model` it trains a network of its own first, in seconds. The README's *Draw a digit, watch
      it flow* section has the details.
    * **Step through it in a debugger.** `python scripts/step_through.py --loop --pdb` sends one
      image through the loop layers and back, then trains the classic network for one step, and the
      README's [*Step through it in a debugger*](../README.md#step-through-it-in-a-debugger) section
      walks through it command by command, down to the tutorial's `iterate_regions` and from
      `Network.train_step` into a `Conv2D`.
    * **Write the tutorial's layers yourself.** `python -m scratchcnn.exercises start my_layers`
      writes skeletons of `Conv3x3`, `MaxPool2` and `Softmax` to fill in; `python -m
      scratchcnn.exercises check my_layers` checks them against finite differences and names the
      mistake when a known one is made; `python -m scratchcnn.train --layers my_layers` trains MNIST
      with them. The README's [*Write the layers yourself*](../README.md#write-the-layers-yourself)
      section shows what a failure looks like.
    * **Change something and rerun.** More filters (`sc.Conv3x3(16)`, and a Softmax of
      `13 * 13 * 16` inputs), your `LeakyReLU` after the convolution, another learning rate, or the
      deeper network: `build_model("classic")`, or `python -m scratchcnn.train --model classic`.
    """),
]


def build_notebook():
    """A notebook of CELLS with no outputs, cell ids numbered so regenerating changes nothing else."""
    cells = []
    for number, (kind, source) in enumerate(CELLS, 1):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.id = f"cell-{number:02d}"
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def execute(notebook, cwd=ROOT, timeout=TIMEOUT):
    """Run every cell in a fresh ``python3`` kernel started in ``cwd``; outputs are stored in the
    cells. Raises ``nbclient.exceptions.CellExecutionError`` naming the cell that failed."""
    from nbclient import NotebookClient  # imported here: --no-execute needs only nbformat

    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def drop_widgets(notebook):
    """Remove widget outputs (progress bars), which draw only in a live kernel, and their state."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if WIDGET_VIEW not in out.get("data", {})]
    notebook.metadata.pop("widgets", None)
    return notebook


def merge_streams(notebook):
    """Join consecutive stdout (or stderr) outputs of a cell into one, as a front end shows them."""
    for cell in notebook.cells:
        merged = []
        for out in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (out.output_type == "stream" and previous is not None and previous.output_type == "stream"
                    and previous.name == out.name):
                previous.text += out.text
            else:
                merged.append(out)
        if cell.cell_type == "code":
            cell.outputs = merged
    return notebook


def problems(notebook):
    """Every error and stderr output of an executed notebook, as ``"cell N: ..."`` lines."""
    found = []
    for number, cell in enumerate(notebook.cells, 1):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {number}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                found.append(f"cell {number} wrote to stderr: {out.text.strip()[:300]}")
    return found


def write(notebook, path):
    """Validate and write ``notebook`` atomically; the file is read back and validated before it
    replaces the old one."""
    nbformat.validate(notebook)
    with atomic_write(path, "wb", verify=lambda tmp: nbformat.validate(nbformat.read(tmp, as_version=4))) as f:
        f.write(nbformat.writes(notebook).encode("utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python scripts/make_notebook.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(NOTEBOOK), help="where to write it (default: %(default)s)")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    args = parser.parse_args(argv)
    notebook = build_notebook()
    if not args.no_execute:
        print("Running the notebook in a fresh kernel (about a minute) ...", flush=True)
        merge_streams(drop_widgets(execute(notebook)))
        found = problems(notebook)
        if found:
            print("Not written: the notebook must run without errors or warnings:\n  " + "\n  ".join(found),
                  file=sys.stderr)
            return 1
    write(notebook, args.out)
    print(f"Wrote {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
