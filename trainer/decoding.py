"""Decoding and augmenting one clip with PyAV: from a file to a (t, h, w, 3) uint8 array.

The trainer's third step, used by :mod:`trainer.dataset` in DataLoader workers and by
Grad-CAM (``hvueval.gradcam``). Seeks near the start instead of decoding from the
beginning; crops and resizes on tensors. Never imports ``hvuaudit``.
"""

from __future__ import annotations

import math

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter


# --------------------------------------------------------------------------- decoding
def decode_clip(
    path: str,
    *,
    clip_len: int,
    frame_stride: int,
    short_side: tuple[int, int],
    rng: np.random.Generator | None,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """``clip_len`` RGB frames, ``frame_stride`` apart, scaled so the short side lies in ``short_side``.

    ``short_side = (lo, hi)``: frames whose short side is below ``lo`` are scaled up
    to ``lo``, above ``hi`` down to ``hi``; in between they keep their size.

    ``rng`` picks a random start (training); ``None`` takes the centre clip. ``window``
    (start, end) in seconds restricts both to that span of a longer file (a whole YouTube
    video holding the clip). Seeks near the start instead of decoding from the beginning, and
    converts every
    frame with one reused :class:`VideoReformatter`. Short videos repeat their
    last frame. Returns (t, h, w, 3) uint8.
    """
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        time_base = float(stream.time_base) if stream.time_base else 0.0
        t0 = stream.start_time or 0
        n_frames = stream.frames
        if not n_frames and stream.duration and fps and time_base:
            n_frames = int(round(stream.duration * time_base * fps))
        offset = 0  # the window's first frame
        if window is not None:
            if not fps:
                raise ValueError(f"{path}: no frame rate, so the clip's times cannot be cut from it")
            offset = int(round(window[0] * fps))
            n_frames = max(1, int(round((window[1] - window[0]) * fps)))
        span = (clip_len - 1) * frame_stride + 1
        first = 0
        if n_frames > span:
            first = int(rng.integers(0, n_frames - span + 1)) if rng is not None else (n_frames - span) // 2
        first += offset
        # within a window, frames past its end are never read: the last one repeats, as for a short file
        last_allowed = offset + n_frames - 1 if window is not None else None
        wanted = [first + i * frame_stride for i in range(clip_len)]
        if last_allowed is not None:
            wanted = [min(idx, max(first, last_allowed)) for idx in wanted]
        wanted_set = set(wanted)
        can_time = fps > 0 and time_base > 0
        if first > 0 and can_time:
            container.seek(t0 + int(first / fps / time_base), stream=stream, backward=True)
        width, height = stream.codec_context.width, stream.codec_context.height
        native = min(width, height)
        scale = min(max(native, short_side[0]), short_side[1]) / native
        out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
        reformatter = VideoReformatter()  # one per stream: swscale context reused for every frame
        got: dict[int, np.ndarray] = {}
        counter = 0
        for frame in container.decode(stream):
            idx = (
                round((frame.pts - t0) * time_base * fps) if (can_time and frame.pts is not None) else counter
            )
            counter += 1
            if idx in wanted_set:
                rgb = reformatter.reformat(frame, format="rgb24", width=out_w, height=out_h, threads=1)
                got[idx] = rgb.to_ndarray()
            if idx >= wanted[-1]:
                break
    if not got:
        raise ValueError(f"{path}: no frame decoded at or after frame {first}")
    frames, last = [], got[min(got)]
    for idx in wanted:  # fill gaps (short video, frame-count estimate off) with the previous frame
        last = got.get(idx, last)
        frames.append(last)
    return np.stack(frames)  # (t, h, w, 3)


def _resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(t, h, w, 3) uint8 -> (t, size, size, 3) uint8, bilinear with antialias."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    x = frames.permute(0, 3, 1, 2).float()  # (t, 3, h, w)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def centre_crop(frames: np.ndarray, size: int) -> torch.Tensor:
    """Centre square of the short side, resized to size×size: (t, size, size, 3) uint8."""
    _, h, w, _ = frames.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return _resize(torch.from_numpy(np.ascontiguousarray(frames[:, y0 : y0 + side, x0 : x0 + side])), size)


def random_resized_crop(
    frames: np.ndarray, size: int, rng: np.random.Generator, *, min_scale: float, ratio=(3 / 4, 4 / 3)
) -> torch.Tensor:
    """The same random crop (area share in [min_scale, 1], aspect in ``ratio``) for every frame."""
    _, h, w, _ = frames.shape
    for _ in range(10):
        area = rng.uniform(min_scale, 1.0) * h * w
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return _resize(
                torch.from_numpy(np.ascontiguousarray(frames[:, y0 : y0 + ch, x0 : x0 + cw])), size
            )
    return centre_crop(frames, size)
