import torch

a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)  # created by the user: a leaf tensor
b = a**2
c = b.sum()
c.backward()  # backpropagate: leaf gradients are kept, intermediate ones are freed
a.grad
