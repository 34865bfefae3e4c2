import torch

logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], requires_grad=True)
weights = torch.tensor([1.0, -2.0, 0.5])
probs = torch.softmax(logits, dim=1)
loss = (probs * weights).sum() + torch.log_softmax(logits, dim=1)[:, 0].mean()
loss.backward()
print(logits.grad)
