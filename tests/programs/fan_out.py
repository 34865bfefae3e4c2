import torch

a = torch.tensor(3.0, requires_grad=True)
b = a * 2
c = a * a
d = b + c + a
d.backward()
print(a.grad)  # 2 + 2a + 1 = 9
