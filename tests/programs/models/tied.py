# Weight tying and a shared module: the output layer reuses the embedding's weight, one Linear is
# called twice per forward, and a module reached by two attribute names is one module.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
VOCAB, WIDTH = 12, 8


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.mix = nn.Linear(WIDTH, WIDTH)
        self.again = self.mix  # the same module under a second name
        self.norm = nn.LayerNorm(WIDTH // 2)
        self.out = nn.Linear(WIDTH, VOCAB, bias=False)
        self.out.weight = self.embed.weight  # tied

    def forward(self, idx):
        h = self.embed(idx)
        h = torch.tanh(self.mix(h))
        left, right = h.chunk(2, dim=-1)
        h = torch.cat([self.norm(left), right * left.sigmoid()], dim=-1)
        h = self.again(h)
        return self.out(h)


model = Tied()
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
idx = torch.tensor([[1, 4, 7, 2], [3, 3, 0, 11]])
targets = torch.tensor([[4, 7, 2, 9], [3, 0, 11, 5]])
for step in range(2):
    logits = model(idx)
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(step, round(loss.item(), 4))
