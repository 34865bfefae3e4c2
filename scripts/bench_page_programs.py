"""The programs scripts/bench_page.py measures the page on: issue 12's graphs and the seed's small ones."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "app" / "examples"
PAGE_PROGRAMS = ROOT / "tests" / "programs" / "page"

RECURRENCE = """import torch

torch.manual_seed(0)
W = torch.randn(2, 2, requires_grad=True)
x = torch.randn({steps}, 2)
h = torch.zeros(2)
for t in range({steps}):
    h = 0.9 * torch.tanh(W @ h + x[t])
loss = h.sum()
loss.backward()
"""

GPT = """import torch
from torch import nn
import torch.nn.functional as F

torch.manual_seed(0)
V, D, T, H, L = 256, 128, 32, 4, {blocks}


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        B, T_, C = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q = q.view(B, T_, H, C // H).transpose(1, 2)
        k = k.view(B, T_, H, C // H).transpose(1, 2)
        v = v.view(B, T_, H, C // H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / (C // H) ** 0.5
        mask = torch.tril(torch.ones(T_, T_)).bool()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T_, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.attn = Attention()
        self.ln2 = nn.LayerNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Embedding(T, D)
        self.blocks = nn.Sequential(*[Block() for _ in range(L)])
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, V)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        return self.head(self.ln(self.blocks(x)))


model = GPT()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
idx = torch.randint(0, V, (2, T))
targets = torch.randint(0, V, (2, T))
logits = model(idx)
loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
opt.zero_grad()
loss.backward()
opt.step()
"""


def programs(big_steps: int) -> list[tuple[str, str]]:
    """(name, source): the seed's small graphs, issue 12's (a 50-step RNN, 36 x (Linear, LayerNorm, GELU),
    ~3,000 operations in one loop, a 12-block width-128 GPT training step) and the scale ones."""
    return [
        ("seed_5_chain", (EXAMPLES / "seed_5_chain.py").read_text()),
        ("seed_4_jacobian", (EXAMPLES / "seed_4_jacobian.py").read_text()),
        ("recurrence (example)", (EXAMPLES / "recurrence.py").read_text()),
        ("linear_loss", (EXAMPLES / "linear_loss.py").read_text()),
        ("RNN 50 steps", (PAGE_PROGRAMS / "rnn_50.py").read_text()),
        ("36 x Lin,LN,GELU", (PAGE_PROGRAMS / "stack_36.py").read_text()),
        ("3,000 ops", (PAGE_PROGRAMS / "ops_3000.py").read_text()),
        ("recurrence x100", RECURRENCE.format(steps=100)),
        ("recurrence x1000", RECURRENCE.format(steps=1000)),
        ("GPT 12 blocks w128", GPT.format(blocks=12)),
        ("GPT 24 blocks w128", GPT.format(blocks=24)),
        (f"recurrence x{big_steps}", RECURRENCE.format(steps=big_steps)),
    ]
