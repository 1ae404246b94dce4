# %% [In 1]
import numpy
import adjit as torch

# %% [In 27]
# since we want to calculate the gradien
x= torch.tensor(3., requires_grad=True)

# %% [In 28]
y = 3 * x**2 + 4*x + 2

# %% [In 29]
print(y)

# %% [In 30]
# now let's calculate the derivative of y wrt x. From picture above, we know the derivative at this point is 22.

# just call the backword() method on the variable y. Since x is defined with requires_grad=True, the derivative
# will be stored in x.grad 

y.backward()
print(x.grad)

# %% [In 31]
# method 1
x = x.requires_grad_(False)
print(x)

# method 2
x = x.detach()
print(x)

# %% [In 32]
# example with no settign to zero

x = torch.tensor(3., requires_grad = True)

for epoch in range(3):
    y = 3*x**2 + 4*x + 2
    
    y.backward()
    
    print(x.grad)

# %% [In 33]
# example with re-settign to zero

x = torch.tensor(3., requires_grad = True)

for epoch in range(3):
    y = 3*x**2 + 4*x + 2
    
    y.backward()
    
    print(x.grad)
    
    x.grad.zero_()

# %% [In 34]
x = torch.tensor([1., 2., 3.], requires_grad = True)

y = x * 2 + 3

z = y**2

print(z)

# %% [In 35]
# To calculate the back-propagate, we need a scalar from the end to  start with
out = z.mean()

out.backward()

print(out) # print mean value

print(x.grad) # print D(out)/D(x) at eah x value

# %% [In 36]
x = torch.tensor([1., 2., 3.], requires_grad = True)
y = x * 2 + 3
z = y**2

v = torch.tensor([1., 1., 1.])

z.backward(v)

print(x.grad)
print(x.grad / len(x))

# %% [In 37]
x = torch.tensor([1., 2., 3., 4., 5.])
y = 2 * x

# %% [In 38]
w_grad=[]
b_grad=[]

# %% [In 39]
# lets focus on only one value of x and y

w_ = torch.tensor(5., requires_grad = True) # initialization of w_, and to be optimized
b_ = torch.tensor(1., requires_grad = True) # initialization of b_, and to be optimized

# %% [In 40]
for i_value in range(len(x)):
    w = torch.tensor(5., requires_grad = True) # local w
    b = torch.tensor(1., requires_grad = True) # local b
    
    y_hat = w*x[i_value] + b  # Forward calc
    
    error = y_hat - y[i_value]
    
    loss = error**2
    
    loss.backward()  # here it gives the grad at each point of 5 elements in x list, or y list
    
    learn_rate = 0.01
    
    with torch.no_grad(): # update the parameter w_ and b_
        w_ -= learn_rate * (w.grad / len(x))
        b_ -= learn_rate * (b.grad / len(x))
        
print(w_)
print(b_)
