import torch
import torch.nn.functional as F

torch.manual_seed(0)
layer = torch.nn.Linear(3, 1)
x = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
target = torch.tensor([[1.0], [0.0]])
logits = layer(x)
loss = F.binary_cross_entropy_with_logits(logits, target)
loss.backward()
print(loss.item())
print(layer.weight.grad)
