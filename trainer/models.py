"""Backbones and heads of the AMT model: f_θ, the action head, the scene and object heads.

Sits between the data (normalised clips, (b, 3, t, h, w)) and the objective in
:mod:`trainer.losses`. The model returns the pooled backbone feature (what the
evaluator measures dcorr² on) and the logits of every head it has. A model is
rebuilt from its :class:`ModelConfig` alone, which every checkpoint stores.

Backbones: ``tiny`` (CPU runs and tests), ``r3d18`` (torchvision's ``r3d_18``)
and Hara et al.'s 3D-ResNets ``r3d10|r3d18h|r3d34|r3d50|r3d101`` ("Learning
spatio-temporal features with 3D residual networks"), whose state-dict keys
match the authors' public Kinetics-700 checkpoints (``r3d50_K_200ep.pth`` and
the like) so that ``--pretrained PATH`` loads them. Each backbone carries the
normalisation statistics its weights were trained with.
Never imports ``hvuaudit`` and never downloads anything unless asked to with
``--pretrained kinetics400``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from trainer.backbones import BACKBONES, HARA_LAYOUTS
from trainer.errors import TrainerError
from trainer.losses import grad_reverse

# The classifier of a pretrained checkpoint, replaced by the action head when loading.
CLASSIFIER_PREFIX = "fc."
HEAD_PREFIXES = ("action_head.", "scene_head.", "object_head.", "scene_head_copies.", "object_head_copies.")


class PretrainedError(TrainerError):
    """Pretrained weights could not be fetched or do not fit the backbone (exit 3)."""


@dataclass(frozen=True)
class ModelConfig:
    """Enough to rebuild the model (saved in every checkpoint)."""

    backbone: str
    n_actions: int
    n_scenes: int
    n_objects: int
    head_hidden: int
    scene_head: bool
    object_head: bool
    scene_copies: int = 1  # --adversary ensemble: K scene heads (checkpoints from before have one)
    object_copies: int = 1

    def to_json(self) -> dict:
        return asdict(self)


class TinyBackbone(nn.Module):
    """A 4-block 3D CNN (8-16-32-32 channels, about 46k parameters) for CPU runs and tests.

    Strided convolutions instead of pooling, so any clip length and size >= 1 works.
    """

    def __init__(self) -> None:
        super().__init__()
        channels = (3, 8, 16, 32, 32)
        strides = ((1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1))
        blocks = []
        for c_in, c_out, stride in zip(channels[:-1], channels[1:], strides, strict=True):
            blocks += [
                nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm3d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, 3, t, h, w) -> (b, 32)
        return self.pool(self.blocks(x)).flatten(1)


# --------------------------------------------------------------------------- Hara et al.'s 3D-ResNets
# Attribute names (conv1, bn1, layer1.0.downsample.0, ...) are the state-dict keys of the authors'
# checkpoints: renaming any of them breaks --pretrained.
def _conv3x3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, kernel_size=1, stride=stride, bias=False)


class HaraBasicBlock(nn.Module):
    """Two 3×3×3 convolutions and a residual (ResNet-10/18/34)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class HaraBottleneck(nn.Module):
    """1×1×1 → 3×3×3 (strided) → 1×1×1 with 4× expansion, and a residual (ResNet-50/101)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1x1(c_in, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = _conv3x3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = _conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class HaraResNet3D(nn.Module):
    """Hara et al.'s 3D-ResNet without its classifier: the feature is the pooled layer4 output.

    Stem: a 7×7×7 convolution with stride (1, 2, 2) (their ``conv1_t_size=7``,
    ``conv1_t_stride=1``), BatchNorm, ReLU and a 3×3×3 max-pool with stride 2.
    Shortcuts are of type B: a strided 1×1×1 convolution and BatchNorm where the
    shape changes, the identity elsewhere.
    """

    # registered with setattr in __init__ (one per stage)
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, depth: int) -> None:
        super().__init__()
        kind, blocks_per_stage = HARA_LAYOUTS[depth]
        block = HaraBasicBlock if kind == "basic" else HaraBottleneck
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        c_in = 64
        for stage, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage, strict=True)):
            stride = 1 if stage == 0 else 2
            c_out = planes * block.expansion
            downsample = None
            if stride != 1 or c_in != c_out:
                downsample = nn.Sequential(_conv1x1x1(c_in, c_out, stride), nn.BatchNorm3d(c_out))
            layers = [block(c_in, planes, stride, downsample)]
            layers += [block(c_out, planes) for _ in range(n_blocks - 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        for module in self.modules():  # the authors' initialisation (BatchNorm keeps weight 1, bias 0)
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (b, 64, t/2, h/4, w/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (b, 512|2048, t/16, h/32, w/32)
        return self.avgpool(x).flatten(1)  # (b, 512|2048)


def _build_torchvision(builder: str) -> nn.Module:
    import torchvision.models.video

    model = getattr(torchvision.models.video, builder)(weights=None)
    model.fc = nn.Identity()  # the feature is the pooled activation after layer4: (b, 512)
    return model


def _torchvision_weights(builder: str):
    """The Kinetics-400 weights entry of a torchvision video model (R3D_18_Weights.KINETICS400_V1...)."""
    import torchvision.models.video

    return torchvision.models.get_model_weights(getattr(torchvision.models.video, builder)).KINETICS400_V1


def build_backbone(name: str) -> nn.Module:
    """A freshly initialised backbone: (b, 3, t, h, w) -> (b, feature_dim)."""
    if name == "tiny":
        return TinyBackbone()
    builder = BACKBONES[name].torchvision if name in BACKBONES else None
    if builder is not None:
        return _build_torchvision(builder)
    hara_depth = BACKBONES[name].hara_depth if name in BACKBONES else None
    if hara_depth is not None:
        return HaraResNet3D(hara_depth)
    raise TrainerError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")


def reinitialise(head: nn.Module, generator: torch.Generator) -> None:
    """Draw ``head``'s weights afresh as PyTorch initialises them, from ``generator`` (so that every
    process of a DDP run and a resumed run draw the same); BatchNorm starts again from its defaults."""
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.in_features) if module.in_features > 0 else 0
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):  # SyncBatchNorm too (--sync-bn)
                module.reset_parameters()


def make_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """The paper's auxiliary head: 2 × (Linear → BatchNorm → ReLU), then a Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim),
    )


class AMTModel(nn.Module):
    """Backbone + action head (+ scene head) (+ object head)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = BACKBONES[config.backbone].feature_dim
        self.backbone = build_backbone(config.backbone)
        self.action_head = nn.Linear(dim, config.n_actions)
        self.scene_head = make_head(dim, config.head_hidden, config.n_scenes) if config.scene_head else None
        self.object_head = (
            make_head(dim, config.head_hidden, config.n_objects) if config.object_head else None
        )
        # --adversary ensemble: the head's other K - 1 copies (the first keeps its state-dict keys)
        self.scene_head_copies = nn.ModuleList(
            make_head(dim, config.head_hidden, config.n_scenes)
            for _ in range(config.scene_copies - 1 if config.scene_head else 0)
        )
        self.object_head_copies = nn.ModuleList(
            make_head(dim, config.head_hidden, config.n_objects)
            for _ in range(config.object_copies - 1 if config.object_head else 0)
        )

    def head_copies(self, name: str) -> list[nn.Module]:
        """Every copy of the scene or object head: the head itself, then the ensemble's others."""
        head = self.scene_head if name == "scene" else self.object_head
        others = self.scene_head_copies if name == "scene" else self.object_head_copies
        return [] if head is None else [head, *others]

    def forward(
        self, video: torch.Tensor, heads: Mapping[str, float | None] | None = None
    ) -> dict[str, torch.Tensor]:
        """Run the backbone and the action head, plus the auxiliary heads named in ``heads``.

        ``heads`` maps "scene"/"object" to the coefficient of a gradient reversal in
        front of that head (``None``: no reversal). Omitted heads are not computed.
        """
        features = self.backbone(video)  # (b, d)
        out = {"features": features, "action": self.action_head(features)}  # action: (b, n_actions)
        for name in ("scene", "object"):
            if heads is None or name not in heads:
                continue
            copies = self.head_copies(name)
            assert copies, f"the model was built without a {name} head"
            coeff = heads[name]
            x = features if coeff is None else grad_reverse(features, coeff)
            if len(copies) == 1:
                out[name] = copies[0](x)  # (b, n_scenes) / (b, n_objects)
            else:  # an ensemble: each copy's logits for its own loss, their mean as the head's prediction
                stacked = torch.stack([copy(x) for copy in copies])  # (K, b, n)
                out[f"{name}_copies"] = stacked
                out[name] = stacked.mean(0)
        return out


# --------------------------------------------------------------------------- pretrained weights
@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_pretrained` put into the backbone, for the run's log."""

    source: str
    loaded: tuple[str, ...]
    """Backbone keys copied from the checkpoint."""
    missing: tuple[str, ...]
    """Backbone keys the checkpoint lacks and that may be absent: BatchNorm step counters."""
    unexpected: tuple[str, ...]
    """Checkpoint keys left out by design: its classifier and this trainer's heads."""
    classifier_classes: int | None
    """Rows of the checkpoint's classifier (700 for Kinetics-700), replaced by the action head."""
    arch: str | None
    """The checkpoint's own ``arch`` entry (Hara et al.'s ``resnet-50``), when it has one."""

    def summary(self) -> str:
        """One line per kind of key, for the log."""

        def names(keys: tuple[str, ...]) -> str:
            shown = ", ".join(keys[:4])
            return "none" if not keys else shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")

        arch = f" (arch {self.arch})" if self.arch else ""
        classifier = (
            f"; its {self.classifier_classes}-class classifier was replaced by the action head"
            if self.classifier_classes is not None
            else ""
        )
        return (
            f"loaded {len(self.loaded)} backbone tensors from {self.source}{arch}{classifier}\n"
            f"  missing: {names(self.missing)}\n"
            f"  unexpected (left out): {names(self.unexpected)}"
        )


def _fetch_kinetics400_state_dict(builder: str) -> dict[str, torch.Tensor]:
    """torchvision's Kinetics-400 weights of a video model (downloaded once into TORCH_HOME)."""
    return _torchvision_weights(builder).get_state_dict(progress=False)


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict of a checkpoint file (its ``state_dict``/``model`` entry or the file itself), and its
    arch."""
    if not path.is_file():
        raise PretrainedError(
            f"--pretrained {path}: no such file; give 'kinetics400' (torchvision's backbones) or the path "
            "of a state dict"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise PretrainedError(
            f"--pretrained {path}: could not be read as a torch checkpoint ({exc})"
        ) from exc
    arch = obj.get("arch") if isinstance(obj, dict) and isinstance(obj.get("arch"), str) else None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"--pretrained {path}: holds no state dict (a mapping of names to tensors)")
    return obj, arch


@cache
def _backbone_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a backbone's state dict, built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build_backbone(name).state_dict().items()}


def _is_step_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def guess_backbone(state: Mapping[str, torch.Tensor]) -> str | None:
    """The backbone whose keys and shapes a state dict has exactly (classifier and counters aside)."""
    wanted = {
        k: tuple(v.shape)
        for k, v in state.items()
        if not k.startswith(CLASSIFIER_PREFIX) and not _is_step_counter(k)
    }
    for name in BACKBONES:
        shapes = {k: s for k, s in _backbone_shapes(name).items() if not _is_step_counter(k)}
        if shapes == wanted:
            return name
    return None


def pretraining_record(pretrained: str | None, backbone: str = "r3d18") -> dict[str, str] | None:
    """What config.json and eval.json say about the starting weights: None (trained from scratch), or the
    weights' source (a resolved path, or torchvision's URL) and the sha256 of their file."""
    if pretrained is None:
        return None
    if pretrained == "kinetics400":
        source = _torchvision_weights(BACKBONES[backbone].torchvision or "r3d_18").url
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(source).name  # where torch.hub caches it
    else:
        path = Path(pretrained).resolve()
        source = str(path)
    with path.open("rb") as handle:
        return {"source": source, "sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


def load_pretrained(model: AMTModel, pretrained: str) -> PretrainedReport:
    """Load backbone weights from ``kinetics400`` or a checkpoint file; refuse any that do not fit.

    A file may hold the state dict itself or under ``state_dict`` (Hara et al.'s
    checkpoints) or ``model`` (this trainer's); keys may carry a ``module.``
    (DataParallel/DDP) or ``backbone.`` prefix. The checkpoint's classifier
    (``fc.*``) and this trainer's heads are left out: the action head replaces
    the classifier. Every other backbone key must be present with its shape
    (BatchNorm step counters may be absent) and the checkpoint may hold no
    other key; otherwise :class:`PretrainedError` names the first key that
    differs, its shapes and, when it can tell, the backbone the checkpoint is for.
    """
    name = model.config.backbone
    arch = None
    if pretrained == "kinetics400":
        builder = BACKBONES[name].torchvision
        if builder is None:
            with_weights = ", ".join(n for n, spec in BACKBONES.items() if spec.torchvision)
            raise PretrainedError(
                f"--pretrained kinetics400 exists for torchvision's backbones ({with_weights}), not {name}; "
                "give the path of a checkpoint file of this backbone"
            )
        try:
            raw = _fetch_kinetics400_state_dict(builder)
        except Exception as exc:  # URLError, OSError, hash mismatch...
            file_name = Path(_torchvision_weights(builder).url).name
            raise PretrainedError(
                f"--pretrained kinetics400: could not fetch torchvision's {builder} Kinetics-400 weights "
                f"({exc}). They need a network connection once (cached under "
                f"{torch.hub.get_dir()}/checkpoints); "
                f"offline, copy {file_name} there or pass --pretrained PATH to a local state dict"
            ) from exc
    else:
        raw, arch = _read_checkpoint(Path(pretrained))
    state: dict[str, torch.Tensor] = {}
    left_out: list[str] = []
    for key, value in raw.items():
        key = key.removeprefix("module.")
        if key.startswith(HEAD_PREFIXES):
            left_out.append(key)  # a trainer checkpoint: keep the backbone only
            continue
        state[key.removeprefix("backbone.")] = value
    classifier = [k for k in state if k.startswith(CLASSIFIER_PREFIX)]
    classifier_weight = state.get(f"{CLASSIFIER_PREFIX}weight")  # (n_classes, feature_dim)
    classes = int(classifier_weight.shape[0]) if classifier_weight is not None else None
    own = model.backbone.state_dict()
    extra = [k for k in state if k not in own and k not in classifier]
    if not any(k in own for k in state):
        raise PretrainedError(
            f"--pretrained {pretrained}: none of its {len(state)} keys belongs to backbone {name} "
            f"(first key: {next(iter(state), None)!r})"
        )

    def refuse(problem: str) -> PretrainedError:
        fits = guess_backbone(state)
        if fits is not None and fits != name:
            hint = f"; it is a checkpoint of --backbone {fits}"
        else:
            hint = "; is it a checkpoint of another backbone?"
        if arch:
            hint += f" (its arch entry says {arch!r})"
        return PretrainedError(f"--pretrained {pretrained}: {problem}{hint}")

    missing = []
    for key, value in own.items():
        if key not in state:
            if not _is_step_counter(key):
                raise refuse(f"the checkpoint lacks {key} {tuple(value.shape)}, which backbone {name} needs")
            missing.append(key)
        elif state[key].shape != value.shape:
            raise refuse(
                f"{key} has shape {tuple(state[key].shape)} but backbone {name} needs {tuple(value.shape)}"
            )
    if extra:
        raise refuse(
            f"the checkpoint has {extra[0]} {tuple(state[extra[0]].shape)}, which backbone {name} does not"
            + (f" (and {len(extra) - 1} more such keys)" if len(extra) > 1 else "")
        )
    model.backbone.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return PretrainedReport(
        source=pretrained,
        loaded=tuple(k for k in own if k in state),
        missing=tuple(missing),
        unexpected=tuple(classifier + left_out),
        classifier_classes=classes,
        arch=arch,
    )


def build_model(config: ModelConfig) -> AMTModel:
    """A freshly initialised model (seed torch before calling for reproducible weights)."""
    return AMTModel(config)
