"""Screenshots of featurecache's lineage in the MLflow UI, for docs/screenshots/.

Starts ``mlflow server`` on 127.0.0.1 in a temporary folder, trains a tiny model in a fresh
process whose training code calls ``user_features``, which calls
``sessionize(clicks, gap_minutes=45)`` inside its body, then drives Debian's headless Chromium
through chromedriver (the W3C WebDriver protocol over plain HTTP, no selenium) and saves:

- ``mlflow-training-run-datasets.png``: the training run's datasets, ``sessionize`` as
  ``upstream`` (and ``user_features`` as ``training``, behind "+1");
- ``mlflow-dataset-producer-link.png``: that dataset opened: its profile names the run that
  produced it and its page in the UI (``producer_run_url``);
- ``mlflow-feature-run-params.png``: the page that link opens, the feature run of
  ``sessionize``: its params (``gap_minutes``), its description and its tags.

Needs the full ``mlflow`` (``featurecache[dev]``) and ``apt-get install chromium
chromium-driver``. Run: ``.venv/bin/python examples/mlflow_ui/screenshots.py [OUT_DIR]``.
Not a test: what the pages show depends on MLflow's UI version.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1800, 1000)

FEATURES = '''
import polars as pl
from featurecache import cached_feature


@cached_feature
def sessionize(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame:
    """A new session starts after `gap_minutes` without a click."""
    gap = pl.col("t").diff().over("user").fill_null(0) > gap_minutes
    return clicks.sort("user", "t").with_columns(session=gap.cum_sum().over("user"))


@cached_feature
def user_features(clicks: pl.DataFrame, min_clicks: int = 2) -> pl.DataFrame:
    sessions = sessionize(clicks, gap_minutes=45)
    per_user = sessions.group_by("user").agg(
        sessions=pl.col("session").n_unique(), clicks=pl.len()
    )
    return per_user.filter(pl.col("clicks") >= min_clicks).sort("user")
'''

TRAIN = """
import json, sys
import mlflow
import polars as pl
import featurecache
from features import user_features

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("featurecache-screenshots")
clicks = pl.DataFrame({"user": [1, 1, 1, 2, 2, 3], "t": [0, 10, 90, 5, 200, 7]})
with mlflow.start_run(run_name="train") as run:
    features = user_features(clicks)
    mlflow.log_metric("users", features.height)
    engine = featurecache.default_cache().engine
    engine.flush()
    assert all(listener.flush(60) for listener in engine.listeners)
print(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def _process(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _train(tracking: str, work: Path) -> dict[str, str]:
    project = work / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "screens"\nversion = "0"\n')
    (project / "features.py").write_text(textwrap.dedent(FEATURES))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURECACHE_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(project), str(REPO)]),
        MLFLOW_TRACKING_URI=tracking,
        FEATURECACHE_MLFLOW_EXPERIMENT="featurecache-screenshots",
    )
    done = subprocess.run(
        [sys.executable, "-c", TRAIN, tracking],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Browser:
    """Just enough of the W3C WebDriver protocol, spoken to chromedriver with urllib."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--window-size={WINDOW[0]},{WINDOW[1]}",
                ],
            },
        }
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{answer['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.driver + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["value"]

    def go(self, url: str, settle: float = 4.0) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})
        time.sleep(settle)  # the UI renders after its API calls return

    def find(self, xpath: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = self._call(
                    "POST", f"{self.session}/element", {"using": "xpath", "value": xpath}
                )
                return str(next(iter(found.values())))
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def click(self, xpath: str, settle: float = 2.0) -> None:
        self._call("POST", f"{self.session}/element/{self.find(xpath)}/click", {})
        time.sleep(settle)

    def text(self, element: str) -> str:
        return str(self._call("GET", f"{self.session}/element/{element}/text"))

    def script(self, code: str) -> Any:
        return self._call("POST", f"{self.session}/execute/sync", {"script": code, "args": []})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))
        print(f"wrote {path}")

    def close(self) -> None:
        self._call("DELETE", self.session)


def _feature_run(tracking: str, experiment_id: str, feature: str) -> Any:
    from mlflow import MlflowClient

    (run,) = MlflowClient(tracking).search_runs([experiment_id], f"tags.`fc.feature` = '{feature}'")
    return run


def main(out: Path) -> None:
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is missing: apt-get install -y chromium chromium-driver")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fc-mlflow-ui-"))
    port, driver_port = _free_port(), _free_port()
    tracking = f"http://127.0.0.1:{port}"
    server = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}"),
        *("--artifacts-destination", str(work / "artifacts")),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    try:
        with _process(server, work / "mlflow.log", cwd=work, env=env):
            _wait(f"{tracking}/health")
            trained = _train(tracking, work)
            experiment, train_run = trained["experiment_id"], trained["run_id"]
            sessionize = _feature_run(tracking, experiment, "sessionize")
            profile_url = f"{tracking}/#/experiments/{experiment}/runs/{sessionize.info.run_id}"
            with _process([CHROMEDRIVER, f"--port={driver_port}"], work / "chromedriver.log"):
                _wait(f"http://127.0.0.1:{driver_port}/status", timeout=30)
                browser = Browser(f"http://127.0.0.1:{driver_port}")
                try:
                    _shoot(browser, out, tracking, experiment, train_run, profile_url)
                except Exception:
                    browser.screenshot(work / "failed.png")
                    shutil.copy(work / "failed.png", out / "failed.png")
                    raise
                finally:
                    browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _shoot(
    browser: Browser, out: Path, tracking: str, experiment: str, train_run: str, producer: str
) -> None:
    train_page = f"{tracking}/#/experiments/{experiment}/runs/{train_run}"
    browser.go(train_page)
    _tidy(browser)
    browser.go(train_page)  # switching the view lands on the experiment's runs
    # The training run: what it used, in which context.
    browser.find("//*[contains(text(), 'feature.sessionize')]")
    browser.screenshot(out / "mlflow-training-run-datasets.png")

    # One of its datasets opened: the profile names the run that produced it, and its page.
    browser.click("//*[contains(text(), 'feature.sessionize')]")
    link = browser.text(browser.find("//*[starts-with(normalize-space(text()), 'http://')]"))
    browser.screenshot(out / "mlflow-dataset-producer-link.png")
    if link != producer:
        raise SystemExit(f"the dataset links {link!r}, not the producer run {producer!r}")

    # Following that link: the producer (feature) run, its params and its description.
    browser.go(link)
    browser.find("//*[contains(text(), 'gap_minutes')]")
    browser.screenshot(out / "mlflow-feature-run-params.png")


def _tidy(browser: Browser) -> None:
    """The classic run view ("Model training", not the GenAI one), without the assistant
    panel that takes a third of the window. Best effort: the UI changes between versions."""
    with contextlib.suppress(urllib.error.HTTPError):
        browser.click("//*[normalize-space(text())='Model training']", settle=3.0)
    browser.script(
        "for (const b of document.querySelectorAll('button[aria-label]')) {"
        "  if (/close/i.test(b.getAttribute('aria-label'))) { b.click(); }"
        "}"
    )
    time.sleep(1.0)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
