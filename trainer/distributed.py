"""Multi-process training under torchrun/DDP: which process this is, and the few collectives the trainer uses.

Sits under :mod:`trainer.train` (which sets up the process group and wraps the
model in DistributedDataParallel) and :mod:`trainer.engine` (which reduces the
metrics). torchrun (``python -m torch.distributed.run``) starts one process per
GPU and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_distributed`
joins them into one process group, NCCL on CUDA and gloo on CPU. Without
torchrun (or with one process) the context is :data:`SINGLE`: no process group,
no collective, and training is exactly the single-process code path.
Never imports ``hvuaudit``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from hvucontracts.errors import HvuError
from trainer.errors import ReplicaMismatchError

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place among the processes of one training run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    """Index of this process on its machine: the GPU it uses."""

    @property
    def enabled(self) -> bool:
        """More than one process: collectives run and the model is wrapped in DDP."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes files."""
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def _device(self) -> torch.device:
        # NCCL reduces tensors on this process's GPU, gloo on the CPU
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def min_over_processes(self, value: int) -> int:
        """The smallest ``value`` of all processes (``value`` itself in one process)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self._device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def all_gather(self, obj: T) -> list[T]:
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_on_main(self, obj: T) -> list[T] | None:
        """Every process's ``obj`` in rank order on rank 0, None elsewhere (for data only rank 0 needs)."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def run_on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only; every process returns its result or raises its error (any HvuError).

        For steps with side effects (preparing the run folder) whose failure must
        stop every process, not leave the others waiting in the next collective.
        """
        if not self.enabled:
            return fn()
        outcome: list[Any] = [None]
        if self.is_main:
            try:
                outcome[0] = ("ok", fn())
            except HvuError as exc:
                outcome[0] = ("error", exc)
        dist.broadcast_object_list(outcome, src=0)
        kind, value = outcome[0]
        if kind == "error":
            raise value
        return value

    def check_replicas_equal(self, module: nn.Module, *, epoch: int) -> None:
        """Raise :class:`~trainer.errors.ReplicaMismatchError` unless every process holds the same weights.

        DDP keeps the replicas equal only if every process changes them in the same way; a step outside
        DDP's all-reduce (an ensemble head drawn afresh) must be the same draw everywhere. Each process
        sends one number per parameter tensor (its sum in float64, so that two tensors swapped are seen
        too), once an epoch; a tolerance of 1e-9 of their size allows for another reduction order on other
        hardware. A NaN never compares equal, so weights gone NaN are reported as well.
        """
        if not self.enabled:
            return
        with torch.no_grad():
            fingerprint = [float(p.detach().double().sum()) for p in module.parameters()]
        fingerprints = self.all_gather(fingerprint)
        mine = fingerprints[0]
        differ = [
            rank
            for rank, theirs in enumerate(fingerprints)
            if len(theirs) != len(mine)
            or not all(abs(a - b) <= 1e-9 * max(1.0, abs(a)) for a, b in zip(mine, theirs, strict=True))
        ]
        if differ:
            totals = ", ".join(f"{math.fsum(f):.12g}" for f in fingerprints)
            raise ReplicaMismatchError(
                f"after epoch {epoch} the {self.world_size} processes hold different weights (process(es) "
                f"{', '.join(map(str, differ))} differ from process 0; sums of the parameters {totals}): a "
                "bug of the trainer, please report it with the run's config.json",
                hint="the same run with one process does not depend on this",
            )

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every process.

        DDP broadcasts them at the start of each training forward, so after an
        epoch every process holds statistics updated by its own last batch;
        validation must use rank 0's, the ones the checkpoint saves.
        """
        if not self.enabled:
            return
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


SINGLE = DistContext()


def context_from_env(env: Mapping[str, str] | None = None) -> DistContext:
    """The context torchrun describes in the environment (:data:`SINGLE` without torchrun)."""
    env = os.environ if env is None else env
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    return DistContext(
        rank=int(env["RANK"]), world_size=world_size, local_rank=int(env.get("LOCAL_RANK", "0"))
    )


def init_distributed(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU); nothing to do in one process."""
    if not ctx.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


def shutdown_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
