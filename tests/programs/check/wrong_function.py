import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output  # wrong: d(x*x)/dx is 2*x*grad_output


x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
w = torch.tensor(0.5, requires_grad=True)
loss = (Square.apply(x) * w).sum()
loss.backward()
print(x.grad, w.grad)
