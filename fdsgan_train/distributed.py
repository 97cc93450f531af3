"""torchrun support: process group setup from RANK / WORLD_SIZE / LOCAL_RANK, and reductions."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: ``rank`` of ``world_size``; rank 0 writes logs/checkpoints."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> Dist:
    """Join the process group when launched by torchrun (NCCL on CUDA, gloo on the CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    else:  # share the cores among the local ranks instead of oversubscribing them
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Dist(rank, world, local)


def all_reduce_sum(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum a tensor over ranks (identity without a process group)."""
    if d.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_reduce_min(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """Element-wise minimum of a tensor over ranks (identity without a process group)."""
    if d.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return values


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
