import torch

x = torch.tensor(2.0, requires_grad=True)
y = x ** 3
(dy,) = torch.autograd.grad(y, x, create_graph=True)  # 3x^2 = 12
dy.backward()  # d(3x^2)/dx = 6x = 12
print(dy.item(), x.grad)
