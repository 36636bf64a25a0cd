"""CLI command groups; each module exposes ``register(subparsers)``."""

import warnings

# NOTE: torch_geometric calls torch.jit.script at import time, and torch now warns that it is
# deprecated: a FutureWarning about a library's internals on every command that loads a
# model, which the user can do nothing about. Every process that runs a command (uvicorn's
# worker processes included) imports this package first. pytest's own filters say the same.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script(_method)?` is deprecated",
                        category=FutureWarning)
