import torch

x = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
y = torch.log(x)  # log(0) = -inf, log(-1) = nan
z = torch.sqrt(x)
s = (y * 0 + z).sum()
s.backward()
print(y)
print(x.grad)
