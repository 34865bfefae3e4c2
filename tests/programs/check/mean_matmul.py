import torch

torch.manual_seed(0)
W = torch.randn(3, 4, requires_grad=True)
x = torch.randn(4, 2, requires_grad=True)
b = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
y = (W @ x).mean(dim=1) + b
loss = (y * y).mean()
loss.backward()
print(loss.item())
