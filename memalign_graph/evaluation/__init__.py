"""The MemAlign evaluation protocol: datasets, ablations, metrics, results and plots."""
