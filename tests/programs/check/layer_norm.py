import torch

torch.manual_seed(0)
norm = torch.nn.LayerNorm(4)
with torch.no_grad():
    norm.weight.mul_(1.5)
    norm.bias.add_(0.1)
x = torch.randn(3, 4, requires_grad=True)
target = torch.randn(3, 4)
loss = ((norm(x) - target) ** 2).mean()
loss.backward()
print(loss.item())
