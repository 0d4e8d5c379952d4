"""The two memories: semantic (guidelines and the feedback ledger, in a checkpointer) and episodic (Qdrant)."""
