import torch

w = torch.tensor([0.0, 0.0], requires_grad=True)
opt = torch.optim.SGD([w], lr=0.5)
target = torch.tensor([1.0, -1.0])
for i in range(3):
    opt.zero_grad()
    loss = ((w - target) ** 2).sum()
    loss.backward()
    opt.step()
print(w)
