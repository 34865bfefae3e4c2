import torch


def layer(v, weight):
    out = v @ weight
    return torch.relu(out)


w = torch.tensor([[1.0, -1.0], [0.5, 2.0]], requires_grad=True)
v = torch.tensor([1.0, 2.0])
y = layer(v, w).sum()
y.backward()
print(w.grad)
y.backward()  # second time without retain_graph
