# A 4-block GPT with scaled_dot_product_attention, tied weights and AdamW: its drawing is wider than a laptop's pane.
import torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h
        s.ln1 = nn.LayerNorm(d); s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d)
        s.ln2 = nn.LayerNorm(d); s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, s.h, C // s.h).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + s.mlp(s.ln2(x))
class GPT(nn.Module):
    def __init__(s, V=40, d=32, n=4, T=12):
        super().__init__()
        s.tok = nn.Embedding(V, d); s.pos = nn.Parameter(torch.zeros(1, T, d))
        s.blocks = nn.ModuleList(Block(d, 4) for _ in range(n)); s.ln = nn.LayerNorm(d)
        s.head = nn.Linear(d, V, bias=False); s.head.weight = s.tok.weight
    def forward(s, idx):
        x = s.tok(idx) + s.pos[:, : idx.shape[1]]
        for b in s.blocks: x = b(x)
        return s.head(s.ln(x))
model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
data = torch.randint(0, 40, (4, 13))
for it in range(3):
    logits = model(data[:, :-1])
    loss = F.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten())
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    print(f"{it}: {loss.item():.4f}")
