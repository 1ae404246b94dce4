# %% [In 1]
# Do some imports
import adjit as torch

# Define the leaf nodes
a = torch.tensor([4.])

# This is just a vector of tensors
weights = [torch.tensor([i], requires_grad=True) for i in (2., 5., 9., 7.)]

# unpack the weights for nicer assignment
w1, w2, w3, w4 = weights

# %% [In 2]
type(a)

# %% [In 3]
# IMPORTANT:  When we create b, the graph creation begins!!!

# The next three lines of code (b, c, d creation) are our
# forward pass - when the inputs are processed into output

# BEGIN COMPUTATIONAL GRAPH CREATION (some operations)
b = w1 * a
c = w2 * a
d = w3 * b + w4 * c
# END GRAPH CREATION

# This is the loss
L = (10 - d)

# %% [In 4]
L.backward()

for index, weight in enumerate(weights, start=1):
    gradient, *_ = weight.grad.data
    print("Gradient of w{} w.r.t to L: {}".format(index, gradient))

# %% [In 5]
# Define the leaf nodes
a = torch.tensor([4.])

# This is just a vector of tensors
weights = [torch.tensor([i], requires_grad=True) for i in (2., 5., 9., 7.)]

# unpack the weights for nicer assignment
w1, w2, w3, w4 = weights


# IMPORTANT:  When we create b, the graph creation begins!!!

# The next three lines of code (b, c, d creation) are our
# forward pass - when the inputs are processed into output

# BEGIN COMPUTATIONAL GRAPH CREATION (some operations)
b = w1 * a
c = w2 * a
d = w3 * b + w4 * c
# END GRAPH CREATION

# This is the loss
L = (10 - d)

# Run the backwards propagation of gradients 
# (remember your chain rule for differentiation? Well PyTorch
# takes care of this for you!)
L.backward()

for index, weight in enumerate(weights, start=1):
    gradient, *_ = weight.grad.data
    print("Gradient of w{} w.r.t to L: {}".format(index, gradient))

# For fun let's say we had a learning rate of 1e-4
learning_rate = 1e-4

with torch.no_grad():
    w1 -= learning_rate * w1.grad
    w2 -= learning_rate * w2.grad

    # Manually zero the gradients after running the backward pass
    w1.grad.zero_()
    w2.grad.zero_()
