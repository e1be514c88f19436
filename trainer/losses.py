"""The AMT objective L = L_action + λ·L_scene + γ·L_object, and the gradient reversal layer.

Sits between the model's outputs and the optimiser (called by :mod:`trainer.engine`).
A negative weight makes a head adversarial, in one of two modes:

* ``grl``: the head minimises its own BCE (weight 1) while the backbone receives
  that gradient reversed and scaled by |w| (a gradient reversal layer in front of
  the head, applied by the model's forward pass);
* ``negative``: the paper's Eq. 3 literally, the weight w < 0 multiplies the loss,
  so the head and the backbone both get the flipped gradient. The scene head can
  then simply learn to be wrong: the loss is unbounded and runs away.

The DANN schedule ramps |w| of adversarial heads from 0 to full strength.
Never imports ``hvuaudit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.errors import DivergedError


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-coeff`` backward."""
    return _GradReverse.apply(x, float(coeff))


def dann_ramp(progress: float) -> float:
    """The DANN schedule 2/(1+exp(-10p))-1: 0 at p=0, about 0.987 at p=0.5, ->1."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


@dataclass(frozen=True)
class HeadWeight:
    """How one auxiliary head enters the loss at one step."""

    loss_weight: float
    """Multiplies the head's BCE in the total loss."""
    grl: float | None
    """Coefficient of the gradient reversal in front of the head; None = none."""
    effective: float
    """The signed weight of the objective as the paper writes it (for logging)."""


@dataclass(frozen=True)
class Objective:
    """Signed weights of the scene/object heads and how adversarial heads are trained."""

    lambda_: float
    gamma: float
    adversary: str = "grl"
    adv_schedule: str = "constant"
    head_reduction: str = "mean"  # a head's BCE over its classes: "mean", or "sum" (the paper's Eq. 2)

    def head_weights(self, progress: float = 1.0, *, scene: bool = True) -> dict[str, HeadWeight]:
        """The active heads at training progress ``progress`` in [0, 1].

        ``scene=False`` drops the scene head (pretrain-adv after pre-training).
        """
        ramp = dann_ramp(progress) if self.adv_schedule == "dann" else 1.0
        out: dict[str, HeadWeight] = {}
        for name, w in (("scene", self.lambda_ if scene else 0.0), ("object", self.gamma)):
            if w > 0:
                out[name] = HeadWeight(loss_weight=w, grl=None, effective=w)
            elif w < 0 and self.adversary == "grl":
                out[name] = HeadWeight(loss_weight=1.0, grl=abs(w) * ramp, effective=w * ramp)
            elif w < 0:
                out[name] = HeadWeight(loss_weight=w * ramp, grl=None, effective=w * ramp)
        return out

    def __call__(
        self,
        outputs: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        weights: dict[str, HeadWeight],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Returns (the loss to back-propagate, the raw loss per head, the paper's L for logging)."""
        parts = {"action": F.cross_entropy(outputs["action"].float(), batch["action"])}
        total = parts["action"]
        logged = parts["action"].detach()
        for name, hw in weights.items():
            # multi-hot tags over the labels.json vocabulary: (b, k) float; averaged over the batch, and
            # over the k classes (mean) or summed over them (sum: Eq. 2, so that λ weighs K times more)
            bce = F.binary_cross_entropy_with_logits(outputs[name].float(), batch[name], reduction="none")
            parts[name] = bce.mean() if self.head_reduction == "mean" else bce.sum(dim=1).mean()
            total = total + hw.loss_weight * parts[name]
            logged = logged + hw.effective * parts[name].detach()
        return total, parts, logged


def check_finite(parts: dict[str, torch.Tensor], total: torch.Tensor, *, epoch: int, step: int) -> None:
    """Stop with a message naming the head and step when a loss is NaN or infinite."""
    if bool(torch.isfinite(total)):
        return
    for name, value in parts.items():
        if not bool(torch.isfinite(value)):
            raise DivergedError(
                f"the {name} loss became {value.item()} at epoch {epoch}, step {step}; "
                "lower --lr, use --adversary grl or a smaller |--lambda|, or try --amp off"
            )
    raise DivergedError(
        f"the total loss became {total.item()} at epoch {epoch}, step {step}; lower --lr or the head weights"
    )
