"""`python -m memalign_graph.cli` runs the `memalign` command."""

from memalign_graph.cli import main

raise SystemExit(main())
