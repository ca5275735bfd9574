"""Headless Chromium for the viewer's tests: Debian's `chromium` and `chromium-driver`, driven through selenium.

No browser is downloaded at test time (the machines reach no browser store): a missing Chromium fails the test
with the line that installs it (`make test` installs it on a Debian machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

INSTALL = "apt-get install -y chromium chromium-driver (make browser does it)"


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(f"the viewer's browser tests need headless Chromium and its driver: {INSTALL}")
    return browser, driver


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000):
    """A headless Chromium session (selenium WebDriver), closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def viewer(*targets, port: int, repo: Path, timeout: float = 120):
    """`python -m builders.view TARGETS --port PORT` in a subprocess, as a user starts it; yields its URL once it
    answers, and stops it on exit."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "builders.view", *map(str, targets), "--port", str(port)]
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would stall the server
    process = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + timeout
        while not _answers(port):
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"the viewer exited with {process.returncode}: {log.read()[-2000:]}")
            if time.time() > deadline:
                pytest.fail(f"the viewer did not answer on port {port} within {timeout:.0f}s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def open_tab(driver, name: str) -> None:
    """Click the tab button named `name`."""
    from selenium.webdriver.common.by import By

    wait_for(driver, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == name])
    button = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == name)
    button.click()


def wait_for(driver, condition, timeout: float = 30):
    """The first truthy value of `condition(driver)`, polled; the test fails with the page's text if none comes."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        body = driver.find_element("tag name", "body").text
        pytest.fail(f"waited {timeout:.0f}s in vain; the page shows: {body[:1500]}")


def text_of(driver, css: str) -> str:
    """The visible text of the elements matching `css`, joined ('' while there are none)."""
    from selenium.webdriver.common.by import By

    return "\n".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def table_rows(driver, css: str) -> list[list[str]]:
    """The cell texts of a Gradio Dataframe's body, row by row."""
    from selenium.webdriver.common.by import By

    rows: dict[int, list[str]] = {}
    for cell in driver.find_elements(By.CSS_SELECTOR, f"{css} [role=gridcell]"):
        rows.setdefault(int(cell.get_attribute("data-row")), []).append(cell.text)
    return [rows[i] for i in sorted(rows)]
