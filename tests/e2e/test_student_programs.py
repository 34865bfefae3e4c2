"""Programs no other test uses, opened as a student opens a shared link: a tiny ViT and a GPT trained with
AdamW, at a laptop's 1366 x 768 and on phones. Each program is shared once through the API (a real run in
the sandbox); each test opens /s/{id} in its own page."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_page import wait_until

pytestmark = pytest.mark.slow

LAPTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE_360 = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True, "device_scale_factor": 3}
PHONE_390 = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 3}

VIT = """\
import torch
import torch.nn as nn
torch.manual_seed(0)

class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (D // self.heads) ** -0.5
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, D))

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, 2)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

class TinyViT(nn.Module):
    def __init__(self, d=16, patch=4, classes=3):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, d, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 5, d) * 0.02)
        self.blocks = nn.Sequential(Block(d), Block(d))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)
    def forward(self, img):
        x = self.patch_embed(img).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.blocks(x)
        return self.head(self.norm(x[:, 0]))

model = TinyViT()
logits = model(torch.randn(2, 1, 8, 8))
loss = nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
loss.backward()
"""


@pytest.fixture(scope="module")
def server(module_serve):  # type: ignore[no-untyped-def]
    """A real `gradwalk serve` whose runs may take a model's time on a busy test machine."""
    return module_serve(timeout_s=30)


@pytest.fixture(scope="module")
def shared(server):  # type: ignore[no-untyped-def]
    """share(source) -> /s/{id}, each program run and saved once for the module."""
    links: dict[str, str] = {}

    def share(source: str) -> str:
        if source not in links:
            r = httpx.post(f"{server.url}/api/share", json={"source": source}, timeout=120)
            assert r.status_code == 201, r.text
            links[source] = f"/s/{r.json()['id']}"
        return links[source]

    return share


def open_shared(watched, path: str):  # type: ignore[no-untyped-def]
    page = watched.open(path)
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    return page


@pytest.mark.parametrize("watched", [LAPTOP], ids=["1366x768"], indirect=True)
def test_tabbing_through_the_boxes_pans_the_camera_and_never_scrolls_the_pane(watched, shared) -> None:  # type: ignore[no-untyped-def]
    page = open_shared(watched, shared(VIT))
    map_at = page.locator("canvas.map").bounding_box()
    page.click("#graph", position={"x": 4, "y": 4})
    for _ in range(12):  # Tab from box to box, down the ViT past the pane's bottom edge
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#graph') !== null"), "the focus left the graph"
    # The browser scrolled the pane (overflow: hidden still scrolls) to show the focused box: the map and
    # the dotted ground went with it, and every later Fit or centring was off by that much.
    assert page.evaluate("[document.getElementById('graph').scrollTop, document.getElementById('graph').scrollLeft]") == [0, 0]
    assert page.locator("canvas.map").bounding_box() == map_at, "the map moved"
    pane = page.locator("#graph").bounding_box()
    r = page.evaluate(
        "(() => { const r = document.activeElement.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })()"
    )
    assert pane and pane["y"] <= r["y"] and r["y"] + r["h"] <= pane["y"] + pane["height"], "the focused box is in view"
    # Search then centres what it finds where the student sees it.
    page.keyboard.press("/")
    page.keyboard.type("model.head")
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#graph .selected') !== null")
    page.wait_for_timeout(100)
    box = page.locator("#graph .selected").bounding_box()
    assert box and pane
    assert abs(box["y"] + box["height"] / 2 - (pane["y"] + pane["height"] / 2)) < 2, "centred"
    watched.shot("tabbed")


JUMP_SHOWN = "document.getElementById('jump').selectedOptions[0].textContent"


@pytest.mark.parametrize("watched", [PHONE_390, PHONE_360], ids=["390x844", "360x740"], indirect=True)
@pytest.mark.parametrize(
    ("lang", "prompt", "pass_1"),
    [("en", "Jump to…", "Backward pass 1 of 1"), ("zh", "跳转到…", "反向传播 第 1 次（共 1 次）")],
    ids=["en", "zh"],
)
def test_the_jump_menu_on_a_phone_says_what_it_is(watched, shared, lang, prompt, pass_1) -> None:  # type: ignore[no-untyped-def]
    # On a phone the menus' labels are for screen readers only: the menu itself has to say what it does,
    # where it used to show a bare "—" before the program ran and after it ended.
    page = open_shared(watched, shared(VIT) + f"?lang={lang}")
    jump = page.get_by_role("combobox", name={"en": "Jump to", "zh": "跳转到"}[lang])
    assert jump.is_visible()
    assert page.evaluate(JUMP_SHOWN) == prompt
    page.tap("#last")  # the program ends in its backward pass: the menu says so
    wait_until(page, "window.gradwalk.state.frame.last")
    assert page.evaluate(JUMP_SHOWN) == pass_1
    page.tap("#first")
    wait_until(page, "window.gradwalk.state.step === 0")
    assert page.evaluate(JUMP_SHOWN) == prompt
    jump.select_option(label=pass_1)
    wait_until(page, "window.gradwalk.state.frame.pass !== null")
    assert page.evaluate(JUMP_SHOWN) == pass_1
    # The prompt is not a place to go: it cannot be chosen.
    assert page.evaluate("document.getElementById('jump').options[0].disabled")
    watched.shot("jump")
