"""Names that move between tensors: a swap, then augmented assignments in place."""

import torch

a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0], requires_grad=True)
c = a * b
d = a + b
c, d = d, c  # c is now the sum, d the product: each node carries both names
e = c * 1
e += d
e *= 2
total = e.sum()
total.backward()
print(a.grad, b.grad)
