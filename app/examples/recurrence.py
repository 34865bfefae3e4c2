import torch

torch.manual_seed(0)
W = torch.randn(2, 2, requires_grad=True)
h = torch.zeros(2)
for t in range(3):
    h = torch.tanh(W @ h + 1.0)
loss = h.sum()
loss.backward()
print(W.grad)
