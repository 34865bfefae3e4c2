import torch

x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
bias = torch.tensor([0.5, -0.5, 1.0], requires_grad=True)
scale = torch.tensor(2.0, requires_grad=True)
y = (x + bias) * scale
z = y.sum()
z.backward()
print(bias.grad, scale.grad)
