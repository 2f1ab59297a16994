"""The classroom in a real headless Chromium: a student's page (Train off, saying why), the
teacher's (with ?token=), and the notice every page shows when the served network changes.

The server binds 0.0.0.0 (the rule follows the bind address) and the browser opens
http://127.0.0.1:...: nothing leaves this computer. Screenshots go to ``artifacts/``.
"""
import shutil

import pytest

from helpers import serving
from test_browser import ARTIFACTS, browser, draw_one  # noqa: F401  (the browser fixture)
from test_classroom import TINY, TOKEN, call, wait_until_done

pytestmark = pytest.mark.browser


@pytest.fixture
def room(tmp_path):
    with serving(host="0.0.0.0", description="untrained test network", test_size=200, token=TOKEN,
                 save_dir=str(tmp_path)) as srv:
        yield srv


def address(srv, query=""):
    return f"http://127.0.0.1:{srv.server_address[1]}/{query}"


def test_a_students_page_can_draw_but_not_train_and_sees_the_new_network(room, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, poll_frequency=0.1)
    browser.get(address(room))
    wait.until(lambda d: d.find_elements(By.ID, "train-locked"))
    reason = browser.find_element(By.ID, "train-locked").text
    assert reason.startswith("Training is the teacher's") and "token" in reason
    for control in ("train-start", "train-stop", "train-model", "train-epochs", "train-lr", "train-size"):
        assert not browser.find_element(By.ID, control).is_enabled(), control

    # Drawing and predicting work (through the compact formats the page uses).
    draw_one(browser, browser.find_element(By.ID, "pad"))
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip().isdigit())
    maps = browser.execute_script("return document.querySelectorAll('.stage canvas').length")
    assert maps == 1 + 8 + 8 + 1

    # The teacher trains (from the API here): the student's page says the network changed, and
    # its Train panel stays off when the job has ended.
    job = call(room, "POST", f"/api/train?token={TOKEN}", TINY)[2]["job"]
    wait_until_done(room, job)
    wait.until(lambda d: d.find_elements(By.ID, "network-notice"))
    notice = browser.find_element(By.ID, "network-notice").text
    assert notice.startswith("New network served: seed trained on the page (job 1)")
    wait.until(lambda d: "trained on the page (job 1)" in d.find_element(By.ID, "model-info").text)
    assert not browser.find_element(By.ID, "train-start").is_enabled()

    screenshot = tmp_path / "classroom-student.png"
    browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "classroom-student.png")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_the_teachers_page_trains(room, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    browser.get(address(room, f"?token={TOKEN}"))
    wait.until(lambda d: d.find_element(By.ID, "train-epochs").get_attribute("value") == "3")
    assert not browser.find_elements(By.ID, "train-locked")
    for field, value in (("train-epochs", "1"), ("train-size", "100")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "train-start").click()
    wait.until(lambda d: d.find_element(By.ID, "train-done").is_displayed())
    assert "now serves the network just trained (job 1)" in browser.find_element(By.ID, "train-done").text
    assert call(room, "GET", "/api/train")[2]["status"] == "completed"
