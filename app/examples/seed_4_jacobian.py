import torch

Jacobian = torch.zeros(3, 3)
a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)  # created by the user: a leaf tensor
b = torch.zeros(3)
b[0] = a[0]**2 + a[1]
b[1] = a[1] + a[2]
b[2] = a[2]**3
b.backward(torch.tensor([1, 0, 0]), retain_graph=True)
print(a.grad)  # d b_0 / d a
a.grad.zero_()
b.backward(torch.tensor([0, 1, 0]), retain_graph=True)
print(a.grad)  # d b_1 / d a
a.grad.zero_()
b.backward(torch.tensor([0, 0, 1]), retain_graph=True)
print(a.grad)  # d b_2 / d a
