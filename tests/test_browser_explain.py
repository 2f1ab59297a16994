"""The page's Explain view in a real headless Chromium: draw, open Explain, try every method,
read a pixel by mouse and by finger, fool the network, see the class models, take a test image;
and on an MLP, Grad-CAM greyed out. Skipped (saying why) where no Chromium can be found, as
``tests/test_browser.py``, whose browser it borrows. Writes ``artifacts/serve-explain.png``."""
import shutil

import numpy as np
import pytest
from helpers import serving
from test_browser import ARTIFACTS, browser, draw_one  # noqa: F401  (browser: the fixture)

from scratchcnn.models import build_model
from scratchcnn.serve import backward_routes as serve_backward
from scratchcnn.serve import explain_routes

pytestmark = pytest.mark.browser
METHODS = ["saliency", "gradient_times_input", "smoothgrad", "integrated_gradients", "occlusion",
           "grad_cam", "adversarial"]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(explain_routes, "CLASS_MODEL_STEPS", 10)       # the page is what's tested
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    monkeypatch.setattr(serve_backward, "_test_sets", {None: (images, np.arange(20) % 10)})
    with serving(description="untrained test network") as srv:
        yield srv


def answered(method):
    """A wait condition: the Explain view shows ``method``'s answer."""
    from selenium.webdriver.common.by import By

    def done(driver):
        view = driver.find_element(By.ID, "explain")
        if view.get_attribute("data-state") == "error":
            raise AssertionError(driver.find_element(By.CSS_SELECTOR, "#explain .ex-status").text)
        return view.get_attribute("data-method") == method and view.get_attribute("data-state") == "done"
    return done


def lit_pixels(browser, canvas_id):
    return browser.execute_script("""
        const c = document.getElementById(arguments[0]), d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4) lit += d[i] + d[i + 1] + d[i + 2] > 60;
        return lit;""", canvas_id)


def test_the_explain_view(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#probs li")) == 10)
    draw_one(browser, browser.find_element(By.ID, "pad"))
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    prediction = int(browser.find_element(By.ID, "prediction").text)

    # The switch's third button: the forward maps hide, saliency of the prediction appears.
    browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=explain]").click()
    wait.until(answered("saliency"))
    assert not browser.find_element(By.ID, "stages").is_displayed()
    assert not browser.find_element(By.ID, "backward").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=explain]").get_attribute("aria-pressed") == "true"
    numbers = browser.find_element(By.CSS_SELECTOR, "#explain .ex-numbers")
    assert f"It says {prediction}" in numbers.text and f"explaining {prediction}" in numbers.text
    assert "·" in browser.find_element(By.CSS_SELECTOR, "#explain .ex-legend").text
    assert lit_pixels(browser, "ex-overlay") > 20 and lit_pixels(browser, "ex-alone") > 20
    about = browser.find_element(By.CSS_SELECTOR, "#explain .ex-about").text
    assert "d logit / d pixel" in about and "Where it misleads" in about

    # Every method answers, each with its own line on what it shows.
    abouts = set()
    for method in METHODS:
        browser.find_element(By.CSS_SELECTOR, f"#explain .ex-methods [data-method={method}]").click()
        wait.until(answered(method))
        abouts.add(browser.find_element(By.CSS_SELECTOR, "#explain .ex-about").text)
        fool = browser.find_element(By.CSS_SELECTOR, "#explain .ex-fool")
        assert fool.is_displayed() == (method == "adversarial")
        if method == "integrated_gradients":        # the two numbers, which agree (completeness)
            total = float(browser.find_element(By.CSS_SELECTOR, "#explain .ex-sum").text)
            gap = float(browser.find_element(By.CSS_SELECTOR, "#explain .ex-gap").text)
            assert abs(total - gap) <= 0.01 * max(abs(gap), 0.1) + 1e-4
        if method == "grad_cam":
            assert "13×13 map" in numbers.text
        if method == "adversarial":
            captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#explain .ex-fig figcaption")]
            assert captions[1].startswith("the adversarial digit:") and "magnified" in captions[2]
            assert "After it says" in numbers.text
            assert lit_pixels(browser, "ex-alone") > 20
    assert len(abouts) == len(METHODS)

    # Another digit as the target; then read pixels by mouse and by finger.
    browser.find_element(By.CSS_SELECTOR, "#explain .ex-methods [data-method=integrated_gradients]").click()
    wait.until(answered("integrated_gradients"))
    other = (prediction + 1) % 10
    browser.find_element(By.CSS_SELECTOR, f"#explain .ex-targets [data-target='{other}']").click()
    wait.until(lambda d: f"explaining {other}" in numbers.text and answered("integrated_gradients")(d))
    readout = browser.find_element(By.CSS_SELECTOR, "#explain .ex-readout")
    ActionChains(browser).move_to_element_with_offset(browser.find_element(By.ID, "ex-alone"), -60, -60).perform()
    wait.until(lambda d: readout.text.startswith("Pixel ("))
    mouse_text = readout.text
    box = browser.execute_script("const r = document.getElementById('ex-overlay').getBoundingClientRect();"
                                 "return [r.left, r.top];")
    touch = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    touch.pointer_action.move_to_location(int(box[0] + 100), int(box[1] + 100)).pointer_down().pointer_up()
    touch.perform()
    wait.until(lambda d: readout.text.startswith("Pixel (14, 14)") and readout.text != mouse_text)

    # The class models: ten small images, each labelled.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#explain .ex-class-model canvas")) == 10)
    labels = [f.text for f in browser.find_elements(By.CSS_SELECTOR, "#explain .ex-class-model figcaption")]
    assert [label.split(" ")[0] for label in labels] == [str(d) for d in range(10)]

    # A test image from the page: explained in turn.
    browser.find_element(By.ID, "test-index").clear()
    browser.find_element(By.ID, "test-index").send_keys("3")
    browser.find_element(By.ID, "test-show").click()
    wait.until(lambda d: d.find_element(By.ID, "explain").get_attribute("data-source") == "test image #3")
    wait.until(answered("integrated_gradients"))

    screenshot = tmp_path / "serve-explain.png"
    browser.execute_script("document.getElementById('flow').scrollIntoView()")
    browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "serve-explain.png")

    browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=forward]").click()
    wait.until(lambda d: d.find_element(By.ID, "stages").is_displayed())
    assert not browser.find_element(By.ID, "explain").is_displayed()
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_grad_cam_is_greyed_out_for_an_mlp(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serving(build_model("mlp", seed=0)) as srv:
        browser.get(srv.url)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#explain .ex-methods [data-method=grad_cam]")
                   .get_attribute("disabled") is not None)
        button = browser.find_element(By.CSS_SELECTOR, "#explain .ex-methods [data-method=grad_cam]")
        assert "stack of maps" in button.get_attribute("title")
        draw_one(browser, browser.find_element(By.ID, "pad"))
        wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
        browser.find_element(By.CSS_SELECTOR, "#view-switch [data-view=explain]").click()
        wait.until(answered("saliency"))
