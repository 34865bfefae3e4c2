# A small ResNet: 8 residual blocks of conv-batchnorm-relu on a batch of 8 CIFAR-sized images.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
CHANNELS, BLOCKS, CLASSES = 16, 8, 10


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS), nn.ReLU())
        self.blocks = nn.Sequential(*[Residual(CHANNELS) for _ in range(BLOCKS)])
        self.fc = nn.Linear(CHANNELS, CLASSES)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


model = ResNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
images = torch.randn(8, 3, 32, 32)
labels = torch.randint(0, CLASSES, (8,))
logits = model(images)
loss = F.cross_entropy(logits, labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
print(round(loss.item(), 4))
