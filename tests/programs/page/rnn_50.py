# A 50-step recurrent network unrolled by a loop: h = tanh(Wx @ x[t] + Wh @ h).
import torch

torch.manual_seed(0)
Wx = torch.randn(8, 4, requires_grad=True)
Wh = torch.randn(8, 8, requires_grad=True)
xs = torch.randn(50, 4)
h = torch.zeros(8)
for t in range(50):
    h = torch.tanh(Wx @ xs[t] + Wh @ h)
loss = h.pow(2).sum()
loss.backward()
