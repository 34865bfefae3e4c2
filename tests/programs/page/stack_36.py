# 36 x (Linear, LayerNorm, GELU): a deep stack of layers in one nn.Sequential.
import torch
import torch.nn as nn

torch.manual_seed(0)
layers = []
for _ in range(36):
    layers += [nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU()]
model = nn.Sequential(*layers)
x = torch.randn(4, 8)
loss = model(x).pow(2).mean()
loss.backward()
