"""Kernels for tests/kernels/test_compile_ahead.py's worker processes: each `warmup` appends what it was given
to the file named by AHEAD_STUB_LOG, as a JSON line, in the worker's process."""

from __future__ import annotations

import json
import os


class StubKernel:
    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour

    def warmup(self, *args, grid, **constexprs) -> None:
        if self.behaviour == "raise":
            raise RuntimeError("this variant does not compile")
        if self.behaviour == "die":
            os._exit(3)
        with open(os.environ["AHEAD_STUB_LOG"], "a") as log:
            log.write(json.dumps({"pid": os.getpid(), "args": [repr(a) for a in args], "grid": list(grid),
                                  "constexprs": {k: repr(v) for k, v in constexprs.items()}}) + "\n")


kernel = StubKernel()
failing = StubKernel("raise")
dying = StubKernel("die")
