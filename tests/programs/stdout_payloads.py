import torch

__proto__ = torch.tensor([1.0], requires_grad=True)
constructor = __proto__ * 2
print("<img src=x onerror=alert(1)>")
print("</script><script>alert(2)</script>")
print("中文输出", "tab\there")
constructor.sum().backward()
print(__proto__.grad)
