import time

import torch

w = torch.tensor(1.0 + time.perf_counter_ns() % 1000 / 1000, requires_grad=True)
loss = w**3
loss.backward()
print(w.grad)
