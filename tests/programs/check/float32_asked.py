import torch

a = torch.tensor([0.1, 0.7, -1.3], dtype=torch.float32, requires_grad=True)
layer = torch.nn.Linear(3, 2).float()
b = torch.tensor([1.5, -0.25]).to(torch.float32)
loss = (torch.tanh(layer(a.float())) * b).sum()
loss.backward()
print(a.grad)
