"""The executed notebook in a real JupyterLab (from PyPI, started here on a free loopback port, no
token), in Debian's Chromium, clicked as a student would: scroll to the chain cell's player, step
with → through the backward pass, read w1's gradient on its box and in the inspector. No request may
leave 127.0.0.1. The same in Jupyter Notebook 7 (`jupyter notebook`, whose notebook view is JupyterLab's). VS Code's
notebooks need VS Code, which this machine and CI do not have: not tested.
Screenshots: test-artifacts/notebook/jupyterlab_chain.png, notebook7_chain.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import nbformat
import pytest

from app.export import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import ROOT, free_port, need
from tests.notebook.conftest import Installed

ARTIFACTS = ROOT / "test-artifacts" / "notebook"
LAB_START_S = 90.0
LOAD_TIMEOUT_MS = 90_000


def _lab_env(installed: Installed, home: Path) -> dict[str, str]:
    """The environment of a JupyterLab of its own: our kernel's spec, every other directory under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHONPATH"))}
    env.update(
        HOME=str(home),
        JUPYTER_PATH=str(installed.jupyter_path),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    # JupyterLab's "notified about Jupyter news?" toast covered the player's corner in the screenshots
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}', encoding="utf-8")
    return env


def _put_notebooks(executed: Path, root: Path, env: dict[str, str], jupyter: Path) -> None:
    """trusted.ipynb (signed, as JupyterLab signs a notebook its user ran and saved) and received.ipynb."""
    shutil.copy(executed, root / "trusted.ipynb")
    # the notary trusts by content: the received copy differs (a note from the teacher) and is not signed
    received = nbformat.read(executed, as_version=4)
    received.cells.insert(0, nbformat.v4.new_markdown_cell("Sent by your teacher."))
    nbformat.write(received, root / "received.ipynb")
    subprocess.run([str(jupyter), "trust", str(root / "trusted.ipynb")], env=env, check=True, capture_output=True, timeout=120)


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):  # the server and the kernels it started
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def _serve(app: str, installed: Installed, notebook: Path, tmp: pytest.TempPathFactory) -> Iterator[str]:
    """`jupyter lab` or `jupyter notebook` (Notebook 7) on a free loopback port, its root holding the
    executed English notebook twice: trusted and as received."""
    root = tmp.mktemp(app)
    home = tmp.mktemp(f"{app}-home")
    env = _lab_env(installed, home)
    jupyter = Path(sys.executable).parent / "jupyter"
    if app == "notebook" and not (Path(sys.executable).parent / "jupyter-notebook").exists():
        need("Jupyter Notebook 7 (pip install -e '.[test]')")
    _put_notebooks(notebook, root, env, jupyter)
    port = free_port()
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(jupyter),
            app,
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",  # Notebook 7 reads the same two settings as JupyterNotebookApp's
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LAB_START_S
        while True:
            try:
                if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter {app} did not start:\n" + (home / "server.log").read_text()[-4000:])
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def lab(installed: Installed, executed: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve("lab", installed, executed["en"], tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def notebook7(installed: Installed, executed: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve("notebook", installed, executed["en"], tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        need(f"Chromium at {CHROMIUM} (Debian package chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url: str, outside: list[str]):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def route(r) -> None:  # type: ignore[no-untyped-def]
        u = urlsplit(r.request.url)
        if u.scheme in ("http", "https", "ws", "wss") and u.hostname != "127.0.0.1":
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("websocket", lambda ws: urlsplit(ws.url).hostname == "127.0.0.1" or outside.append(ws.url))
    page.goto(url)
    return page


def _walk_the_chain(browser, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Open the notebook at `url`, step the chain cell's player through backward; screenshots `name`_chain.png."""
    outside: list[str] = []
    page = _open(browser, url, outside)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    try:
        cell = page.locator(".jp-CodeCell", has_text="w1 = torch.tensor(2.0")
        cell.wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
        player = cell.locator("iframe[title='gradwalk player']")
        frame = player.content_frame
        # A player starts drawing when it is on screen (Chromium pauses an off-screen frame's painting),
        # and the outputs above it still change size while they load: scroll until it is ready.
        deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
        while frame.locator("body").get_attribute("data-ready") != "true":
            assert time.monotonic() < deadline, f"the player did not start: {console}"
            player.scroll_into_view_if_needed(timeout=LOAD_TIMEOUT_MS)
            page.wait_for_timeout(250)
        total = frame.locator("body").evaluate("() => window.gradwalk.total")
        w1 = frame.locator("svg g[data-node-id]", has_text="w1").first
        frame.locator("#graph").focus()  # as a click into the player does: its keys are its own
        page.keyboard.press("Home")
        assert frame.locator("body").get_attribute("data-step") == "0"
        assert "grad 3" not in w1.text_content()  # no gradient yet
        label = frame.locator("#pass-label")
        in_backward = seen_backward = False
        for _ in range(total - 1):  # → until the backward pass has ended (or the story has)
            page.keyboard.press("ArrowRight")
            in_backward = bool(label.text_content()) and "forward" not in (label.get_attribute("class") or "")
            if seen_backward and not in_backward:
                break
            seen_backward |= in_backward
        assert seen_backward, "the player never showed the backward pass"
        assert "grad 3" in w1.text_content(), w1.text_content()
        # The inspector beside the graph, as on the page: w1 clicked shows its .grad (torch's 3, test_notebooks.py).
        w1.click()
        inspector = frame.locator("#inspector-body")
        assert inspector.locator("h3").text_content() == "w1"
        assert float(inspector.locator(".matrix-scalar.grad").text_content() or "nan") == 3.0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        player.screenshot(path=str(ARTIFACTS / f"{name}_chain.png"))
        page.screenshot(path=str(ARTIFACTS / f"{name}_page.png"))
    finally:
        page.context.close()
    assert not outside, f"requests left 127.0.0.1: {outside}"


def test_the_chain_cells_player_steps_through_backward_in_jupyterlab(lab: str, browser) -> None:  # type: ignore[no-untyped-def]
    _walk_the_chain(browser, f"{lab}/lab/tree/trusted.ipynb", "jupyterlab")


def test_the_chain_cells_player_steps_through_backward_in_notebook_7(notebook7: str, browser) -> None:  # type: ignore[no-untyped-def]
    _walk_the_chain(browser, f"{notebook7}/notebooks/trusted.ipynb", "notebook7")
