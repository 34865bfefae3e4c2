import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
y = torch.tensor([[1.0], [0.0]])

optimizer.zero_grad()
pred = model(x)
loss = ((pred - y) ** 2).mean()
loss.backward()
optimizer.step()
print(round(loss.item(), 4))
