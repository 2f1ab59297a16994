"""End to end in a real headless Chromium: draw a "1" on the page, get the prediction back.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) and Selenium (in the ``test`` extra). Skipped, saying which is missing,
only when no browser or driver can be found. Writes a screenshot to pytest's ``tmp_path`` and
copies it to ``artifacts/serve-browser.png`` (gitignored).
"""
import os
import shutil
from pathlib import Path

import pytest

from helpers import serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium():
    """``(browser, driver)`` paths, or ``pytest.skip`` saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed: "
                                    "pip install -e '.[test]'")
    browser = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        missing = " and ".join(name for name, path in (("chromium", browser), ("chromedriver", driver))
                               if not path)
        pytest.skip(f"no {missing} found (install with: apt-get install -y chromium chromium-driver; "
                    "or set $CHROMIUM / $CHROMEDRIVER)")
    return webdriver, browser, driver


@pytest.fixture(scope="module")
def server():
    with serving(description="untrained test network") as srv:
        yield srv


@pytest.fixture
def browser(tmp_path):
    webdriver, browser_path, driver_path = find_chromium()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def draw_one(browser, pad):
    """A "1" with the mouse: one slightly slanted vertical stroke (offsets from the pad's centre)."""
    from selenium.webdriver.common.action_chains import ActionChains

    stroke = ActionChains(browser, duration=20).move_to_element_with_offset(pad, 8, -95).click_and_hold()
    for _ in range(10):
        stroke.move_by_offset(-2, 19)
    stroke.release().perform()


def test_draw_a_one_and_watch_it_flow(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 15)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#probs li")) == 10)
    assert "untrained test network" in browser.find_element(By.ID, "model-info").text

    # A "1": one slightly slanted vertical stroke, drawn with the mouse (offsets from the centre).
    pad = browser.find_element(By.ID, "pad")
    draw_one(browser, pad)

    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    prediction = int(browser.find_element(By.ID, "prediction").text)

    # The 10 probabilities as bars, adding up to 100%, the winner highlighted.
    bars = browser.find_elements(By.CSS_SELECTOR, "#probs li")
    percents = [float(bar.find_element(By.TAG_NAME, "i").text.rstrip("%")) for bar in bars]
    assert len(bars) == 10 and sum(percents) == pytest.approx(100, abs=0.6)
    winners = browser.find_elements(By.CSS_SELECTOR, "#probs li.winner")
    assert len(winners) == 1 and int(winners[0].get_attribute("data-digit")) == prediction
    assert percents[prediction] == max(percents)

    # The feature maps: the input, 8 convolution maps (26x26), 8 pooled maps (13x13), painted.
    stages = browser.find_elements(By.CSS_SELECTOR, ".stage")
    assert len(stages) == 4
    sizes = browser.execute_script("""
        return [...document.querySelectorAll('.stage')].map(stage =>
            [...stage.querySelectorAll('canvas')].map(c => {
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let lit = 0;
                for (let i = 0; i < data.length; i += 4) lit += data[i] + data[i + 1] + data[i + 2] > 60;
                return [c.width, c.height, lit];
            }));""")
    assert [len(stage) for stage in sizes] == [1, 8, 8, 1]
    assert all(w == 26 and h == 26 for w, h, _ in sizes[1])
    assert all(w == 13 and h == 13 for w, h, _ in sizes[2])
    input_lit = sizes[0][0][2]
    assert 20 < input_lit < 400, "the 28x28 input should show a stroke, not a blank or a blob"
    seen = browser.execute_script("""
        const c = document.getElementById('seen'), d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
        const cols = new Set(), rows = new Set();
        for (let i = 0; i < 28 * 28; i++) if (d[4 * i] > 128) { rows.add(Math.floor(i / 28)); cols.add(i % 28); }
        return [rows.size, cols.size];""")
    assert seen[0] >= 18 and seen[1] <= 8, f"a '1' is tall and thin in 28x28, got rows/cols {seen}"

    # Hovering a convolution pixel shows the 3x3 window on the input and the filter's values.
    conv_map = stages[1].find_elements(By.CSS_SELECTOR, ".map canvas")[2]
    ActionChains(browser).move_to_element(conv_map).perform()
    wait.until(lambda d: "filter 3" in d.find_element(By.ID, "inspect").text)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#inspect table.grid td")) == 18  # window + filter
    windows = [w for w in browser.find_elements(By.CSS_SELECTOR, ".stage .window, #seen-wrap .window")
               if w.is_displayed()]
    assert len(windows) == 2  # on the input stage and on "what the network sees"

    # A second stroke with a finger (touch pointer) is sent too; Clear empties the page.
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    status = browser.find_element(By.ID, "status")
    touch = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top];", pad)
    touch.pointer_action.move_to_location(int(box[0] + 100), int(box[1] + 60)).pointer_down()
    for step in range(1, 6):
        touch.pointer_action.move_to_location(int(box[0] + 100 + 12 * step), int(box[1] + 60))
    touch.pointer_action.pointer_up()
    touch.perform()
    wait.until(lambda d: "Stroke 2" in status.text)

    screenshot = tmp_path / "serve-browser.png"
    browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "serve-browser.png")

    browser.find_element(By.ID, "clear").click()
    assert browser.find_element(By.ID, "prediction").text == "?"

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


# ----------------------------------------------------------------------------- watch it learn

@pytest.fixture(scope="module")
def training_server(tmp_path_factory):
    with serving(description="untrained test network", save_dir=str(tmp_path_factory.mktemp("saved")),
                 test_size=1000) as srv:
        yield srv


CANVAS_DATA = """
    const c = typeof arguments[0] === 'string' ? document.querySelector(arguments[0]) : arguments[0];
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join(',');"""
LIT_PIXELS = """
    const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) lit += d[i + 3] > 0 && d[i + 2] > 200 && d[i] < 150;  // the blue line
    return lit;"""


def draw_seven(browser, pad):
    from selenium.webdriver.common.action_chains import ActionChains
    stroke = ActionChains(browser, duration=20).move_to_element_with_offset(pad, -60, -80).click_and_hold()
    for _ in range(6):
        stroke.move_by_offset(20, 0)
    for _ in range(9):
        stroke.move_by_offset(-8, 20)
    stroke.release().perform()


def probabilities(browser):
    """The 10 bars' probabilities, unrounded (shown to 0.1%, a confident network's bars would
    look still while it learns); the bars are rebuilt on every answer."""
    return browser.execute_script("return [...document.querySelectorAll('#probs li')].map(li => li.dataset.probability);")


def test_train_from_the_page_and_watch_it_learn(training_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(training_server.url)
    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#probs li")) == 10)
    wait.until(lambda d: d.find_element(By.ID, "train-epochs").get_attribute("value") == "3")  # seed's defaults
    pad = browser.find_element(By.ID, "pad")
    draw_seven(browser, pad)
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    untrained = probabilities(browser)

    # A job far longer than the test (a fast machine trains 4 epochs of 15,000 before the drawing
    # below is scored), stopped once an epoch has ended.
    for field, value in (("train-epochs", "50"), ("train-size", "60000")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "train-start").click()

    # The curves and the filters appear, then change; the drawing is re-scored by the snapshots.
    loss, filters = browser.find_element(By.ID, "train-loss"), browser.find_element(By.ID, "train-filters")
    wait.until(lambda d: "Epoch" in d.find_element(By.ID, "train-status").text)
    assert browser.find_element(By.ID, "train-stop").is_enabled()
    wait.until(lambda d: d.execute_script(LIT_PIXELS, loss) > 20)
    first_curve = browser.execute_script(CANVAS_DATA, loss)
    assert len(filters.find_elements(By.TAG_NAME, "canvas")) == 8
    first_filters = browser.execute_script(CANVAS_DATA, "#train-filters canvas")
    wait.until(lambda d: d.execute_script(CANVAS_DATA, loss) != first_curve)
    wait.until(lambda d: d.execute_script(CANVAS_DATA, "#train-filters canvas") != first_filters)
    wait.until(lambda d: probabilities(d) != untrained)

    # A drawing made during training is scored by the training network, and its bars move.
    assert "training" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    browser.find_element(By.ID, "clear").click()
    draw_seven(browser, pad)
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    during = probabilities(browser)
    wait.until(lambda d: probabilities(d) != during)

    # Stopped once the accuracy curve has points: a line says the page now serves the network
    # just trained, and it does.
    slow = WebDriverWait(browser, 180, poll_frequency=0.2)
    slow.until(lambda d: d.execute_script(LIT_PIXELS, d.find_element(By.ID, "train-accuracy")) > 20)
    browser.find_element(By.ID, "train-stop").click()
    slow.until(lambda d: d.find_element(By.ID, "train-done").is_displayed())
    assert browser.find_element(By.ID, "train-status").text.startswith("Stopped: ")
    assert "now serves the network just trained" in browser.find_element(By.ID, "train-done").text
    wait.until(lambda d: "trained on the page (job 1)" in d.find_element(By.ID, "model-info").text)
    assert not browser.find_element(By.ID, "train-stop").is_enabled()
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())

    screenshot = tmp_path / "serve-train.png"
    browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "serve-train.png")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

def test_the_backward_view(server, browser, tmp_path, monkeypatch):
    """Draw, flip to the backward view, hover gradient pixels (pooling, convolution, softmax),
    tap one with a finger, ask "what if it were a ...?", take a step, then show a mistake."""
    import numpy as np
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from scratchcnn.serve import backward_routes as serve_backward

    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20) % 10
    monkeypatch.setattr(serve_backward, "_test_sets", {None: (images, labels)})

    browser.get(server.url)
    wait = WebDriverWait(browser, 15)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#probs li")) == 10)
    inspect = browser.find_element(By.ID, "inspect")
    pad = browser.find_element(By.ID, "pad")
    draw_one(browser, pad)
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    prediction = int(browser.find_element(By.ID, "prediction").text)
    # The forward view has a colour legend per stage.
    assert len([l for l in browser.find_elements(By.CSS_SELECTOR, "#stages .legend") if l.is_displayed()]) == 4

    # The switch: the forward maps hide, the gradients appear, the target is the prediction.
    browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=backward]").click()
    wait.until(lambda d: "Loss L = −log p" in d.find_element(By.ID, "bw-loss").text)
    assert not browser.find_element(By.ID, "stages").is_displayed()
    assert f"Target {prediction} (the prediction)" in browser.find_element(By.ID, "bw-target").text
    stages = browser.find_elements(By.CSS_SELECTOR, "#backward .bw-stage")
    titles = [s.find_element(By.TAG_NAME, "h3").text for s in stages]
    starts = ["Loss → probabilities", "dL/d(output of 2. MaxPool2)", "dL/d(output of 1. Conv3x3)",
              "dL/dx: the saliency map", "What 3. Softmax looks for"]     # from the loss back to the pixels
    assert len(titles) == 5 and all(t.startswith(start) for t, start in zip(titles, starts)), titles
    legends = [l.text for l in browser.find_elements(By.CSS_SELECTOR, "#backward .bw-stage h3 .legend")]
    assert all("values" in text or "·" in text for text in legends) and len(legends) == 5
    lit = browser.execute_script("""
        return [...document.querySelectorAll('#backward .maps .map canvas')].filter(c => c.width > 1).map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lit = 0;
            for (let i = 0; i < d.length; i += 4) lit += d[i] + d[i + 1] + d[i + 2] > 90;
            return [c.width, lit];
        });""")
    assert [w for w, _ in lit[:8]] == [13] * 8 and [w for w, _ in lit[8:16]] == [26] * 8
    assert sum(n for _, n in lit[:16]) > 50, "the gradient maps should not be blank"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".filter-pair")) == 8

    # Hover: a pixel of dL/d(conv output), which max pooling sent back...
    conv_grads = stages[2].find_elements(By.CSS_SELECTOR, ".maps .map canvas")
    ActionChains(browser).move_to_element_with_offset(conv_grads[1], -10, -6).perform()
    wait.until(lambda d: "Max pooling kept the" in inspect.text)
    assert "the other three got 0" in inspect.text.replace("\n", " ")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#inspect table.grid td")) == 8   # 2x2 forward + 2x2 gradient
    # ... a saliency pixel, which sums upstream gradient x filter weight over its windows ...
    saliency = stages[3].find_element(By.CSS_SELECTOR, ".map canvas")
    ActionChains(browser).move_to_element(saliency).perform()
    wait.until(lambda d: "9 of the 3×3 windows" in inspect.text)
    cells = browser.find_elements(By.CSS_SELECTOR, "#inspect table.grid td")
    total = float(browser.find_element(By.CSS_SELECTOR, "#inspect .equation .op").text.lstrip("= "))
    assert sum(float(c.text) for c in cells) == pytest.approx(total, rel=0.02, abs=1e-6)
    # ... and a logit: p - 1 at the target.
    ActionChains(browser).move_to_element(
        stages[0].find_element(By.CSS_SELECTOR, f"td[data-digit='{prediction}']")).perform()
    wait.until(lambda d: "dL/dz = p − 1" in inspect.text)
    # Tap to inspect, with a finger, on a pooled-gradient pixel.
    pooled = stages[1].find_elements(By.CSS_SELECTOR, ".maps .map canvas")[0]
    box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top];", pooled)
    touch = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    touch.pointer_action.move_to_location(int(box[0] + 30), int(box[1] + 30)).pointer_down().pointer_up()
    touch.perform()
    wait.until(lambda d: "feeds all 10 logits" in inspect.text)

    # "What if it were a ...?": click another digit's bar; the loss is taken at it.
    other = (prediction + 1) % 10
    loss_before = browser.find_element(By.ID, "bw-loss").text
    browser.find_element(By.CSS_SELECTOR, f"#probs li[data-digit='{other}']").click()
    wait.until(lambda d: f"what if it were a {other}?" in d.find_element(By.ID, "bw-target").text)
    assert browser.find_element(By.ID, "bw-loss").text != loss_before
    assert browser.find_element(By.CSS_SELECTOR, "#probs li.target").get_attribute("data-digit") == str(other)

    # One step: the probabilities before and after, the target's going up.
    browser.find_element(By.ID, "bw-step").click()
    wait.until(lambda d: d.find_element(By.ID, "bw-after").is_displayed())
    rows = browser.find_elements(By.CSS_SELECTOR, "#bw-after li")
    assert len(rows) == 10
    before, after = (float(p.rstrip("%")) for p in rows[other].find_element(By.TAG_NAME, "i").text.split(" → "))
    assert after > before

    # The templates: ten, then one digit's eight channels.
    assert len(browser.find_elements(By.CSS_SELECTOR, ".template")) == 10
    browser.find_elements(By.CSS_SELECTOR, ".template")[other].click()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".template")) == 8

    # A test image the network gets wrong, shown on the pad and through both views.
    browser.find_element(By.ID, "test-mistake").click()
    wait.until(lambda d: "Test image #" in d.find_element(By.ID, "status").text)
    status = browser.find_element(By.ID, "status").text
    index = int(status.split("#")[1].split(",")[0])
    assert f"labelled {labels[index]}" in status and f"the network says {labels[index]};" not in status
    assert f"Target {labels[index]} (the true label)" in browser.find_element(By.ID, "bw-target").text
    ActionChains(browser).move_to_element(browser.find_element(By.ID, "bw-step")).perform()

    screenshot = tmp_path / "serve-backward.png"
    browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "serve-backward.png")

    browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=forward]").click()
    assert browser.find_element(By.ID, "stages").is_displayed()
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
