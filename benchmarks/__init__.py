"""Benchmarks of memalign-graph: alignment, incremental alignment, judge overhead, prompt tokens,
batch throughput and scale. Run `python -m benchmarks --help`."""
