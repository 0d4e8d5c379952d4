"""`python -m memalign_graph` runs the `memalign` command."""

from memalign_graph.cli import main

raise SystemExit(main())
