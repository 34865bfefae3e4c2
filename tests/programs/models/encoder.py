# torch's own nn.TransformerEncoder (two layers) classifying random sequences, two Adam steps.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
WIDTH, HEADS, LENGTH, BATCH = 16, 2, 6, 3


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(WIDTH, HEADS, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, 2)

    def forward(self, x):
        h = self.encoder(x)
        first, rest = h.split([1, LENGTH - 1], dim=1)
        return self.head(first.squeeze(1) + rest.mean(dim=1))


model = Classifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
x = torch.randn(BATCH, LENGTH, WIDTH)
y = torch.tensor([0, 1, 1])
for step in range(2):
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(step, round(loss.item(), 4))
