"""A real headless browser for the tests that look at what a person sees (the admin page, the replay report).

Debian's ``chromium`` and ``chromium-driver`` drive it through Selenium with the driver's path given, so Selenium
never downloads anything. Screenshots go to ``$CONNECTOR_TEST_ARTIFACTS`` (default ``.artifacts/`` at the top of
the checkout) and are kept as the test run's artefacts. Where the browser is not installed the tests skip on a
developer's machine and fail under CI (``CI`` set), where ``.ci/run`` installs it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("CONNECTOR_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".artifacts"))


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium with no network beyond loopback; ``browser.screenshot(name)`` keeps a picture."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)

    def screenshot(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    driver.screenshot = screenshot
    try:
        yield driver
    finally:
        driver.quit()
