"""CRISS-style iterative mining and fine-tuning (arXiv 2006.09526; PROTOCOLS.md §2): the loop lives in :mod:`.loop`."""
