# Manual SGD the old way, through .data: every update of w and b is an event, as with torch.no_grad().
import torch

torch.manual_seed(0)
x = torch.randn(8, 3)
y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
w = torch.zeros(3, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range(3):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    w.data -= 0.1 * w.grad
    b.data.sub_(0.1 * b.grad)
    w.grad.data.zero_()
    b.grad.detach().zero_()
print(loss.item())
