"""Datasets, samplers and loaders: from a :class:`~trainer.videos.ClipTable` to batches.

The trainer's fourth step. Batches hold uint8 video (b, 3, t, h, w); the engine
normalises on the device. A clip that fails to decode is dropped from its batch and
counted, never a crash. Randomness comes from (seed, epoch, index) alone, so a
resumed run sees the same clips and crops. Never imports ``hvuaudit``.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from trainer.decoding import centre_crop, decode_clip, random_resized_crop
from trainer.videos import ClipTable


@dataclass(frozen=True)
class ClipSettings:
    """How clips are sampled and augmented."""

    clip_len: int = 16
    frame_stride: int = 2
    size: int = 112
    min_crop_scale: float = 0.35
    hflip: bool = True


class ClipDataset(Dataset):
    """Decoded clips of one set. Returns a sample dict, or ``None`` when decoding failed.

    Keys are ``i`` (evaluation: centre clip, centre crop) or ``(epoch, i)`` from
    :class:`EpochSampler` (training: random start, random resized crop, flip),
    whose randomness comes from ``(seed, epoch, i)`` alone: the same clip gets the
    same augmentation whatever the worker count or order, which makes resume exact.
    """

    def __init__(
        self,
        table: ClipTable,
        *,
        n_scenes: int,
        n_objects: int,
        settings: ClipSettings,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.table = table
        self.n_scenes, self.n_objects = n_scenes, n_objects
        self.settings = settings
        self.train = train
        self.seed = seed

    def __len__(self) -> int:
        return len(self.table)

    def _multi_hot(self, idx: np.ndarray, k: int) -> torch.Tensor:
        out = torch.zeros(k, dtype=torch.float32)
        out[torch.from_numpy(idx)] = 1.0
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        s = self.settings
        rng = np.random.default_rng([self.seed, epoch, i]) if self.train else None
        try:
            crop = rng is not None and s.min_crop_scale < 1.0
            # random crops are taken from frames up to 1.25× the output size, centre crops at size
            short = (s.size, math.ceil(1.25 * s.size)) if crop else (s.size, s.size)
            frames = decode_clip(
                self.table.path[i],
                clip_len=s.clip_len,
                frame_stride=s.frame_stride,
                short_side=short,
                rng=rng,
                window=self.table.window[i] if self.table.window else None,
            )
            if crop and rng is not None:  # crop implies rng is not None
                video = random_resized_crop(frames, s.size, rng, min_scale=s.min_crop_scale)
            else:
                video = centre_crop(frames, s.size)
        except Exception:  # a corrupt or vanished file: skipped and counted by the collate
            return None
        if rng is not None and s.hflip and rng.random() < 0.5:
            video = video.flip(2)
        return {
            "video": video.permute(3, 0, 1, 2).contiguous(),  # (3, t, size, size) uint8
            "action": int(self.table.action[i]),
            "scene": self._multi_hot(self.table.scene_idx[i], self.n_scenes),
            "object": self._multi_hot(self.table.object_idx[i], self.n_objects),
            "index": i,
        }


def collate_clips(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the decoded samples; failed ones (None) are dropped and counted in ``skipped``."""
    kept = [s for s in samples if s is not None]
    batch: dict[str, Any] = {"skipped": len(samples) - len(kept), "n": len(kept)}
    if kept:
        batch["video"] = torch.stack([s["video"] for s in kept])  # (b, 3, t, h, w) uint8
        batch["action"] = torch.tensor([s["action"] for s in kept], dtype=torch.int64)
        batch["scene"] = torch.stack([s["scene"] for s in kept])  # (b, n_scenes)
        batch["object"] = torch.stack([s["object"] for s in kept])  # (b, n_objects)
        batch["index"] = torch.tensor([s["index"] for s in kept], dtype=torch.int64)
    return batch


class EpochSampler(Sampler):
    """Yields ``(epoch, i)``: a permutation seeded by (seed, epoch), or the identity order."""

    def __init__(self, n: int, *, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            if self.shuffle
            else range(self.n)
        )
        for i in order:
            yield (self.epoch, int(i))


class DistributedEpochSampler(DistributedSampler):
    """torch's DistributedSampler yielding ``(epoch, i)`` keys for :class:`ClipDataset`.

    Every process gets ``ceil(n / world_size)`` clips of one permutation seeded by
    ``seed + epoch`` (the first clips repeat to fill the last share), so all
    processes take the same number of steps, as DDP needs.
    """

    def __iter__(self):
        for i in super().__iter__():
            yield (self.epoch, int(i))


class ShardSampler(Sampler):
    """Rows ``rank``, ``rank + world_size``, ... in order: each clip evaluated by exactly one process.

    Unlike DistributedSampler there is no padding, so no clip is counted twice
    in the reduced metrics; shares may differ by one clip, which evaluation
    (no collective per step) allows.
    """

    def __init__(self, n: int, *, rank: int, world_size: int) -> None:
        self.rows = range(rank, n, world_size)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


def seed_worker(worker_id: int) -> None:
    """Per-worker seeds (from the loader's generator) and one torch thread per worker."""
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loader(
    dataset: ClipDataset,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    shuffle: bool,
    drop_last: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int = 2,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader over this process's share of ``dataset``.

    Training loaders (``shuffle``) support ``loader.sampler.set_epoch``. In one
    process the sampler is :class:`EpochSampler`; under torchrun training uses
    :class:`DistributedEpochSampler` and evaluation :class:`ShardSampler`.
    Workers stay alive between epochs (``persistent_workers``) and each keeps
    ``prefetch_factor`` batches decoded ahead; ``pin_memory`` (CUDA) lets the
    copy to the GPU run asynchronously.

    Workers start from a forkserver, not by forking the training process: that
    process has threads (the other loader's queue feeders, the pin-memory
    thread, gloo/NCCL), and a fork taken while one of them holds a lock can
    deadlock the new worker (seen under torchrun). The server imports this
    module (torch, PyAV) once; each worker is then a cheap fork of it.
    """
    context = None
    if workers > 0:
        context = multiprocessing.get_context("forkserver")
        # this module, by its own name, so that a rename cannot leave the preload stale
        context.set_forkserver_preload([__name__])
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler: Sampler
    if world_size == 1:
        sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle)
    elif shuffle:
        sampler = DistributedEpochSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
    else:
        sampler = ShardSampler(len(dataset), rank=rank, world_size=world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        multiprocessing_context=context,
    )
