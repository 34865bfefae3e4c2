import torch

a = torch.tensor([1.0, 2.0, 3.0])
print(a.requires_grad)
b = torch.tensor([4.0, 5.0, 6.0], requires_grad=True)
print(b.requires_grad)
a.requires_grad_()
a.requires_grad
