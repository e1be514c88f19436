"""Backbones and heads of the AMT model: f_θ, the action head, the scene and object heads.

Sits between the data (normalised clips, (b, 3, t, h, w)) and the objective in
:mod:`trainer.losses`. The model returns the pooled backbone feature (what the
evaluator measures dcorr² on) and the logits of every head it has. A model is
rebuilt from its :class:`ModelConfig` alone, which every checkpoint stores.
Never imports ``hvuaudit`` and never downloads anything unless asked to with
``--pretrained kinetics400``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from trainer.errors import TrainerError
from trainer.losses import grad_reverse

# Kinetics statistics (torchvision's video models were trained on these).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class PretrainedError(TrainerError):
    """Pretrained weights could not be fetched or do not fit the backbone (exit 3)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What the trainer needs to know about a backbone before building it."""

    feature_dim: int
    head_hidden: int
    """Default hidden width of the scene/object heads."""
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD


BACKBONES: dict[str, BackboneSpec] = {
    "tiny": BackboneSpec(feature_dim=32, head_hidden=64),
    "r3d18": BackboneSpec(feature_dim=512, head_hidden=2048),
}


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


def _build_r3d18() -> nn.Module:
    from torchvision.models.video import r3d_18

    model = r3d_18(weights=None)
    model.fc = nn.Identity()  # the feature is the pooled activation after layer4: (b, 512)
    return model


def _build_backbone(name: str) -> nn.Module:
    if name == "tiny":
        return TinyBackbone()
    if name == "r3d18":
        return _build_r3d18()
    raise TrainerError(f"unknown backbone {name!r}; choose one of: {', '.join(sorted(BACKBONES))}")


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
        self.backbone = _build_backbone(config.backbone)
        self.action_head = nn.Linear(dim, config.n_actions)
        self.scene_head = make_head(dim, config.head_hidden, config.n_scenes) if config.scene_head else None
        self.object_head = (
            make_head(dim, config.head_hidden, config.n_objects) if config.object_head else None
        )

    def forward(
        self, video: torch.Tensor, heads: Mapping[str, float | None] | None = None
    ) -> dict[str, torch.Tensor]:
        """Run the backbone and the action head, plus the auxiliary heads named in ``heads``.

        ``heads`` maps "scene"/"object" to the coefficient of a gradient reversal in
        front of that head (``None``: no reversal). Omitted heads are not computed.
        """
        features = self.backbone(video)  # (b, d)
        out = {"features": features, "action": self.action_head(features)}  # action: (b, n_actions)
        for name, head in (("scene", self.scene_head), ("object", self.object_head)):
            if heads is None or name not in heads:
                continue
            assert head is not None, f"the model was built without a {name} head"
            coeff = heads[name]
            x = features if coeff is None else grad_reverse(features, coeff)
            out[name] = head(x)  # (b, n_scenes) / (b, n_objects)
        return out


def _fetch_kinetics400_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's r3d_18 Kinetics-400 weights (downloaded once into TORCH_HOME)."""
    from torchvision.models.video import R3D_18_Weights

    return R3D_18_Weights.KINETICS400_V1.get_state_dict(progress=False)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PretrainedError(
            f"--pretrained {path}: no such file; give 'kinetics400' (r3d18 only) or the path of a state dict"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise PretrainedError(
            f"--pretrained {path}: could not be read as a torch checkpoint ({exc})"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"--pretrained {path}: holds no state dict (a mapping of names to tensors)")
    out = {}
    for key, value in obj.items():
        key = key.removeprefix("module.")
        if key.startswith(("action_head.", "scene_head.", "object_head.")):
            continue  # a trainer checkpoint: keep the backbone only
        out[key.removeprefix("backbone.")] = value
    return out


def load_pretrained(model: AMTModel, pretrained: str) -> dict[str, int]:
    """Load backbone weights; returns counts of loaded / missing / unexpected keys."""
    if pretrained == "kinetics400":
        if model.config.backbone != "r3d18":
            raise PretrainedError(
                f"--pretrained kinetics400 exists for --backbone r3d18 only, not {model.config.backbone}"
            )
        try:
            state = _fetch_kinetics400_state_dict()
        except Exception as exc:  # URLError, OSError, hash mismatch...
            raise PretrainedError(
                "--pretrained kinetics400: could not fetch torchvision's r3d_18 Kinetics-400 weights "
                f"({exc}). They need a network connection once (cached under {torch.hub.get_dir()}/checkpoints); "
                "offline, copy r3d_18-b3b3357e.pth there or pass --pretrained PATH to a local state dict"
            ) from exc
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    else:
        state = _read_state_dict(Path(pretrained))
    own = model.backbone.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise PretrainedError(
                f"--pretrained {pretrained}: {key} has shape {tuple(value.shape)} but backbone "
                f"{model.config.backbone} needs {tuple(own[key].shape)}; is it a checkpoint of another backbone?"
            )
    result = model.backbone.load_state_dict(state, strict=False)
    loaded = len(own) - len(result.missing_keys)
    if loaded == 0:
        raise PretrainedError(
            f"--pretrained {pretrained}: none of its {len(state)} keys belongs to backbone "
            f"{model.config.backbone} (first key: {next(iter(state), None)!r})"
        )
    return {"loaded": loaded, "missing": len(result.missing_keys), "unexpected": len(result.unexpected_keys)}


def build_model(config: ModelConfig) -> AMTModel:
    """A freshly initialised model (seed torch before calling for reproducible weights)."""
    return AMTModel(config)
