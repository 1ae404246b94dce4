"""SciPy's functions on traced arrays (SciPy converts its arguments with np.asarray, which
traced arrays refuse): `adjit.scipy.linalg`, ... mirror the SciPy modules."""
