# A small CNN with BatchNorm, trained for three SGD steps on random images: running statistics move.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(8, 3)

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3))
        return self.classifier(x)


model = SmallCNN()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
images = torch.randn(6, 1, 8, 8)
labels = torch.randint(0, 3, (6,))
for step in range(3):
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(step, round(loss.item(), 4))
print(model.features[1].running_mean)
