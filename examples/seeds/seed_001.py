# %% [In 1]
import adjit as torch

x = torch.randn(3,3) # requires_grad=False by default
y = torch.randn(3,3) #requires_grad=False by default
z = torch.randn((3,3),requires_grad=True)
a = x+y # since both x and y don't require gradients, a also doesn't require gradients
print(a.requires_grad) #output: False
b = a+z #since z requires gradient, b also requires gradient
print(b.requires_grad) #output: True

# %% [In 1] 2
import adjit as torch

# Define the graph a,b,c,d are leaf nodes and e is the root node
# The graph is constructed with every line since the 
# computational graphs are dynamic in PyTorch
a = torch.tensor([2.0],requires_grad=True)
b = torch.tensor([3.0],requires_grad=True)
c = torch.tensor([5.0],requires_grad=True)
d = torch.tensor([10.0],requires_grad=True)
u = a*b
t = torch.log(d)
v = t*c
t.retain_grad()
e = u+v

# %% [In 2]
print(a.is_leaf)
print(a.grad_fn)
print(a.grad)
print()

print(e.is_leaf)
print(e.grad_fn)
print(e.grad)
print()

print(t.is_leaf)
print(t.grad_fn)
print(t.grad)

# %% [In 3]
from IPython.display import display, Math

e.backward()
display(Math(fr'\frac{{\partial e}}{{\partial a}} = {a.grad.item()}'))
print()
display(Math(fr'\frac{{\partial e}}{{\partial b}} = {b.grad.item()}'))
print()
display(Math(fr'\frac{{\partial e}}{{\partial c}} = {c.grad.item()}'))
print()
display(Math(fr'\frac{{\partial e}}{{\partial d}} = {d.grad.item()}'))

# %% [In 4]
print(a.is_leaf)
print(a.grad_fn)
print(a.grad)
print()

print(e.is_leaf)
print(e.grad_fn)
print(e.grad)
print()

print(t.is_leaf)
print(t.grad_fn)
print(t.grad)
