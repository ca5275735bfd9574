"""Screenshots of the viewer's tabs for the docs (docs/images/viewer_*.png), taken in headless Chromium.

    python tests/screenshots.py OUTPUT_DIR OTHER_OUTPUT_DIR [RUNNING_OUTPUT_DIR]

Overview, Rows (a row opened), Rejected and Compare come from the first two folders; Live from the third, a run
that is still generating while this runs (or from the first when none is given).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from browser import chromium, open_tab, text_of, viewer, wait_for
from PIL import Image
from selenium.webdriver.common.by import By

from conftest import REPO, free_port

IMAGES = REPO / "docs" / "images"


def shoot(driver, name: str) -> None:
    time.sleep(1.5)  # let the last update paint
    path = IMAGES / f"viewer_{name}.png"
    driver.save_screenshot(str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)  # a third of the bytes
    print(f"wrote {path.relative_to(REPO)}")


def main(first: str, second: str, running: str | None = None) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with viewer(first, second, port=free_port(), repo=REPO) as url, chromium(1280, 1100) as driver:
        driver.get(url)
        wait_for(driver, lambda d: text_of(d, "#overview-funnel .funnel-stage"))
        shoot(driver, "overview")
        open_tab(driver, "Rows")
        cells = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#rows-table [role=gridcell]"))
        cells[1].click()
        wait_for(driver, lambda d: text_of(d, "#rows-left"))
        driver.execute_script("document.querySelector('#rows-count').scrollIntoView()")
        shoot(driver, "rows")
        open_tab(driver, "Rejected")
        cells = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#rejected-table [role=gridcell]"))
        cells[1].click()
        wait_for(driver, lambda d: text_of(d, "#rejected-left"))
        shoot(driver, "rejected")
        open_tab(driver, "Compare")
        wait_for(driver, lambda d: text_of(d, "#compare-count"))
        shoot(driver, "compare")
    running = Path(running or first)
    deadline = time.time() + 600
    while not (running / "run.json").exists() and time.time() < deadline:  # a run claims its folder when it starts
        time.sleep(2)
    with viewer(running, port=free_port(), repo=REPO) as url, chromium(1280, 800) as driver:
        driver.get(url)
        open_tab(driver, "Live")
        wait_for(driver, lambda d: text_of(d, "#live-rows") not in ("", "0"))
        shoot(driver, "live")


if __name__ == "__main__":
    main(*sys.argv[1:])
