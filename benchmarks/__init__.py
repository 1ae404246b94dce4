"""adjit's benchmarks: one module per workload in `workloads/`, run by `adjit bench`
(the framework, and how to write a workload, is in adjit/bench.py)."""
