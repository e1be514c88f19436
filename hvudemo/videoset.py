"""The demo's synthetic video set: real mp4 clips with a controlled scene bias, plus HVU-format annotations.

Sits before ingest, like :mod:`hvuaudit.synthetic`, but writes videos as well (the
docs call it "the built-in benchmark"; the module is named for what it makes, so that
it is not mistaken for the speed benchmarks in ``bench/``):
``hvuaudit synth videos --out DIR`` produces clips where scene bias is real,
controlled and measurable, so the whole pipeline (ingest → NCA → SI-2 split →
train → eval → report) can run end to end on a laptop CPU. ``hvuaudit demo``
is built on it.

* **Action** = the motion of a small sprite (moving right/left/down/up,
  growing, shrinking, blinking, jittering): recognising it needs several frames.
* **Scene** = a static textured background (a muted colour and a texture):
  the easy shortcut. In the training distribution action *a* appears with
  scene *a* in ``dominant`` (80%) of its clips and with scenes a+1, a+2
  (mod 8) otherwise, so every scene is shared by three actions. The other five
  (action, scene) pairs per action are rarer: they form the scene-invariant
  test set, which the real SI-2 split carves out (see ``si2_val_fraction``).
* **Object** = the sprite's shape, by ``objects``. ``family`` (the default):
  translations show a square in ``object_share`` (90%) of their clips (else a
  triangle), the other actions a disk (else a plus), so the shape tells one bit
  of the action. ``per-action``: action *i* shows shape *i* of eight in
  ``object_share`` of its clips, else shape *i + 1*, so the shape alone names
  the action in 90% of the clips (the setting where an object head could help,
  issue 22). Either way the object is a necessary condition, the scene is not.

Subsets (one CSV each, ``Tags,youtube_id,time_start,time_end``):
``train`` (``HVU_Train_Benchmark.csv``: the biased pairs plus the rare pairs),
``indist`` (held-out clips of the biased pairs), ``uniform`` (scene independent
of the action: where dcorr² and a scene probe are measured) and ``control``
(scenes assigned at random: a model trained on it shows the task is learnable).
Clip files are named for the ``mmaction`` template. Everything is
deterministic for a seed: each clip draws from its own generator
``(seed, subset, index)``, so the worker count does not change a byte.
Never imports torch; numpy and PyAV are imported where the pixels are made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Final

from hvuaudit.errors import InputError
from hvucontracts.files import check_replaceable, remove_owned, write_owner_marker, write_text_atomically
from hvucontracts.process import die_with_parent
from hvucontracts.splitfolder import DEFAULT_TEMPLATE, clip_filename

BENCHMARK_FORMAT = "hvuaudit-benchmark/1"
BENCHMARK_KIND = "benchmark"  # the kind in a benchmark folder's ownership marker
ACTIONS = (
    "moving_right",
    "moving_left",
    "moving_down",
    "moving_up",
    "growing",
    "shrinking",
    "blinking",
    "jittering",
)
TRANSLATIONS = ACTIONS[:4]
# name -> (muted RGB colour in [0, 1], texture); scene i is action i's dominant scene.
SCENES: dict[str, tuple[tuple[float, float, float], str]] = {
    "sand_stripes": ((0.62, 0.55, 0.40), "stripes"),
    "moss_checker": ((0.40, 0.50, 0.32), "checker"),
    "slate_rings": ((0.38, 0.42, 0.50), "rings"),
    "brick_dots": ((0.58, 0.38, 0.33), "dots"),
    "plum_columns": ((0.50, 0.36, 0.50), "columns"),
    "teal_diagonal": ((0.30, 0.50, 0.50), "diagonal"),
    "ochre_grid": ((0.60, 0.50, 0.25), "grid"),
    "steel_waves": ((0.45, 0.47, 0.47), "waves"),
}
SHAPES = ("square", "triangle", "disk", "plus", "cross", "ring", "diamond", "bar")
# How the sprite's shape follows the action (VideoSetConfig.objects): one bit of it, or all of it
OBJECT_SCHEMES = ("family", "per-action")
# The smallest side at which the eight shapes are eight different masks (at 5 px disk and plus coincide)
PER_ACTION_MIN_SPRITE = 6
SUBSETS = ("train", "indist", "uniform", "control")
FILE_NAMES = {
    "train": "HVU_Train_Benchmark.csv",  # the subset comes from the name: HVU_Train_* -> train
    "indist": "Benchmark_indist.csv",  # the others are ingested with --subset NAME
    "uniform": "Benchmark_uniform.csv",
    "control": "Benchmark_control.csv",
}
CATEGORIES_FILE = "HVU_Tags_Categories_Benchmark.csv"
FPS = 10
CODEC: Final = "mpeg4"  # decodes about 7x faster than H.264 at this size, which is most of a CPU epoch
_SUBSET_SEED = {name: k for k, name in enumerate(SUBSETS)}


@dataclass(frozen=True)
class VideoSetConfig:
    """Every knob of the benchmark; stored in benchmark.json."""

    clips: int = 3000
    """Training-distribution clips of the biased pairs (subset train)."""
    test_clips: int | None = None
    """Clips of the rare (action, scene) pairs, also in subset train; default 0.4 × clips."""
    indist_clips: int | None = None
    """Held-out clips of the biased pairs (subset indist); default 0.267 × clips."""
    uniform_clips: int | None = None
    """Clips whose scene is independent of the action (subset uniform); default clips / 3."""
    control_clips: int | None = None
    """Clips with random scenes, to train the learnability control (subset control); default
    clips + test_clips; 0 writes none."""
    seed: int = 0
    dominant: float = 0.8
    """Share of an action's training clips shown in its dominant scene; the rest is split evenly
    over the next ``seen_scenes - 1`` scenes."""
    seen_scenes: int = 3
    object_share: float = 0.9
    """Share of an action's clips that show its main shape (:func:`main_shape`)."""
    objects: str = "family"
    """How the shape follows the action: ``family`` (square/triangle for the translations,
    disk/plus for the others) or ``per-action`` (shape i for action i, else shape i + 1)."""
    frames: int = 8
    size: int = 32
    sprite: int = 8
    speed: int = 2
    """Pixels per frame of the translations."""
    noise: float = 0.04
    """Standard deviation of the per-frame pixel noise (intensities in [0, 1])."""
    texture: float = 0.12
    """Amplitude of the scene texture."""

    def resolved(self) -> VideoSetConfig:
        """Derived set sizes filled in, every value checked."""
        test = round(0.4 * self.clips) if self.test_clips is None else self.test_clips
        indist = round(0.8 / 3 * self.clips) if self.indist_clips is None else self.indist_clips
        uniform = round(self.clips / 3) if self.uniform_clips is None else self.uniform_clips
        control = self.clips + test if self.control_clips is None else self.control_clips
        config = VideoSetConfig(
            **{
                **asdict(self),
                "test_clips": test,
                "indist_clips": indist,
                "uniform_clips": uniform,
                "control_clips": control,
            }
        )
        config._check()
        return config

    def _check(self) -> None:
        n = len(ACTIONS)
        for name in ("clips", "test_clips", "indist_clips", "uniform_clips"):
            if getattr(self, name) < n:
                raise InputError(
                    f"--{name.replace('_', '-')} must be at least {n} (one clip per action); "
                    f"got {getattr(self, name)}"
                )
        if self.control_clips and self.control_clips < 8 * n:
            raise InputError(
                f"--control-clips must be 0 or at least {8 * n} (every action in several scenes); "
                f"got {self.control_clips}"
            )
        if self.seed < 0:
            raise InputError(f"--seed must not be negative (got {self.seed})")
        if not 2 <= self.seen_scenes < len(SCENES):
            raise InputError(
                f"--seen-scenes must be between 2 and {len(SCENES) - 1} (got {self.seen_scenes})",
                hint="the remaining scenes of each action form the scene-invariant test pairs",
            )
        if not 1 / self.seen_scenes < self.dominant < 1:
            raise InputError(
                f"--dominant must be between 1/{self.seen_scenes} and 1 (got {self.dominant})",
                hint="0.8 means 80% of an action's training clips show its dominant scene",
            )
        if not 0.5 < self.object_share <= 1:
            raise InputError(
                f"--object-share must be in (0.5, 1] (got {self.object_share})",
                hint="above 0.5 the main shape is a necessary condition for NCA",
            )
        if self.objects not in OBJECT_SCHEMES:
            raise InputError(
                f"--objects must be one of {', '.join(OBJECT_SCHEMES)} (got {self.objects!r})",
                hint="family: the shape tells translations from the rest; per-action: one shape per action",
            )
        if self.objects == "per-action" and self.sprite < PER_ACTION_MIN_SPRITE:
            raise InputError(
                f"--objects per-action needs --sprite {PER_ACTION_MIN_SPRITE} or more (got {self.sprite}): "
                "below that some of the eight shapes are the same pixels",
                hint=f"raise --sprite to {PER_ACTION_MIN_SPRITE}, or use --objects family",
            )
        if not 4 <= self.sprite <= self.size // 2:
            raise InputError(
                f"--sprite must be between 4 and --size/2 = {self.size // 2} (got {self.sprite})"
            )
        if self.frames < 2 or self.size < 16:
            raise InputError(
                f"--frames must be at least 2 and --size at least 16 (got {self.frames}, {self.size})"
            )
        if self.sprite + (self.frames - 1) * self.speed > self.size:
            raise InputError(
                f"a {self.sprite} px sprite moving {self.speed} px per frame for {self.frames} frames leaves "
                f"the {self.size} px frame",
                hint="lower --speed or --frames, or raise --size",
            )
        if self.noise < 0 or self.texture < 0:
            raise InputError("--noise and --texture must not be negative")
        smallest_seen = min(min(pairs[1:]) for pairs in self.seen_quotas())
        largest_rare = max(max(pairs) for pairs in self.rare_quotas())
        if smallest_seen <= largest_rare:
            raise InputError(
                f"the biased pairs' minor scenes get {smallest_seen} clips and the rare pairs "
                f"{largest_rare}, "
                "so the SI-2 split could not tell them apart",
                hint="raise --clips or lower --test-clips (or --dominant)",
            )

    # ---------------------------------------------------------------- the pair structure
    def seen_scene_ids(self, action: int) -> list[int]:
        return [(action + k) % len(SCENES) for k in range(self.seen_scenes)]

    def rare_scene_ids(self, action: int) -> list[int]:
        return [(action + k) % len(SCENES) for k in range(self.seen_scenes, len(SCENES))]

    def seen_quotas(self) -> list[list[int]]:
        """Exact clip counts per action of its seen scenes (dominant first)."""
        quotas = []
        for total in _even_parts(self.clips, len(ACTIONS)):
            dominant = round(self.dominant * total)
            quotas.append([dominant, *_even_parts(total - dominant, self.seen_scenes - 1)])
        return quotas

    def rare_quotas(self) -> list[list[int]]:
        """Exact clip counts per action of its rare (scene-invariant test) scenes."""
        rare = len(SCENES) - self.seen_scenes
        assert self.test_clips is not None, "resolved() fills in test_clips"
        return [_even_parts(total, rare) for total in _even_parts(self.test_clips, len(ACTIONS))]

    def indist_quotas(self) -> list[list[int]]:
        assert self.indist_clips is not None, "resolved() fills in indist_clips"
        return [
            [
                round(self.dominant * total),
                *_even_parts(total - round(self.dominant * total), self.seen_scenes - 1),
            ]
            for total in _even_parts(self.indist_clips, len(ACTIONS))
        ]

    def si2_val_fraction(self) -> float:
        """A --val-fraction with which SI-2 puts exactly the biased pairs of every action in training.

        SI-2 moves each action's largest pairs to training until training holds at least
        1 − val_fraction of the action's clips; the value is the middle of the interval
        where that stops after the last biased pair.
        """
        low, high = 0.0, 1.0  # bounds on the share training must reach
        for seen, rare in zip(self.seen_quotas(), self.rare_quotas(), strict=True):
            total = sum(seen) + sum(rare)
            low = max(low, (sum(seen) - min(seen[1:])) / total)
            high = min(high, sum(seen) / total)
        return round(1.0 - (low + high) / 2, 4)


def require_modules(*names: str) -> None:
    """Fail early, with the install command, when the training extra is missing (nothing is imported)."""
    import importlib.util

    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"this needs {', '.join(missing)}, which is not installed",
            hint="install the training extra: pip install -e '.[train]'",
        )


def _even_parts(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one (larger ones first)."""
    base, extra = divmod(total, parts)
    return [base + (k < extra) for k in range(parts)]


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render: which subset, its index there, and its three labels."""

    subset: str
    index: int
    action: int
    scene: int
    shape: int

    @property
    def youtube_id(self) -> str:
        return f"{self.subset}{self.index:05d}"


@dataclass(frozen=True)
class VideoSetFiles:
    out: Path
    annotations: dict[str, Path]  # subset -> CSV
    categories: Path
    videos: Path
    manifest: Path  # benchmark.json
    clips: int
    si2_val_fraction: float


# -------------------------------------------------------------------- the clip plan


def plan_clips(config: VideoSetConfig) -> list[ClipSpec]:
    """Every clip of every subset with its labels, in a fixed order (no pixels yet)."""
    import numpy as np

    config = config.resolved()
    plan: list[ClipSpec] = []

    def add(subset: str, labels: list[tuple[int, int]]) -> None:
        rng = np.random.default_rng([config.seed, _SUBSET_SEED[subset], 0])
        order = rng.permutation(len(labels))  # interleave actions and scenes in the files
        shapes = _shapes(rng, [labels[k][0] for k in order], config.object_share, config.objects)
        for i, (k, shape) in enumerate(zip(order, shapes, strict=True)):
            action, scene = labels[k]
            plan.append(ClipSpec(subset, i, action, scene, shape))

    def from_quotas(quotas: list[list[int]], scene_ids: Callable[[int], list[int]]) -> list[tuple[int, int]]:
        return [
            (a, s)
            for a, counts in enumerate(quotas)
            for s, n in zip(scene_ids(a), counts, strict=True)
            for _ in range(n)
        ]

    add(
        "train",
        from_quotas(config.seen_quotas(), config.seen_scene_ids)
        + from_quotas(config.rare_quotas(), config.rare_scene_ids),
    )
    add("indist", from_quotas(config.indist_quotas(), config.seen_scene_ids))
    # uniform: every (action, scene) pair equally often, so scene and action are exactly independent
    assert config.uniform_clips is not None  # resolved() filled it in
    uniform = [
        (a, (a + k) % len(SCENES))
        for a, n in enumerate(_even_parts(config.uniform_clips, len(ACTIONS)))
        for k in range(n)
    ]
    add("uniform", uniform)
    if config.control_clips:
        rng = np.random.default_rng([config.seed, _SUBSET_SEED["control"], 1])
        add(
            "control",
            [
                (a, int(rng.integers(len(SCENES))))
                for a, n in enumerate(_even_parts(config.control_clips, len(ACTIONS)))
                for _ in range(n)
            ],
        )
    return plan


def main_shape(action: int, objects: str) -> int:
    """The shape (an index of SHAPES) that ``action`` shows in ``object_share`` of its clips."""
    if objects == "per-action":
        return action
    return 0 if ACTIONS[action] in TRANSLATIONS else 2  # square (else triangle) or disk (else plus)


def alternate_shape(action: int, objects: str) -> int:
    """The shape of the action's other clips: the family's second, or the next action's shape."""
    if objects == "per-action":
        return (action + 1) % len(ACTIONS)
    return main_shape(action, objects) + 1


def shapes_used(objects: str) -> tuple[str, ...]:
    """The object tags a benchmark of this scheme holds, in SHAPES order (its categories file)."""
    used = {f(a, objects) for a in range(len(ACTIONS)) for f in (main_shape, alternate_shape)}
    return tuple(name for i, name in enumerate(SHAPES) if i in used)


def _shapes(rng, actions: list[int], object_share: float, objects: str) -> list[int]:
    """The action's main shape in ``object_share`` of its clips, else its alternate (one draw per clip)."""
    main = rng.random(len(actions)) < object_share
    return [
        main_shape(action, objects) if is_main else alternate_shape(action, objects)
        for action, is_main in zip(actions, main, strict=True)
    ]


# -------------------------------------------------------------------- pixels


def render_clip(spec: ClipSpec, config: VideoSetConfig):
    """The frames of one clip: (frames, size, size, 3) uint8, from its own generator."""
    import numpy as np

    rng = np.random.default_rng([config.seed, _SUBSET_SEED[spec.subset], 2, spec.index])
    size, t_len = config.size, config.frames
    colour, texture = list(SCENES.values())[spec.scene]
    background = (
        np.asarray(colour) * rng.uniform(0.85, 1.15)
        + config.texture * _texture(texture, size, rng)[..., None]
    )
    # a bright sprite of a random hue, so its colour says nothing about the action
    hue = rng.uniform(0, 1)
    sprite_colour = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1) * 0.45 + 0.55
    boxes = _sprite_path(ACTIONS[spec.action], config, rng)  # per frame: (y, x, side) or None
    frames = np.empty((t_len, size, size, 3), dtype=np.float64)
    for t, box in enumerate(boxes):
        frame = background.copy()
        if box is not None:
            y, x, side = box
            mask = _shape_mask(SHAPES[spec.shape], side)
            patch = frame[y : y + side, x : x + side]
            patch[mask] = sprite_colour
        frames[t] = frame + rng.normal(0.0, config.noise, size=frame.shape)
    return (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)


def _texture(kind: str, size: int, rng):
    """A texture in [-1, 1] with a random phase, so the scene is its kind, not fixed pixels."""
    import numpy as np

    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    y, x = y + rng.uniform(0, size), x + rng.uniform(0, size)
    period = size / 4
    if kind == "stripes":
        return np.sign(np.sin(2 * np.pi * y / period))
    if kind == "columns":
        return np.sign(np.sin(2 * np.pi * x / period))
    if kind == "diagonal":
        return np.sign(np.sin(2 * np.pi * (x + y) / period))
    if kind == "checker":
        return np.sign(np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period))
    if kind == "grid":
        return np.where((x % period < 1.5) | (y % period < 1.5), 1.0, -0.4)
    if kind == "dots":
        cy, cx = (y % period) - period / 2, (x % period) - period / 2
        return np.where(cy**2 + cx**2 < (period / 4) ** 2, 1.0, -0.4)
    if kind == "rings":
        cy, cx = y % size - size / 2, x % size - size / 2
        return np.sign(np.sin(2 * np.pi * np.sqrt(cy**2 + cx**2) / period))
    if kind == "waves":
        return np.sin(2 * np.pi * (y + 2 * np.sin(2 * np.pi * x / size)) / period * 1.5)
    raise ValueError(f"unknown texture {kind!r}")


def _shape_mask(shape: str, side: int):
    import numpy as np

    y, x = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    c = side / 2
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "disk":
        return (y - c) ** 2 + (x - c) ** 2 <= c**2
    if shape == "plus":
        arm = max(1.0, side / 6)
        return (np.abs(y - c) <= arm) | (np.abs(x - c) <= arm)
    if shape == "triangle":  # apex up: the row's half-width grows with y
        return np.abs(x - c) <= y / 2
    if shape == "cross":  # the two diagonals
        arm = max(1.0, side / 6)
        return (np.abs(y - x) <= arm) | (np.abs(y + x - side) <= arm)
    if shape == "ring":  # a square outline
        edge = max(1.0, side / 5)
        return (np.minimum(y, side - y) <= edge) | (np.minimum(x, side - x) <= edge)
    if shape == "diamond":
        return np.abs(y - c) + np.abs(x - c) <= c
    if shape == "bar":  # a horizontal band, a third of the side high
        return np.abs(y - c) <= side / 6
    raise ValueError(f"unknown shape {shape!r}")


def _sprite_path(action: str, config: VideoSetConfig, rng) -> list[tuple[int, int, int] | None]:
    """Where the sprite is in each frame: (top, left, side), or None while a blink hides it."""
    size, t_len, side, speed = config.size, config.frames, config.sprite, config.speed
    travel = (t_len - 1) * speed
    steps = range(t_len)
    if action in TRANSLATIONS:
        along = int(rng.integers(0, size - side - travel + 1))
        across = int(rng.integers(0, size - side + 1))
        forward = action in ("moving_right", "moving_down")
        offsets = [along + (t * speed if forward else travel - t * speed) for t in steps]
        if action in ("moving_right", "moving_left"):
            return [(across, o, side) for o in offsets]
        return [(o, across, side) for o in offsets]
    if action in ("growing", "shrinking"):
        small, large = max(3, side // 2), min(size, side + side // 2)
        sides = [round(small + (large - small) * t / (t_len - 1)) for t in steps]
        if action == "shrinking":
            sides.reverse()
        cy, cx = (int(rng.integers(large // 2, size - large // 2 + 1)) for _ in range(2))
        return [(cy - s // 2, cx - s // 2, s) for s in sides]
    y, x = (int(rng.integers(2, size - side - 1)) for _ in range(2))
    if action == "blinking":
        phase = int(rng.integers(0, 2))
        return [(y, x, side) if (t + phase) % 2 == 0 else None for t in steps]
    if action == "jittering":
        return [(y + int(rng.integers(-2, 3)), x + int(rng.integers(-2, 3)), side) for t in steps]
    raise ValueError(f"unknown action {action!r}")


def write_mp4(path: Path, frames) -> None:
    """An mp4 (MPEG-4 Part 2, near-lossless quantiser) at 10 fps; single-threaded so bytes are stable."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=FPS, options={"qscale": "2"})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def clip_name(spec: ClipSpec, config: VideoSetConfig) -> str:
    """The clip's file name under the split folder's default template (mmaction)."""
    row = {
        "youtube_id": spec.youtube_id,
        "clip_id": "",
        "action": "",
        "time_start": 0.0,
        "time_end": _hvu_time(config.frames / FPS),
    }
    return clip_filename(row, DEFAULT_TEMPLATE)


def _render_chunk(config: VideoSetConfig, specs: list[ClipSpec], videos: str) -> int:
    for spec in specs:
        write_mp4(Path(videos) / clip_name(spec, config), render_clip(spec, config))
    return len(specs)


# -------------------------------------------------------------------- files


def generate_video_set(
    config: VideoSetConfig,
    out_dir: Path | str,
    *,
    workers: int = 1,
    force: bool = False,
) -> VideoSetFiles:
    """Write the clips, the annotation CSVs, the categories CSV and benchmark.json into ``out_dir``.

    benchmark.json is written last, so its presence means the benchmark is complete.
    An ``out_dir`` that already holds files is refused unless ``force``, which
    replaces only what this function writes.
    """
    config = config.resolved()
    require_modules("av")
    if workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    out = Path(out_dir)
    if check_replaceable(out, kind=BENCHMARK_KIND, force=force):
        remove_owned(out)
    plan = plan_clips(config)
    # The marker first, naming every file to come, so that a benchmark cut short by a kill can be
    # replaced with --force, and a file a user adds (even among the videos) is never deleted.
    clips = [f"videos/{clip_name(spec, config)}" for spec in plan]
    write_owner_marker(out, BENCHMARK_KIND, [*FILE_NAMES.values(), CATEGORIES_FILE, "benchmark.json", *clips])
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)

    chunk = 64
    chunks = [plan[k : k + chunk] for k in range(0, len(plan), chunk)]
    if workers == 1:
        for specs in chunks:
            _render_chunk(config, specs, str(videos))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent) as pool:
            list(pool.map(_render_chunk, [config] * len(chunks), chunks, [str(videos)] * len(chunks)))

    annotations = {}
    for subset in SUBSETS:
        rows = [spec for spec in plan if spec.subset == subset]
        if not rows:
            continue
        end = _hvu_time(config.frames / FPS)
        lines = ["Tags,youtube_id,time_start,time_end"]
        lines += [
            f"{ACTIONS[s.action]}|{SHAPES[s.shape]}|{list(SCENES)[s.scene]},{s.youtube_id},0,{end}"
            for s in rows
        ]
        annotations[subset] = out / FILE_NAMES[subset]
        write_text_atomically(annotations[subset], "\n".join(lines) + "\n")
    categories = out / CATEGORIES_FILE
    tag_rows = (
        [f"{a},action" for a in ACTIONS]
        + [f"{s},scene" for s in SCENES]
        + [f"{o},object" for o in shapes_used(config.objects)]
    )
    write_text_atomically(categories, "Tag,Category\n" + "\n".join(tag_rows) + "\n")

    manifest = out / "benchmark.json"
    write_text_atomically(manifest, json.dumps(describe(config, plan), indent=2) + "\n")
    return VideoSetFiles(
        out=out,
        annotations=annotations,
        categories=categories,
        videos=videos,
        manifest=manifest,
        clips=len(plan),
        si2_val_fraction=config.si2_val_fraction(),
    )


def describe(config: VideoSetConfig, plan: list[ClipSpec]) -> dict:
    """benchmark.json: the config, the files, and what each subset holds (counts per action and scene)."""
    scene_names = list(SCENES)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for spec in plan:
        per_action = counts.setdefault(spec.subset, {}).setdefault(ACTIONS[spec.action], {})
        per_action[scene_names[spec.scene]] = per_action.get(scene_names[spec.scene], 0) + 1
    return {
        "format": BENCHMARK_FORMAT,
        "config": asdict(config),
        "files": {subset: FILE_NAMES[subset] for subset in SUBSETS if subset in counts},
        "categories": CATEGORIES_FILE,
        "videos": {"dir": "videos", "name_template": "mmaction", "codec": CODEC, "fps": FPS},
        "si2_val_fraction": config.si2_val_fraction(),
        "actions": {
            action: {
                "dominant_scene": scene_names[config.seen_scene_ids(a)[0]],
                "seen_scenes": [scene_names[s] for s in config.seen_scene_ids(a)],
                "rare_scenes": [scene_names[s] for s in config.rare_scene_ids(a)],
                "main_object": SHAPES[main_shape(a, config.objects)],
            }
            for a, action in enumerate(ACTIONS)
        },
        "scenes": {
            name: {"colour": list(colour), "texture": texture} for name, (colour, texture) in SCENES.items()
        },
        "counts": counts,
    }


def read_video_set(out_dir: Path | str) -> dict:
    """benchmark.json of a finished benchmark folder."""
    path = Path(out_dir) / "benchmark.json"
    if not path.is_file():
        raise InputError(
            f"{path}: no such file, so {out_dir} holds no finished benchmark",
            hint=f"write one with: hvuaudit synth videos --out {out_dir}",
        )
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != BENCHMARK_FORMAT:
        raise InputError(f"{path}: format is {doc.get('format')!r}, expected {BENCHMARK_FORMAT!r}")
    return doc


# Knobs added after benchmark.json's format was fixed -> the value that the versions before them wrote
ADDED_KNOBS = {"objects": "family"}


def config_from_json(data: dict) -> VideoSetConfig:
    names = {f.name for f in fields(VideoSetConfig)}
    return VideoSetConfig(**{k: v for k, v in data.items() if k in names})


def _hvu_time(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
