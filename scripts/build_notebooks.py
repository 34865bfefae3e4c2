"""Write examples/autograd_tutorial_zh.ipynb and its English twin from the seed notebook's text.

    .venv/bin/python scripts/build_notebooks.py [SEED.txt]   # default: ../shared/seed/autograd_tutorial_zh.txt

The seed's cells as they are (markdown, code, its Chinese comments), with `%load_ext gradwalk` in the
first code cell and `%%gradwalk` on every cell that teaches (each one after `import torch`). The
English twin has the same code, its markdown and comments translated by the tables below; a seed
line with Chinese text and no translation stops the script, so a changed seed cannot slip through
half translated. The notebooks are committed without outputs; cell ids are fixed (stable diffs).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "autograd_tutorial_zh.txt"
OUT = ROOT / "examples"
CODE_MARK = "In [None]:"
CJK = re.compile(r"[\u2e80-\u9fff\uff00-\uffef]")

INTRO = {
    "zh": "# PyTorch 自动求导\n\n"
    "以 `%%gradwalk` 开头的单元格照常运行，并在下方显示它的自动求导图：点击播放器，按 ▶ 或 ← → 逐步查看前向与反向传播。"
    "需要先 `pip install gradwalk`。",
    "en": "# PyTorch autograd\n\n"
    "A cell that starts with `%%gradwalk` runs as usual and shows its autograd graph under it: click the player, "
    "then ▶ or ← → to step through the forward and backward passes. Needs `pip install gradwalk`.",
}

# The seed's Chinese lines (markdown lines and code comments, stripped), in English.
EN = {
    "## 基础尝试": "## First steps",
    "创建的tensor默认是不求梯度的": "A new tensor does not require grad by default",
    "通过 `requires_grad_()`来令张量求梯度": "`requires_grad_()` makes a tensor require grad",
    "若需要求梯度，则tensor的元素需要是float类型的": "To require grad, a tensor's elements must be floating point",
    "## 反向传播": "## Backpropagation",
    "一般我们都是对loss做反向传播，loss是一个标量。下面就是标量的反向传播。": "We usually backpropagate from the loss, "
    "which is a scalar. Here is backpropagation from a scalar.",
    "上面是标量的求导，那么张量的的求导呢？": "That was the derivative of a scalar; what about the derivative of a tensor?",
    "一个反向传播的例子": "An example of backpropagation",
    "由用户创建，为叶子张量": "created by the user: a leaf tensor",
    "反向传播（求导），对于叶子张量的导数会被保存，其他中间量的导数会被释放。": "backpropagate: leaf gradients are kept, "
    "intermediate ones are freed",
    "反向传播（求导）,对于叶子张量的导数会被保存，其他中间量的导数会被释放。": "backpropagate: leaf gradients are kept, "
    "intermediate ones are freed",
    "定义张量": "define the tensors",
    "执行正向操作": "forward",
    "反向传播": "backward",
}


def _is_markdown_start(line: str) -> bool:
    """After a blank line inside a code block: does the seed's markdown start here?"""
    text = line.strip()
    if text.startswith("##") or text.startswith("$$"):
        return True
    try:
        compile(text, "<seed>", "exec")
    except SyntaxError:
        return True
    return line != line.lstrip() and bool(CJK.search(line))  # " 一个反向传播的例子": indented prose


def cells(seed: str) -> list[tuple[str, str]]:
    """The seed's cells in order: ("code" | "markdown", text)."""
    out: list[tuple[str, str]] = []
    chunks = seed.split(CODE_MARK)
    if chunks[0].strip():
        out.append(("markdown", chunks[0].strip()))
    for chunk in chunks[1:]:
        lines = chunk.strip("\n").split("\n")
        end = len(lines)
        for i in range(1, len(lines)):
            if lines[i - 1].strip() == "" and lines[i].strip() and _is_markdown_start(lines[i]):
                end = i
                break
        out.append(("code", "\n".join(lines[:end]).strip()))
        markdown = "\n".join(lines[end:]).strip()
        if markdown:
            out.append(("markdown", markdown))
    return out


def translate(text: str, kind: str) -> str:
    """The English twin of one cell: each Chinese markdown line, or comment, from the table."""
    lines = []
    for line in text.split("\n"):
        if not CJK.search(line):
            lines.append(line)
            continue
        if kind == "markdown":
            key = line.strip()
            if key not in EN:
                sys.exit(f"no English for the seed's line: {line!r} (add it to EN in {Path(__file__).name})")
            lines.append(line[: len(line) - len(line.lstrip())] + EN[key])
            continue
        code, sep, comment = line.partition("#")
        key = comment.strip()
        if not sep or key not in EN:
            sys.exit(f"no English for the seed's comment: {line!r} (add it to EN in {Path(__file__).name})")
        lines.append(f"{code}{sep}{' ' if comment.startswith(' ') else ''}{EN[key]}")
    return "\n".join(lines)


def notebook(seed_cells: list[tuple[str, str]], lang: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nb.cells.append(nbformat.v4.new_markdown_cell(INTRO[lang]))
    first_code = True
    for kind, text in seed_cells:
        if lang == "en":
            text = translate(text, kind)
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        elif first_code:  # `import torch`: the extension loads with it
            nb.cells.append(nbformat.v4.new_code_cell("%load_ext gradwalk\n" + text))
            first_code = False
        else:
            nb.cells.append(nbformat.v4.new_code_cell(f"%%gradwalk --lang {lang}\n{text}"))
    for i, cell in enumerate(nb.cells):
        cell.id = f"{lang}-{i:02d}"
    return nb


def main() -> None:
    seed_path = Path(sys.argv[1]) if len(sys.argv) > 1 else SEED
    seed_cells = cells(seed_path.read_text(encoding="utf-8"))
    OUT.mkdir(exist_ok=True)
    for lang in ("zh", "en"):
        nb = notebook(seed_cells, lang)
        nbformat.validate(nb)
        path = OUT / f"autograd_tutorial_{lang}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(
            f"{path.relative_to(ROOT)}: {len(nb.cells)} cells, {sum(c.source.startswith('%%gradwalk') for c in nb.cells)} traced"
        )


if __name__ == "__main__":
    main()
