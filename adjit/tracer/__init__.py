"""Front ends that record into the IR: the PyTorch-style Tensor and the NumPy-style traced
array, plus printing and grad-mode state."""
