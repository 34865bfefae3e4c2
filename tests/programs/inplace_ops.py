import torch

a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
b = a * 2
b.add_(1)
b[1] = b[1] * 10
c = b.sum()
c.backward()
print(b, a.grad)
