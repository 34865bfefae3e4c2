"""app/routes/pages.py: the pages render the trace data once, pick a language, and send a strict CSP."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from app.routes.pages import accepted_lang


@pytest.fixture(scope="module")
def web(module_client: Any) -> Any:
    return module_client()


@pytest.fixture(scope="module")
def shared(web: Any) -> dict[str, Any]:
    source = "import torch\na = torch.tensor([1.0, 2.0], requires_grad=True)\n(a ** 2).sum().backward()\nprint('</script><b>')\n"
    created = web.post("/api/share", json={"source": source, "title": "<b>squares</b>"})
    assert created.status_code == 201
    return web.get(f"/api/share/{created.json()['id']}").json()


class Scripts(HTMLParser):
    """Collects every <script>: its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open, self._text = dict(attrs), []
        for name, _ in attrs:
            assert not name.lower().startswith("on"), f"inline event handler {name} on <{tag}>"

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append((self._open, "".join(self._text)))
            self._open = None


def scripts(html: str) -> list[tuple[dict[str, str | None], str]]:
    parser = Scripts()
    parser.feed(html)
    return parser.scripts


def embedded_trace(html: str) -> Any:
    blocks = [text for attrs, text in scripts(html) if attrs.get("id") == "trace"]
    assert len(blocks) == 1, "the trace is embedded exactly once"
    return json.loads(blocks[0])


@pytest.mark.parametrize("path", ["/", "/s/{id}", "/embed/{id}"])
def test_pages_render_with_no_inline_script(web: Any, shared: dict[str, Any], path: str) -> None:
    response = web.get(path.format(id=shared["id"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for attrs, text in scripts(response.text):
        executable = attrs.get("type") in (None, "", "module", "text/javascript")
        assert not (executable and text.strip()), f"inline script on {path}: {text[:80]}"
        assert attrs.get("src") or attrs.get("type") == "application/json"


@pytest.mark.parametrize("path", ["/s/{id}", "/embed/{id}"])
def test_share_pages_embed_the_stored_trace_once(web: Any, shared: dict[str, Any], path: str) -> None:
    html = web.get(path.format(id=shared["id"])).text
    assert embedded_trace(html) == shared["trace"]
    assert "</script><b>" not in html  # the program's output cannot close the data block
    assert "<b>squares</b>" not in html  # the title is escaped


@pytest.mark.parametrize("path", ["/s/{id}", "/embed/{id}", "/api/share/{id}"])
def test_a_share_reads_the_same_with_gzip_and_without(web: Any, shared: dict[str, Any], path: str) -> None:
    """gzip: the stored trace spliced as it is (app.splice); identity: decompressed and streamed."""
    packed = web.get(path.format(id=shared["id"]), headers={"accept-encoding": "gzip"})
    plain = web.get(path.format(id=shared["id"]), headers={"accept-encoding": "identity"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert packed.content == plain.content  # httpx checked the gzip's CRC and length
    trace = plain.json()["trace"] if path.startswith("/api/") else embedded_trace(plain.text)
    assert trace == shared["trace"]


def test_index_embeds_no_trace(web: Any) -> None:
    assert embedded_trace(web.get("/").text) is None


def test_unknown_share_pages_are_404(web: Any) -> None:
    for path in ("/s/nope", "/embed/nope", "/s/" + "x" * 200):
        assert web.get(path).status_code == 404


def test_a_browser_gets_an_error_page_and_a_script_the_error_shape(web: Any) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/s/nope", "/embed/nope", "/no-such-page"):
        page = web.get(path, headers=browser)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path
        assert "Nothing here" in page.text and 'href="/"' in page.text and "<script" not in page.text
        assert page.headers["content-security-policy"]
        api = web.get(path, headers={"accept": "application/json"})
        assert api.status_code == 404 and api.json()["error"] == "not_found", path
    zh = web.get("/s/nope?lang=zh", headers=browser)
    assert "这里什么也没有" in zh.text and zh.headers["content-language"] == "zh"
    # the API stays JSON whatever the client accepts
    assert web.get("/api/share/nope", headers=browser).json()["error"] == "not_found"


def test_pages_send_a_strict_csp_and_embed_alone_may_be_framed(web: Any, shared: dict[str, Any]) -> None:
    for path in ("/", f"/s/{shared['id']}", f"/embed/{shared['id']}"):
        headers = web.get(path).headers
        csp = dict((d.strip().split(" ", 1) + [""])[:2] for d in headers["content-security-policy"].split(";") if d.strip())
        assert csp["default-src"] == "'self'"
        assert csp["script-src"] == "'self'"  # no inline script, no eval
        assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        if path.startswith("/embed/"):
            assert csp["frame-ancestors"] == "*" and "x-frame-options" not in headers
        else:
            assert csp["frame-ancestors"] == "'none'" and headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("kwargs", "lang"),
    [
        ({}, "en"),
        ({"headers": {"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}}, "zh"),
        ({"headers": {"accept-language": "fr-FR, en;q=0.5, zh;q=0.9"}}, "zh"),
        ({"headers": {"accept-language": "de"}}, "en"),
        ({"params": {"lang": "zh"}, "headers": {"accept-language": "en"}}, "zh"),
        ({"params": {"lang": "klingon"}, "headers": {"accept-language": "zh"}}, "zh"),
        ({"cookies": {"lang": "zh"}}, "zh"),
        ({"cookies": {"lang": "en"}, "headers": {"accept-language": "zh"}}, "en"),
    ],
)
def test_language_from_query_cookie_or_accept_language(web: Any, kwargs: dict[str, Any], lang: str) -> None:
    kwargs = dict(kwargs)
    web.cookies.clear()
    web.cookies.update(kwargs.pop("cookies", {}))
    try:
        response = web.get("/", **kwargs)
    finally:
        web.cookies.clear()
    assert response.headers["content-language"] == lang
    assert re.search(rf'<html[^>]*lang="{lang}"', response.text)


def test_an_embeds_lang_query_is_that_pages_only(web: Any, shared: dict[str, Any]) -> None:
    # A teacher's page with one ?lang=zh embed must not turn the other embeds and the app Chinese.
    web.cookies.clear()
    for path in (f"/embed/{shared['id']}", f"/s/{shared['id']}", "/"):
        response = web.get(path, params={"lang": "zh"})
        assert response.headers["content-language"] == "zh"
        assert "set-cookie" not in response.headers, path
    assert web.get(f"/embed/{shared['id']}").headers["content-language"] == "en"
    web.cookies.clear()


def test_pages_are_written_in_their_language_before_any_script_runs(web: Any, shared: dict[str, Any]) -> None:
    def markup(html: str) -> str:
        return html.split('<script type="application/json"')[0]  # the data (and the tables) follow

    app = markup(web.get("/", params={"lang": "zh"}).text)
    assert re.search(r'id="run"[^>]*>运行</button>', app) and ">Run<" not in app
    share = markup(web.get(f"/s/{shared['id']}", params={"lang": "zh"}).text)
    assert ">编辑副本</a>" in share and "Edit a copy" not in share


def test_the_page_carries_every_language_and_the_toggles_cookie(web: Any) -> None:
    from app import i18n

    data = json.loads(next(text for attrs, text in scripts(web.get("/").text) if attrs.get("id") == "i18n"))
    assert data == {"tables": {"en": i18n.table("en"), "zh": i18n.table("zh")}, "cookie": {"name": "lang", "max_age_s": 31536000}}


def test_accepted_lang_parses_q_values() -> None:
    assert accepted_lang("") is None
    assert accepted_lang("en-US,en;q=0.9") == "en"
    assert accepted_lang("en;q=0.1, zh-TW;q=0.8") == "zh"
    assert accepted_lang("zh;q=0, en;q=0.1") == "en"
    assert accepted_lang("zh;q=abc") is None


def test_static_files_are_served(web: Any) -> None:
    from pathlib import Path

    static = Path(__file__).resolve().parents[2] / "static"
    files = [p for p in static.rglob("*") if p.is_file() and not p.name.startswith(".")]
    if not files:
        pytest.skip("static/ is empty")
    path = files[0].relative_to(static).as_posix()
    response = web.get(f"/static/{path}")
    assert response.status_code == 200 and response.content == files[0].read_bytes()
    assert web.get("/static/../app/config.py").status_code == 404


def _options(html: str) -> Any:
    return json.loads(next(text for attrs, text in scripts(html) if attrs.get("id") == "options"))


def test_share_export_is_the_stored_trace_as_one_file(web: Any, shared: dict[str, Any]) -> None:
    response = web.get(f"/s/{shared['id']}/export.html", params={"step": 3, "lang": "zh", "direction": "LR"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"] == f'attachment; filename="gradwalk-{shared["id"]}.html"'
    assert embedded_trace(response.text) == shared["trace"]  # not run again
    assert _options(response.text) == {"step": 3, "lang": "zh", "direction": "LR"}
    assert "default-src 'none'" in response.text
    assert web.get("/s/nope/export.html").status_code == 404
    assert web.get(f"/s/{shared['id']}/export.html", params={"direction": "up"}).status_code == 422


def test_program_export_runs_the_source_in_the_sandbox(web: Any) -> None:
    source = "import torch\nw = torch.tensor(2.0, requires_grad=True)\n(w * 3).backward()\n"
    response = web.post("/export.html", json={"source": source, "step": -1})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="gradwalk.html"'
    trace = embedded_trace(response.text)
    assert trace["source"] == source and trace["status"] == "ok"
    assert [n["grad"] for n in trace["nodes"] if n["name"] == "w"] == [3.0]
    assert _options(response.text) == {"step": -1, "lang": "en", "direction": "auto"}
    bad = web.post("/export.html", json={"step": 1})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
