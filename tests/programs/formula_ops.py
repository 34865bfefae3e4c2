import torch

# Every op the inspector's formulas cover, each once, on values that make every number distinct.
x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
w = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]], requires_grad=True)
v = torch.tensor([1.5, -0.5, 2.0], requires_grad=True)
bias = torch.tensor([0.1], requires_grad=True)
quotient = x / v
scaled = x / 4
negated = -x
shifted = 3 - x
grown = torch.exp(x)
logged = torch.log(x)
squashed = torch.sigmoid(v)
bent = torch.tanh(v)
clipped = torch.relu(v)
rooted = torch.sqrt(x)
cubed = x**3
mv = w @ v
mm = w @ w.T
addmm = torch.addmm(bias, w, v.unsqueeze(1)).squeeze(1)
part = x[1:3]
first = v[0]
total = (quotient + scaled + negated + shifted + grown + logged + squashed + bent + clipped + rooted + cubed).sum()
loss = total + mv.sum() + mm.mean() + addmm.sum() + part.sum() * first
loss.backward()
