"""The backbone registry: names, feature sizes, head widths and normalisation statistics.

Torch-free, so that option checking (:mod:`trainer.config`), the CLI and the report can
list and validate backbones without importing torch (a test checks it in a subprocess).
:mod:`trainer.models` builds the networks these entries describe. Never imports torch
or ``hvuaudit``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kinetics statistics of torchvision's video models (r3d18; tiny uses them too).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# Hara et al.'s Kinetics statistics (their mean.py, dataset "kinetics", value scale 1: frames in
# [0, 1]), which their Kinetics-700 checkpoints were trained with.
HARA_KINETICS_MEAN = (0.4345, 0.4051, 0.3775)
HARA_KINETICS_STD = (0.2768, 0.2713, 0.2737)


@dataclass(frozen=True)
class BackboneSpec:
    """What the trainer needs to know about a backbone before building it."""

    feature_dim: int
    head_hidden: int
    """Default hidden width of the scene/object heads."""
    mean: tuple[float, float, float] = KINETICS_MEAN
    """Per-channel mean of frames in [0, 1]: the statistics the backbone's pretrained weights expect."""
    std: tuple[float, float, float] = KINETICS_STD
    hara_depth: int | None = None
    """Depth of a Hara et al. 3D-ResNet; their checkpoints call it ``arch: "resnet-<depth>"``."""
    torchvision: str | None = None
    """The torchvision.models.video builder (r3d_18, r2plus1d_18, mc3_18); its Kinetics-400 weights are
    ``--pretrained kinetics400``."""


# Hara et al.'s stages: block type and blocks per stage (their models/resnet.py, generate_model).
HARA_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


def _hara_spec(depth: int) -> BackboneSpec:
    feature_dim = 512 if HARA_LAYOUTS[depth][0] == "basic" else 2048
    return BackboneSpec(
        feature_dim=feature_dim,
        head_hidden=2048,
        mean=HARA_KINETICS_MEAN,
        std=HARA_KINETICS_STD,
        hara_depth=depth,
    )


BACKBONES: dict[str, BackboneSpec] = {
    "tiny": BackboneSpec(feature_dim=32, head_hidden=64),
    # torchvision's video ResNets (Tran et al. 2018): 3D convolutions, (2+1)D, and mixed (3D then 2D).
    "r3d18": BackboneSpec(feature_dim=512, head_hidden=2048, torchvision="r3d_18"),
    "r2plus1d_18": BackboneSpec(feature_dim=512, head_hidden=2048, torchvision="r2plus1d_18"),
    "mc3_18": BackboneSpec(feature_dim=512, head_hidden=2048, torchvision="mc3_18"),
    "r3d10": _hara_spec(10),
    "r3d18h": _hara_spec(18),
    "r3d34": _hara_spec(34),
    "r3d50": _hara_spec(50),
    "r3d101": _hara_spec(101),
}
