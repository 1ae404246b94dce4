# %% [In ] 1
import adjit as torch
a = torch.tensor([[1., 2], [3, 4]], requires_grad=True)
b = torch.ones((2, 2), requires_grad=True)
a, b

# %% [In ] 2
c = a + b
d = b * c
d = d + a
d.retain_grad()

# %% [In ] 3
c.requires_grad

# %% [In ] 4
from adjit import make_dot
e = torch.mean(d) + torch.mean(b)
make_dot(e)

# %% [In ] 5
e.backward()
# for memory efficiency, the graph is deleted during the backward
# e.backward() # error

# if we want not the graph to be freed, specify retain_graph=True 

# %% [In ] 6
b.grad # it is a leaf of the graph

# %% [In ] 7
c.grad # it is not a leaf

# %% [In ] 8
d.grad # it is not a leaf, but has the attribute retains_grad=True

# %% [In ] 9
# Dynamic graph - (define-by-run)
# it reminds of the difference between Python variables and C variables
x = torch.tensor([1., 2.], requires_grad=True)
y = x.sum()

while y.data.norm() < 12:
    y = y * 1.2

# %% [In ] 10
make_dot(y)

# %% [In ] 11
y.backward()

# %% [In ] 12
x.grad

# %% [In ] 13
# you cannot get a numpy array from a tensor which requires grad
# x.numpy() # error

# we must detach it from the computational graph
print(x)
print(x.detach())
print(x.detach().numpy())

# %% [In ] 14
# both detach() and numpy() are both views on the same storage
x_dn = x.detach().numpy()
x[0] = 99
print(x_dn)
