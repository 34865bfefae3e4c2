# About 3,000 operations in one loop: x = x * w + 0.01, over and over.
import torch

w = torch.tensor(0.999, requires_grad=True)
x = torch.tensor(1.0)
for i in range(1000):
    x = torch.sin(x * w + 0.01)
x.backward()
