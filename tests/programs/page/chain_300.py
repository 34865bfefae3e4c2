# 300 operations in one flat graph (the loop is inside a function, so it makes no loop groups).
import torch


def unroll(w, h, steps):
    for _ in range(steps):
        h = torch.tanh(h * w + 0.1)
    return h


w = torch.tensor(0.5, requires_grad=True)
h = unroll(w, torch.tensor(1.0), 100)
h.backward()
