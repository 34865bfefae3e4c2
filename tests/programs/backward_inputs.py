"""backward(inputs=...) of a non-leaf, autograd.grad of several roots and of unused inputs."""

import torch

torch.manual_seed(0)
x = torch.randn(3, requires_grad=True)
h = x.exp()
y = (h * h).sum()
y.backward(inputs=[h], retain_graph=True)
print(h.grad)
a, b = x.chunk(3)[0], x.chunk(3)[2]  # two chunk nodes: the second sends output 0 no gradient
y1 = (a * 2).sum()
y2 = (b**3).sum()
(g1,) = torch.autograd.grad([y1, y2], x, grad_outputs=[torch.tensor(1.5), torch.tensor(-1.0)])
u = torch.randn(2, requires_grad=True)
gx, gu = torch.autograd.grad(y, [x, u], allow_unused=True, materialize_grads=True)
print(g1, gx, gu, x.grad)
