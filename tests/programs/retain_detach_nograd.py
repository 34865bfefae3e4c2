import torch

x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
h = x * 2
h.retain_grad()
d = h.detach()
with torch.no_grad():
    m = x * 5
out = (h * d).sum() + m.sum()
out.backward()
print(h.grad, x.grad, d.requires_grad, m.requires_grad)
