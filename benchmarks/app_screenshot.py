#!/usr/bin/env python
"""The README's screenshot of the demo app, taken in headless Chromium on the demo's real folders.

    python benchmarks/app_screenshot.py --model out/finetune/intent-pretrained \
        --model out/finetune/directed-pretrained --model out/dsclap \
        --search_dataset out/corpus-default-seed0 --search_split test --search_size 64

Starts ``run_scripts/run_app.py``'s app (same arguments) on a free local port, uploads the first clip of
``--clip_split`` (``--clip_index``) of the search dataset, waits for the results, runs a text search, and writes
``benchmarks/results/app_screenshot.png`` (the Classify tab) and ``app_screenshot_search.png``; prints a JSON line with
what the page showed and how long each step took. The browser helpers here also drive the app's test
(``tests/test_app.py``). Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup.sh`` installs them).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# Debian's names; other distributions call them chromium-browser / chromium-chromedriver.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver", "chromium-chromedriver")


def _which(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


def browser_missing() -> str | None:
    """Why no headless browser can run here, or None when Selenium, Chromium and its driver are installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[app]' (scripts/setup.sh installs .[dev], which has it)"
    for what, names in (("chromium", CHROMIUM_NAMES), ("its driver", CHROMEDRIVER_NAMES)):
        if _which(names) is None:
            return (
                f"{what} is not installed (none of {', '.join(names)} on PATH): apt-get install -y chromium "
                "chromium-driver (scripts/setup.sh does it)"
            )
    return None


def headless_chromium(width: int = 1280, height: int = 1000) -> Any:
    """A Selenium driver of the system's Chromium, headless (no display needed) and offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM_NAMES)
    # --no-sandbox: containers and root users have no user namespaces for Chromium's sandbox.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(_which(CHROMEDRIVER_NAMES)), options=options)


def serve(blocks: Any) -> str:
    """Launch a Gradio app in this process on a free local port, without blocking; return its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


@dataclass
class ShownResults:
    """What the Classify tab shows after "Analyse": the transcript, each classifier's top label, the zero-shot top
    prompt (None without a joint-embedding model)."""

    transcript: str
    labels: list[str]
    zero_shot: str | None
    timings_s: dict[str, float] = field(default_factory=dict)


def analyse_clip(
    driver: Any, url: str, clip: str | Path, transcript: str = "", timeout: float = 60
) -> ShownResults:
    """Open the app, upload ``clip`` (and type ``transcript``), press "Analyse" and read the results."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    timings = {}
    start = time.perf_counter()
    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#clip input[type=file]"))
    timings["page_s"] = time.perf_counter() - start
    upload.send_keys(str(Path(clip).resolve()))
    # The upload is done when the component has a player for the clip.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#clip audio"))
    if transcript:
        driver.find_element(By.CSS_SELECTOR, "#transcript-in textarea").send_keys(transcript)
    classifiers = driver.find_elements(By.CSS_SELECTOR, "[id^=classifier-]")
    start = time.perf_counter()
    driver.find_element(By.CSS_SELECTOR, "#analyse").click()
    values = "[data-testid=label-output-value]"
    wait.until(lambda d: all(c.find_elements(By.CSS_SELECTOR, values) for c in classifiers))
    timings["analyse_s"] = time.perf_counter() - start
    zero_shot = driver.find_elements(By.CSS_SELECTOR, f"#zero-shot {values}")
    return ShownResults(
        transcript=driver.find_element(By.CSS_SELECTOR, "#transcript textarea").get_attribute("value"),
        labels=[c.find_element(By.CSS_SELECTOR, values).text for c in classifiers],
        zero_shot=zero_shot[0].text if zero_shot else None,
        timings_s=timings,
    )


def search_clips(driver: Any, query: str, timeout: float = 60) -> list[str]:
    """On the open app: switch to the Search tab, search ``query`` and return the clips shown, best first."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tab = next(t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == "Search")
    tab.click()
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#query textarea").is_displayed()
    )
    driver.find_element(By.CSS_SELECTOR, "#query textarea").send_keys(query)
    driver.find_element(By.CSS_SELECTOR, "#search").click()

    def shown(d: Any) -> list[str]:
        # The table's text: its 3 headers, then rank, similarity, clip per row.
        cells = d.find_element(By.CSS_SELECTOR, "#hits").text.split("\n")[3:]
        return cells[2::3] if len(cells) >= 3 and cells[0] == "1" else []

    return WebDriverWait(driver, timeout).until(shown)


def full_page_screenshot(driver: Any, path: str | Path) -> Path:
    """Save the whole page (the window grown to the page's height) as a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], height)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run_scripts"))
    from run_app import AppArguments, build_app
    from transformers import HfArgumentParser

    from audiolang.training import load_splits

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip_split", default="test")
    parser.add_argument("--clip_index", type=int, default=0)
    parser.add_argument("--query", default="navigate to the nearest gas station")
    parser.add_argument("--output", default=str(RESULTS / "app_screenshot.png"))
    own, rest = parser.parse_known_args(argv)
    (args,) = HfArgumentParser(AppArguments).parse_args_into_dataclasses(args=rest)
    missing = browser_missing()
    if missing:
        raise SystemExit(missing)
    if not args.search_dataset:
        raise SystemExit("--search_dataset is required: the uploaded clip comes from it")

    import soundfile as sf

    from audiolang.data.asr import audio_to_array

    row = load_splits(args.search_dataset)[own.clip_split][own.clip_index]
    clip = RESULTS / "app_screenshot_clip.wav"
    clip.parent.mkdir(parents=True, exist_ok=True)
    sf.write(clip, *audio_to_array(row["audio"]))
    start = time.perf_counter()
    blocks = build_app(args)
    startup = time.perf_counter() - start
    driver = headless_chromium()
    try:
        url = serve(blocks)
        shown = analyse_clip(driver, url, clip)
        screenshot = full_page_screenshot(driver, own.output)
        hits = search_clips(driver, own.query)
        search_shot = full_page_screenshot(
            driver, Path(own.output).with_name(Path(own.output).stem + "_search.png")
        )
    finally:
        driver.quit()
        blocks.close()
        clip.unlink(missing_ok=True)
    print(
        json.dumps(
            {
                "benchmark": "app_screenshot",
                "models": args.model,
                "clip": {"split": own.clip_split, "index": own.clip_index, "text": row.get("text")},
                "shown": vars(shown),
                "query": own.query,
                "search_hits": hits,
                "startup_s": round(startup, 2),
                "screenshots": [str(screenshot), str(search_shot)],
            }
        )
    )


if __name__ == "__main__":
    main()
