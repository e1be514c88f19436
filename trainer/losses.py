"""The AMT objective L = L_action + λ·L_scene + γ·L_object, and the gradient reversal layer.

Sits between the model's outputs and the optimiser (called by :mod:`trainer.engine`).
A negative weight makes a head adversarial, in one of two modes:

* ``grl``: the head minimises its own BCE (weight 1) while the backbone receives
  that gradient reversed and scaled by |w| (a gradient reversal layer in front of
  the head, applied by the model's forward pass);
* ``negative``: the paper's Eq. 3 literally, the weight w < 0 multiplies the loss,
  so the head and the backbone both get the flipped gradient. The scene head can
  then simply learn to be wrong: the loss is unbounded and runs away;
* ``dcorr``: no head to fool: the backbone pays |w| times the squared distance
  correlation (U-statistic) between the batch's features and its multi-hot labels
  of that head, the evaluator's bias metric as the training signal
  (:func:`dcorr2_penalty`). The head still learns, on features it cannot change
  (a reversal of weight 0), as a probe of what the features hold.
* ``cdcorr``: the dcorr² penalty within each action: the mean over the batch's
  actions (those with 4 clips or more) of dcorr²(features, labels) among that
  action's clips (:func:`conditional_dcorr2_penalty`). It asks for features
  independent of the scene *given the action*, as equalized odds asks of a
  prediction (Hardt et al., 2016), so the scene information that the action itself
  carries (in training, each action sits mostly in one scene) is not fought;
* ``ensemble``: K copies of the head, each minimising its own BCE at full strength,
  behind one gradient reversal of |w|/K: the backbone gets |w| times the reversed
  gradient of their mean loss. The trainer re-initialises one copy in turn (the
  oldest) every few epochs (:func:`reinit_schedule`), so that the backbone cannot
  settle on features that fool one stale head (after the ensembles of adversaries
  of Elazar & Goldberg, 2018).

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


def _distances(points: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows, with a zero gradient where two rows coincide (the diagonal).

    From the Gram matrix (n × n memory, not n × n × d); in float64, so the cancellation is far below
    the 1e-6 the penalty is checked to."""
    norms = points.pow(2).sum(1)
    squared = (norms.unsqueeze(1) + norms.unsqueeze(0) - 2 * points @ points.T).clamp_min(0)
    # what the Gram matrix cancels to noise (float64: ~1e-16 of the norms) is a coincidence: distance 0
    positive = (squared > 1e-12 * norms.max()) & ~torch.eye(
        len(points), dtype=torch.bool, device=points.device
    )
    return torch.where(positive, squared.clamp_min(1e-30).sqrt(), torch.zeros_like(squared))


def _u_centred(distances: torch.Tensor) -> torch.Tensor:
    """The U-centred distance matrix of Székely & Rizzo (2014): row and column sums over n - 2, the total
    over (n - 1)(n - 2), and a zero diagonal."""
    n = distances.shape[0]
    rows = distances.sum(1, keepdim=True) / (n - 2)
    columns = distances.sum(0, keepdim=True) / (n - 2)
    total = distances.sum() / ((n - 1) * (n - 2))
    centred = distances - rows - columns + total
    return centred * (1 - torch.eye(n, dtype=distances.dtype, device=distances.device))


def dcorr2_penalty(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The squared distance correlation (U-statistic) between the rows of ``features`` (n, d) and of
    ``labels`` (n, k; one-hot or multi-hot), differentiable in ``features``.

    Both distances Euclidean, as :func:`hvueval.dcorr.distance_correlation_stats` measures them
    (a test checks the two agree to 1e-6). The U-statistic, not the V one: its expectation does not
    grow as the batch shrinks, so that the penalty means the same at batch 16 as at 256 (the V
    statistic of independent data is about 1/n above 0). It can be below 0 (by chance near
    independence, and far below it for features pushed to the opposite of independence), so the
    objective takes ``max(0, ·)`` of it (:class:`Objective`): what is rewarded is reaching 0, not
    passing it. Needs n >= 4; a smaller batch, constant features or labels give 0 (as ``dcor``
    defines it), with a finite (zero) gradient.
    """
    n = features.shape[0]
    zero = features.sum() * 0.0  # keeps the graph, so that backward() works on every batch
    if n < 4:
        return zero
    a = _u_centred(_distances(features.double()))
    b = _u_centred(_distances(labels.double()))
    scale = n * (n - 3)
    xy, xx, yy = (a * b).sum() / scale, (a * a).sum() / scale, (b * b).sum() / scale
    # constant features or labels (a batch whose clips share their scene tags): 0. The where comes before the
    # square root, whose gradient at 0 is infinite; no host sync either
    product = (xx * yy).abs()
    defined = product > 1e-24
    denominator = torch.where(defined, product, torch.ones_like(product)).sqrt()
    return torch.where(defined, xy / denominator, torch.zeros_like(xy)).to(features.dtype) + zero


def conditional_dcorr2_penalty(
    features: torch.Tensor, labels: torch.Tensor, actions: torch.Tensor, *, min_clips: int = 4
) -> torch.Tensor:
    """dcorr² (U-statistic) of features and labels within each action, averaged over the batch's actions
    with at least ``min_clips`` clips (0 when there is none). Differentiable in ``features``.

    Each action's term is :func:`dcorr2_penalty` on that action's rows, clamped at 0 (a U-statistic below
    0 is no better than independence), so the mean rewards no action for passing independence.
    """
    zero = features.sum() * 0.0
    terms = []
    for action in torch.unique(actions):
        rows = actions == action
        if int(rows.sum()) >= min_clips:
            terms.append(dcorr2_penalty(features[rows], labels[rows]).clamp_min(0))
    return torch.stack(terms).mean() + zero if terms else zero


def conditional_coverage(actions: torch.Tensor, labels: torch.Tensor, *, min_clips: int = 4) -> torch.Tensor:
    """The share of the batch's clips that :func:`conditional_dcorr2_penalty` can act on: those of an action
    with at least ``min_clips`` clips in the batch whose scene labels are not all the same (a term whose
    clips share their scene tags is 0, with no gradient). Below 1 the penalty ignores the other clips.
    """
    counts = torch.bincount(actions)
    seen = counts[actions] >= min_clips
    for action in torch.unique(actions[seen]):
        rows = actions == action
        if bool((labels[rows] == labels[rows][0]).all()):
            seen = seen & ~rows
    return seen.float().mean()


@dataclass(frozen=True)
class HeadWeight:
    """How one auxiliary head enters the loss at one step."""

    loss_weight: float
    """Multiplies the head's BCE in the total loss."""
    grl: float | None
    """Coefficient of the gradient reversal in front of the head; None = none."""
    effective: float
    """The signed weight of the objective as the paper writes it (for logging)."""
    penalty: float | None = None
    """--adversary dcorr: the weight of dcorr²(features, this head's labels) in the loss (|w|, ramped; 0
    at the ramp's start); None for the other modes."""


@dataclass(frozen=True)
class Objective:
    """Signed weights of the scene/object heads and how adversarial heads are trained."""

    lambda_: float
    gamma: float
    adversary: str = "grl"
    adv_schedule: str = "constant"
    head_reduction: str = "mean"  # a head's BCE over its classes: "mean", or "sum" (the paper's Eq. 2)
    adversary_heads: int = 1  # --adversary ensemble: K copies of each adversarial head

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
            elif w < 0 and self.adversary == "ensemble":
                # K copies, each at full strength on its BCE; the backbone gets |w| × their mean, reversed
                k = self.adversary_heads
                out[name] = HeadWeight(loss_weight=1.0, grl=abs(w) * ramp / k, effective=w * ramp)
            elif w < 0 and self.adversary in ("dcorr", "cdcorr"):
                # the head learns on features it cannot move (reversal of weight 0); the penalty moves them
                out[name] = HeadWeight(loss_weight=1.0, grl=0.0, effective=w * ramp, penalty=abs(w) * ramp)
            elif w < 0:
                out[name] = HeadWeight(loss_weight=w * ramp, grl=None, effective=w * ramp)
        return out

    def _bce(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # multi-hot tags over the labels.json vocabulary: (b, k) float; averaged over the batch, and
        # over the k classes (mean) or summed over them (sum: Eq. 2, so that λ weighs K times more)
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return bce.mean() if self.head_reduction == "mean" else bce.sum(dim=1).mean()

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
            copies = outputs.get(f"{name}_copies")
            if copies is not None:  # an ensemble: each copy's BCE; the head's loss is their mean
                losses = torch.stack([self._bce(logits, batch[name]) for logits in copies.float()])
                parts[name] = losses.mean()
                total = total + hw.loss_weight * losses.sum()  # each copy learns at full strength
            else:
                parts[name] = self._bce(outputs[name].float(), batch[name])
                total = total + hw.loss_weight * parts[name]
            if hw.penalty is not None:
                # per process under DDP: each rank's batch, and DDP averages the gradients over the ranks
                if self.adversary == "cdcorr":  # within each action of the batch, each clamped at 0
                    dcorr2 = conditional_dcorr2_penalty(
                        outputs["features"].float(), batch[name].float(), batch["action"]
                    )
                    parts[f"{name}_dcorr2_coverage"] = conditional_coverage(batch["action"], batch[name])
                else:
                    dcorr2 = dcorr2_penalty(outputs["features"].float(), batch[name].float())
                parts[f"{name}_dcorr2"] = dcorr2  # logged as measured, below 0 included
                # penalised from 0 up: a U-statistic below 0 is no better than independence
                penalty = dcorr2.clamp_min(0)
                total = total + hw.penalty * penalty
                logged = logged + hw.penalty * penalty.detach()
            else:
                logged = logged + hw.effective * parts[name].detach()
        return total, parts, logged


def reinit_schedule(epoch: int, *, every: int, heads: int) -> int | None:
    """--adversary ensemble: the copy re-initialised at the start of ``epoch`` (1-based), or None.

    Every ``every`` epochs from the first after ``every``, the copies in turn, oldest first: with every=2
    and 3 heads, copy 0 at epoch 3, copy 1 at epoch 5, copy 2 at epoch 7, copy 0 at epoch 9, ... Each copy
    then lives ``every × heads`` epochs, and the backbone always faces a mix of old and new heads.
    """
    if epoch <= every or (epoch - 1) % every:
        return None
    return ((epoch - 1) // every - 1) % heads


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
