"""The ``seqmamba`` command line (Click)."""
