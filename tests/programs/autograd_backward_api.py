import torch

a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0], requires_grad=True)
y1 = (a * b).sum()
y2 = (a + b).sum()
torch.autograd.backward([y1, y2])
print(a.grad, b.grad)
