"""The page as a student uses it: pick an example, Run, step through, click nodes, read the output."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def type_program(page, source: str) -> None:  # type: ignore[no-untyped-def]
    """Replace the editor's program with `source`."""
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    # insertText, not type(): the editor would auto-indent and auto-close brackets as it goes.
    page.keyboard.insert_text(source)


def run_program(page, example: str | None = None, source: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Pick an example (or type a program), press Run, wait for the first frame, and stop autoplay."""
    if example:
        page.select_option("#examples", example)
    if source is not None:
        type_program(page, source)
    page.evaluate("document.body.dataset.ready = 'false'")
    page.get_by_role("button", name=re.compile("^(Run|运行)$")).click()
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    if page.get_attribute("#play", "aria-pressed") == "true":
        page.click("#play")


def wait_until(page, expression: str, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a JS expression (wait_for_function evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def node_id(page, name: str) -> int:  # type: ignore[no-untyped-def]
    return page.evaluate(f"window.gradwalk.state.trace.nodes.find((n) => n.name === {json.dumps(name)}).id")


def cells(page, selector: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.strip() for c in page.locator(selector).all_inner_texts()]


def test_inspector_walks_the_graph_by_keyboard(watched) -> None:  # type: ignore[no-untyped-def]
    """From y to its input l3, then to l3's inputs l2 and w2: every node is reachable without the mouse."""
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.keyboard.press("End")
    page.focus(f"[data-node-id='{node_id(page, 'y')}']")
    page.keyboard.press("Enter")
    assert cells(page, "#inspector ul.neighbours button") == ["l3"]  # y = l3.mean(): one input, no user
    page.focus("#inspector ul.neighbours button")
    page.keyboard.press("Enter")
    l3 = node_id(page, "l3")
    assert page.text_content("#inspector h3").startswith("l3")
    assert page.evaluate("document.activeElement.dataset.nodeId") == str(l3)
    assert "selected" in (page.get_attribute(f"g.node[data-node-id='{l3}']", "class") or "")
    inputs, users = (cells(page, f"#inspector ul.neighbours:nth-of-type({i}) button") for i in (1, 2))
    assert inputs == ["l2", "w2"] and users == ["y"]


def test_jacobian_three_passes(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_4_jacobian")
    a = node_id(page, "a")
    page.click(f"[data-node-id='{a}']")
    page.keyboard.press("Home")
    expected = [["2", "1", "0"], ["0", "1", "1"], ["0", "0", "27"]]
    for k, want in enumerate(expected):
        # Step with the keyboard until backward pass k+1 of 3 has finished.
        for _ in range(200):
            label = page.text_content("#pass-label") or ""
            if page.get_attribute("body", "data-step-type") == "backward_end" and f"{k + 1} of 3" in label:
                break
            page.keyboard.press("ArrowRight")
        else:
            pytest.fail(f"never reached the end of pass {k + 1}")
        assert cells(page, "#inspector .matrix.now td") == want
        assert page.text_content(f"[data-node-id='{a}'] .grad") == "grad [" + ", ".join(want) + "]"
        watched.shot(f"pass{k + 1}")
    # Between passes, a.grad.zero_() is its own step.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert "tensor([ 0.,  0., 27.])" in page.text_content("#output")


def test_chain_gradients_in_the_inspector(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.click("#play")  # play to the end, as a student would
    page.get_by_role("combobox", name=re.compile("Speed")).select_option("120")
    wait_until(page, "window.gradwalk.state.frame.last")
    page.click(f"[data-node-id='{node_id(page, 'w1')}']")
    assert cells(page, "#inspector .matrix-scalar.now") == ["3"]
    page.click(f"[data-node-id='{node_id(page, 'w2')}']")
    assert cells(page, "#inspector .matrix-scalar.now") == ["6"]
    # l3 = l2 * w2: the local derivative with the numbers, rendered by KaTeX.
    page.click(f"[data-node-id='{node_id(page, 'l3')}']")
    assert page.locator("#inspector .formula .katex").count() >= 2
    tex = " ".join(page.locator("#inspector .formula annotation").all_text_contents())
    assert "\\frac{\\partial \\mathrm{l3}}{\\partial \\mathrm{w2}} = \\mathrm{l2} = 6" in tex  # ∂l3/∂w2 = l2 = 6
    assert "\\sum_{5} 0.2 \\times 6 = 6" in tex  # w2's gradient: 0.2 × 6 summed over 5 = 6
    assert "None" in page.text_content("#inspector")  # l3.grad: not a leaf
    watched.shot("inspector")
    assert "tensor(3.) tensor(6.)" in page.text_content("#output")


def test_syntax_error_at_its_line(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, source="import torch\nx = torch.ones(2)\ny = (x +\nprint(y)\n")
    page.keyboard.press("End")
    problem = page.locator(".cm-gw-problem")
    problem.wait_for()
    assert "SyntaxError" in problem.inner_text()
    line = page.evaluate("window.gradwalk.state.trace.error.line")
    assert line in (3, 4)
    # The highlighted error line is that line of the program.
    source_lines = "import torch\nx = torch.ones(2)\ny = (x +\nprint(y)\n".split("\n")
    assert page.locator(".cm-gw-error-line").first.inner_text() == source_lines[line - 1]
    assert "SyntaxError" in page.text_content("#output")
    watched.shot("error")


def test_chinese_toggle_persists(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    assert page.text_content("#run") == "Run"
    page.click("#lang")
    assert page.text_content("#run") == "运行"
    assert page.get_attribute("html", "lang") == "zh-Hans"
    assert "示例" in page.text_content(".topbar")
    run_program(page, example="seed_3_scalar_backward")
    page.keyboard.press("End")
    assert re.search(r"[\u4e00-\u9fff]", page.text_content("#caption") or ""), "the caption is in Chinese"
    assert "输出" in page.text_content("#output-heading")
    watched.shot("zh")
    page.reload()
    page.wait_for_selector("body[data-mode]")
    assert page.text_content("#run") == "运行", "the choice survives a reload"


def test_a_tensor_becomes_a_leaf_at_its_requires_grad_call(watched) -> None:  # type: ignore[no-untyped-def]
    """The seed's first lesson: `a` is a constant until a.requires_grad_(), and the graph says so at each step."""
    page = watched.open("/?lang=en")
    run_program(page, example="seed_1_requires_grad")
    a = page.locator('g.node[data-node-id="0"]')
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")  # a = torch.tensor([1.0, 2.0, 3.0])
    assert "constant" in page.text_content("#caption")
    assert "constant" in (a.get_attribute("class") or "") and "leaf" not in (a.get_attribute("class") or "")
    assert "const" in a.locator("text.sub").text_content()
    steps = page.evaluate("window.gradwalk.state.trace.events.length")
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
        if "requires_grad_()" in page.text_content("#caption"):
            break
    else:
        raise AssertionError("no requires_grad_() step")
    assert "leaf" in (a.get_attribute("class") or "")
    assert "grad" in a.locator("text.sub").text_content()
    watched.shot("requires-grad")


def test_examples_speak_the_pages_language(watched) -> None:  # type: ignore[no-untyped-def]
    """The seed cells carry the course notebook's own Chinese comments in Chinese, English ones in English."""
    page = watched.open("/?lang=zh")
    page.wait_for_selector(".cm-content")
    assert "# 定义张量" in page.inner_text(".cm-content")  # the default example, seed_5_chain
    page.click("#lang")
    page.wait_for_function("document.querySelector('.cm-content').innerText.includes('# define the tensors')")
    assert page.input_value("#examples") == "seed_5_chain", "still the example, not a custom program"
    page.select_option("#examples", "seed_3_scalar_backward")
    page.click("#lang")
    page.wait_for_function("document.querySelector('.cm-content').innerText.includes('由用户创建，为叶子张量')")
    run_program(page)
    page.keyboard.press("End")
    assert page.evaluate("window.gradwalk.state.trace.status") == "ok"


HOSTILE = """import torch
__proto__ = torch.tensor([1.0, 2.0], requires_grad=True)
print("<img src=x onerror=alert(1)>")
print("</script><script>alert(2)</script>")
constructor = (__proto__ * 2).sum()
constructor.backward()
print(__proto__.grad)
"""


def test_hostile_content_is_text(watched, server) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, source=HOSTILE)
    page.keyboard.press("End")
    out = page.text_content("#output") or ""
    assert "<img src=x onerror=alert(1)>" in out
    assert "</script><script>alert(2)</script>" in out
    assert page.locator("#output img, #output script").count() == 0
    proto = node_id(page, "__proto__")
    assert page.text_content(f"[data-node-id='{proto}'] .title") == "__proto__"
    assert page.text_content(f"[data-node-id='{proto}'] .grad") == "grad [2, 2]"
    page.click(f"[data-node-id='{proto}']")
    assert page.text_content("#inspector h3") == "__proto__"
    watched.shot("page")

    # The same program saved as a share, with a hostile title, rendered by the server.
    title = "</script><script>alert(3)</script><b>bold</b>"
    created = httpx.post(server.url + "/api/share", json={"source": HOSTILE, "title": title}, timeout=60).json()
    page.goto(server.url + f"/s/{created['id']}?step=3")
    page.wait_for_selector("body[data-ready=true]")
    assert page.text_content("#share-title") == title
    assert page.locator("#share-title b").count() == 0
    assert page.get_attribute("body", "data-step") == "3", "?step=N opens at that step"
    page.keyboard.press("End")
    assert "</script><script>alert(2)</script>" in (page.text_content("#output") or "")
    watched.shot("share")

    # "Edit a copy" opens the program in the editor at /.
    page.get_by_role("link", name="Edit a copy").click()
    page.wait_for_selector(".cm-content")
    assert "__proto__ = torch.tensor" in page.inner_text(".cm-content")
    assert page.input_value("#examples") == ""

    # And chrome-less, as a slide would embed it.
    page.goto(server.url + f"/embed/{created['id']}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.text_content(f"[data-node-id='{proto}'] .title") == "__proto__"
    page.keyboard.press("End")
    assert page.text_content(f"[data-node-id='{proto}'] .grad") == "grad [2, 2]"
    watched.shot("embed")


def test_keyboard_only_and_url_step(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    page.select_option("#examples", "seed_3_scalar_backward")
    page.focus("#run")
    page.keyboard.press("Enter")  # Run, from the keyboard
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.evaluate("document.activeElement.id") == "graph", "the player has the keys after a run"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_until(page, "new URL(location.href).searchParams.get('step') === '2'")
    page.keyboard.press("Space")
    assert page.get_attribute("#play", "aria-pressed") == "true"
    page.keyboard.press("Space")
    assert page.get_attribute("#play", "aria-pressed") == "false"
    # Tab reaches graph nodes; Enter opens one in the inspector.
    page.focus("[data-node-id]")
    page.keyboard.press("Enter")
    assert page.locator("#inspector-body").is_visible()
    for el in page.locator("[data-node-id]").all():
        assert el.get_attribute("aria-label")


def test_timeout_in_plain_words(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    type_program(page, "import torch\nx = torch.ones(2, requires_grad=True)\nwhile True:\n    pass\n")
    page.get_by_role("button", name="Run").click()
    progress = page.locator("#progress")
    progress.wait_for(state="visible")
    page.wait_for_timeout(1200)
    assert re.search(r"Running… [1-9]\.\d s", progress.inner_text()), "elapsed time is shown while waiting"
    assert page.get_by_role("button", name="Cancel").is_visible()
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.keyboard.press("End")
    assert "ran too long" in page.text_content("#output")
    assert progress.is_hidden()
    watched.shot("timeout")


def test_cancel_a_run(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    type_program(page, "import time\ntime.sleep(3)\n")
    page.get_by_role("button", name="Run").click()
    page.get_by_role("button", name="Cancel").click()
    assert "cancelled" in page.text_content("#output")
    assert page.get_by_role("button", name="Run").is_enabled()


def test_reduced_motion_keeps_the_meaning(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    page.emulate_media(reduced_motion="reduce")
    run_program(page, example="seed_5_chain")
    page.select_option("#jump", label="Backward pass 1 of 1")
    page.keyboard.press("ArrowRight")
    pulse = page.locator(".edge.pulse").first
    pulse.wait_for(state="attached")
    assert pulse.evaluate("(e) => getComputedStyle(e).animationName") == "none"
    assert page.locator(".edge-label").count() >= 1, "the gradient on the edge is still shown as text"
    watched.shot("reduced-motion")


def test_language_from_accept_language(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-mode]")
        assert page.text_content("#run") == "运行"
        assert page.get_attribute("html", "lang") == "zh-Hans"
        assert "标量" in page.inner_text("#examples") or "雅可比" in page.inner_text("#examples")
    finally:
        context.close()


def test_api_docs_work_offline(watched) -> None:  # type: ignore[no-untyped-def]
    """/docs is Swagger UI from the app's own assets: it renders with the outside world blocked."""
    page = watched.page
    page.goto(watched.base + "/docs")  # not the app: no body[data-mode] to wait for
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert "/api/trace" in page.inner_text(".swagger-ui")
