"""app/i18n: one table per language, the same keys and placeholders in each, read by every part that shows text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app import i18n
from app.gallery import examples
from app.tracer.hints import COMPILE_TIME, HINTS, hint_for

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}", re.ASCII)  # as i18n.js reads them: JavaScript's \w is ASCII (TeX's \text{该常数} is none)


def test_every_key_exists_in_every_language() -> None:
    keys = {lang: set(i18n.table(lang)) for lang in i18n.LANGS}
    for lang in i18n.LANGS:
        assert sorted(keys["en"] - keys[lang]) == [], f"missing in {lang}"
        assert sorted(keys[lang] - keys["en"]) == [], f"only in {lang}"


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_each_string_has_the_english_placeholders_and_is_not_empty(lang: str) -> None:
    for key, english in i18n.table("en").items():
        text = i18n.table(lang)[key]
        assert text.strip(), key
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(english)), key


def test_text_fills_placeholders_and_falls_back_to_english() -> None:
    assert i18n.text("zh", "player.passN", n=2, of=3) == "反向传播 第 2 次（共 3 次）"
    assert i18n.text("fr", "player.passN", n=1, of=1) == "Backward pass 1 of 1"
    assert i18n.text("en", "no.such.key") == "no.such.key"


def test_every_hint_and_example_has_its_text_in_the_tables() -> None:
    for hint_id in [*HINTS, COMPILE_TIME]:
        assert f"hint.{hint_id}" in i18n.table("en") and f"hint.{hint_id}" in i18n.table("zh")
    assert hint_for("RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn") == (
        "no_grad_fn",
        i18n.table("en")["hint.no_grad_fn"],
    )
    for example in examples():
        assert example.title.zh == i18n.table("zh")[f"example.{example.id}.title"]
        assert example.explanation.en == i18n.table("en")[f"example.{example.id}.explanation"]
    chain = next(e for e in examples() if e.id == "seed_5_chain")
    assert "# 定义张量" in chain.sources.zh and "# define the tensors" in chain.sources.en


def test_no_other_file_carries_interface_text() -> None:
    # The JS module reads the tables from the page; the catalog only orders the gallery.
    js = (ROOT / "static" / "js" / "i18n.js").read_text(encoding="utf-8")
    assert not re.search(r"[\u4e00-\u9fff]", js)
    for module in (ROOT / "app").rglob("*.py"):  # the Python side too, but for the example programs' comments
        if "examples" not in module.parts:
            assert not re.search(r"[\u4e00-\u9fff]", module.read_text(encoding="utf-8")), module
    assert isinstance(json.loads((ROOT / "app" / "examples" / "catalog.json").read_text(encoding="utf-8")), list)
    for template in (ROOT / "templates").glob("*.html"):
        for key, text in re.findall(r'data-i18n="([\w.]+)"[^>]*>([^<]*)<', template.read_text(encoding="utf-8")):
            assert text == f"{{{{ t('{key}') }}}}", f"{template.name}: {key} has its own text"
