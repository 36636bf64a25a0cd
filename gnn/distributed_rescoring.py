"""`TorchRanks`: a rescoring run shared by the processes of a ``torch.distributed`` group
(launched by ``torchrun``; gloo on CPU, NCCL on GPUs).

Every rank exports the graph itself (on Neo4j through the driver's routing in read
transactions, so a cluster's read replicas serve the exports), builds its share of each per-node
table of :class:`~gnn.full_graph_inference.FullGraphInference` (row chunk ``i`` on rank
``i % world_size``) and completes it with one ``all_reduce`` (each rank contributes its rows and
zeros elsewhere, so the sum is exactly the rows), then scores and writes the root chunks it owns.
A chunk is computed the same way whichever rank holds it, so the scores equal a single
process's bit for bit (``tests/gnn/test_distributed_rescoring.py``). Small Python values (the
run, the chunks done, the parts for the report) travel over a gloo group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor

from gnn.full_graph_inference import TABLE_CHUNK, RootChunk, root_chunks
from gnn.rescoring import SingleProcess
from graph.typing import NodeType


class TorchRanks:
    """:class:`gnn.rescoring.Ranks` over an initialised default ``torch.distributed`` group.

    Args:
        device (torch.device or str): where the tables live (the rank's GPU under NCCL).
    """

    def __init__(self, device: torch.device | str) -> None:
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised (launch with torchrun)")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.device = torch.device(device)
        # NOTE: objects (pickled) over gloo whatever the tensor backend: NCCL moves only
        # device tensors, and these are host values.
        self._objects = cast(dist.ProcessGroup | None, dist.new_group(backend="gloo")
                             if dist.get_backend() != "gloo" else None)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(rank={self.rank}, world_size={self.world_size})"

    def build_table(self, rows: Callable[[RootChunk], Tensor], n: int,
                    node_type: NodeType) -> Tensor:
        mine = [(c, rows(c)) for c in root_chunks(n, TABLE_CHUNK)
                if c.index % self.world_size == self.rank]
        width = torch.tensor([mine[0][1].shape[1] if mine else 0], device=self.device)
        dist.all_reduce(width, op=dist.ReduceOp.MAX)
        table = torch.zeros((n, int(width.item())), device=self.device)
        for chunk, part in mine:
            table[chunk.start:chunk.stop] = part
        dist.all_reduce(table)
        return table

    def broadcast(self, value: Any) -> Any:
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self._objects)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        dist.gather_object(value, out, dst=0, group=self._objects)
        return out

    def close(self) -> None:
        dist.destroy_process_group()


def start_ranks(world_size: int, device: torch.device | str) -> TorchRanks | SingleProcess:
    """The ranks of this process: a :class:`TorchRanks` over a new default group when
    ``world_size > 1`` (its rendezvous from the ``env://`` variables torchrun sets: NCCL on a
    CUDA device, gloo otherwise), else :class:`~gnn.rescoring.SingleProcess`."""
    if world_size <= 1:
        return SingleProcess()
    device = torch.device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                            init_method="env://")
    return TorchRanks(device)
