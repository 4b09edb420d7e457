"""Other workflow engines running the same workloads as treeflow's benchmarks, for comparison."""
