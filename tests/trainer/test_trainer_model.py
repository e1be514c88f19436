"""trainer.models, trainer.losses, trainer.config: head shapes, gradient signs, weights, roles."""

from __future__ import annotations

import json
import math
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.trainer_fixtures import write_tasks
from trainer import models
from trainer.config import ConfigError, TrainConfig, diff_for_resume, resolve_config
from trainer.engine import mean_average_precision
from trainer.errors import DivergedError
from trainer.losses import Objective, check_finite, dann_ramp, dcorr2_penalty
from trainer.models import ModelConfig, PretrainedError, build_model, load_pretrained

torch.set_num_threads(1)


def _config(backbone: str = "tiny", **kw) -> ModelConfig:
    base = dict(
        backbone=backbone,
        n_actions=5,
        n_scenes=7,
        n_objects=11,
        head_hidden=16,
        scene_head=True,
        object_head=True,
    )
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("backbone", "dim"), [("tiny", 32), ("r3d18", 512), ("r2plus1d_18", 512), ("mc3_18", 512)]
)
def test_every_head_has_the_right_shape(backbone, dim):
    torch.manual_seed(0)
    model = build_model(_config(backbone)).eval()
    video = torch.randn(2, 3, 8, 32, 32)  # (b, 3, t, h, w)
    with torch.no_grad():
        out = model(video, {"scene": None, "object": 0.5})
    assert out["features"].shape == (2, dim)
    assert out["action"].shape == (2, 5)
    assert out["scene"].shape == (2, 7)
    assert out["object"].shape == (2, 11)
    assert set(model(video)) == {"features", "action"}  # heads are computed only when asked for


def test_tiny_backbone_is_small_and_heads_follow_the_paper():
    model = build_model(_config(head_hidden=2048, scene_head=True, object_head=False))
    assert 40_000 < sum(p.numel() for p in model.backbone.parameters()) < 50_000
    kinds = [type(m).__name__ for m in model.scene_head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert model.scene_head[0].out_features == 2048 and model.object_head is None
    assert isinstance(model.action_head, torch.nn.Linear)


def _scene_grads(model, objective: Objective, video, batch):
    """Gradients of the scene loss alone, on the backbone and on the scene head."""
    model.zero_grad(set_to_none=True)
    weights = {"scene": objective.head_weights(1.0)["scene"]}
    out = model(video, {"scene": weights["scene"].grl})
    scene_loss = weights["scene"].loss_weight * torch.nn.functional.binary_cross_entropy_with_logits(
        out["scene"], batch["scene"]
    )
    scene_loss.backward()
    backbone = torch.cat([p.grad.flatten() for p in model.backbone.parameters()])
    head = torch.cat([p.grad.flatten() for p in model.scene_head.parameters()])
    return backbone, head


@pytest.fixture
def grad_setup():
    torch.manual_seed(0)
    model = build_model(_config(object_head=False)).double()
    model.train()
    video = torch.randn(4, 3, 8, 32, 32, dtype=torch.float64)
    batch = {"scene": (torch.rand(4, 7) > 0.5).double()}
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def grads(objective):
        model.load_state_dict(state)  # the same BatchNorm statistics each time
        return _scene_grads(model, objective, video, batch)

    return grads


def test_grl_reverses_and_scales_the_backbone_gradient_only(grad_setup):
    plain_b, plain_h = grad_setup(Objective(lambda_=1.0, gamma=0.0))  # plain multi-task, weight 1
    grl_b, grl_h = grad_setup(Objective(lambda_=-0.3, gamma=0.0, adversary="grl"))
    assert plain_b.abs().sum() > 0
    torch.testing.assert_close(grl_b, -0.3 * plain_b)
    torch.testing.assert_close(grl_h, plain_h)


def test_negative_flips_both_gradients(grad_setup):
    plain_b, plain_h = grad_setup(Objective(lambda_=0.3, gamma=0.0))
    neg_b, neg_h = grad_setup(Objective(lambda_=-0.3, gamma=0.0, adversary="negative"))
    torch.testing.assert_close(neg_b, -plain_b)
    torch.testing.assert_close(neg_h, -plain_h)


def test_dcorr_adversary_keeps_the_scene_head_off_the_backbone(grad_setup):
    """--adversary dcorr: the head still learns, but its BCE moves no backbone weight (a reversal of 0)."""
    plain_b, plain_h = grad_setup(Objective(lambda_=1.0, gamma=0.0))
    dcorr_b, dcorr_h = grad_setup(Objective(lambda_=-0.3, gamma=0.0, adversary="dcorr"))
    assert plain_b.abs().sum() > 0 and dcorr_b.abs().sum() == 0
    torch.testing.assert_close(dcorr_h, plain_h)


def test_the_conditional_penalty_is_the_mean_of_the_evaluators_dcorr2_within_each_action():
    from hvueval.dcorr import distance_correlation_stats
    from trainer.losses import conditional_dcorr2_penalty

    rng = np.random.default_rng(3)
    actions = np.repeat([0, 1, 2], [9, 7, 3])  # action 2 has 3 clips: left out
    scenes = rng.integers(0, 3, size=len(actions))
    labels = np.eye(3)[scenes]
    features = rng.normal(size=(len(actions), 6)) + 1.5 * labels @ rng.normal(size=(3, 6))
    penalty = conditional_dcorr2_penalty(
        torch.tensor(features, requires_grad=True), torch.tensor(labels), torch.tensor(actions)
    )
    expected = [
        max(0.0, distance_correlation_stats(features[actions == a], scenes[actions == a]).dcorr2_u)
        for a in (0, 1)
    ]
    assert (
        float(penalty.detach()) == pytest.approx(np.mean(expected), abs=1e-6)
        and float(penalty.detach()) > 0.05
    )
    # scene and action together: the marginal penalty sees the action's own scene, the conditional not
    shared = torch.tensor(np.repeat([0, 1], 12))  # each action in its own scene...
    within = torch.randn(24, 4, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(shared, 2).double()
    assert float(dcorr2_penalty(within + 3 * onehot @ torch.randn(2, 4).double(), onehot)) > 0.5
    assert float(conditional_dcorr2_penalty(within, onehot, shared)) == 0.0  # constant scene within an action
    few = conditional_dcorr2_penalty(
        torch.randn(3, 4, requires_grad=True), torch.eye(3), torch.tensor([0, 1, 2])
    )
    few.backward()  # no action with 4 clips: 0, with a gradient
    assert float(few) == 0.0


def test_the_conditional_adversary_descends_its_penalty_and_needs_batches_of_sixteen():
    from trainer.losses import conditional_coverage, conditional_dcorr2_penalty

    torch.manual_seed(1)
    actions = torch.arange(32) % 4
    labels = torch.nn.functional.one_hot(torch.randint(0, 3, (32,)), 3).float()
    features = (torch.randn(32, 8) + 2 * labels @ torch.randn(3, 8)).requires_grad_()
    objective = Objective(lambda_=-1.0, gamma=0.0, adversary="cdcorr")
    weights = objective.head_weights(1.0)
    assert weights["scene"].penalty == 1.0 and weights["scene"].grl == 0.0
    outputs = {"features": features, "action": torch.zeros(32, 4), "scene": torch.zeros(32, 3)}
    total, parts, _ = objective(outputs, {"action": actions, "scene": labels}, weights)
    total.backward()
    before = float(parts["scene_dcorr2"])
    after = float(
        conditional_dcorr2_penalty(features - 0.05 * features.grad / features.grad.norm(), labels, actions)
    )
    assert after < before
    assert float(parts["scene_dcorr2_coverage"]) == 1.0  # 8 clips of each action: every clip in a term
    # 4 clips of action 0, one each of 1 and 2: the penalty sees 4 of the 6
    mixed = torch.eye(3)[[0, 1, 1, 2, 0, 2]]
    assert float(conditional_coverage(torch.tensor([0, 1, 0, 0, 2, 0]), mixed)) == pytest.approx(4 / 6)
    # two actions of 4 clips each, every clip of action 1 in one scene: its term is 0, so it is not seen
    actions = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    scenes = torch.eye(3)[[0, 1, 2, 0, 2, 2, 2, 2]]
    assert float(conditional_coverage(actions, scenes)) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="batch-size 16"):
        _resolve(adversary="cdcorr", batch_size=8)


def test_the_ensemble_reverses_the_mean_of_its_heads_and_each_head_learns_at_full_strength():
    """--adversary ensemble: the backbone gets -|λ| × the mean of the K copies' gradients; each copy gets
    its own BCE gradient unscaled, as a single GRL head would."""
    from trainer.models import reinitialise

    torch.manual_seed(0)
    model = build_model(_config(object_head=False, scene_copies=3)).double()
    model.train()
    copies = model.head_copies("scene")
    for k, copy in enumerate(copies):  # three different heads
        reinitialise(copy, torch.Generator().manual_seed(k))
    copies = [copy.double() for copy in copies]
    video = torch.randn(4, 3, 8, 32, 32, dtype=torch.float64)
    batch = {"scene": (torch.rand(4, 7) > 0.5).double(), "action": torch.tensor([0, 1, 2, 3])}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    objective = Objective(lambda_=-0.3, gamma=0.0, adversary="ensemble", adversary_heads=3)
    weights = objective.head_weights(1.0)
    assert weights["scene"].grl == pytest.approx(0.3 / 3) and weights["scene"].effective == pytest.approx(
        -0.3
    )
    out = model(video, {"scene": weights["scene"].grl})
    assert out["scene_copies"].shape == (3, 4, 7)
    torch.testing.assert_close(out["scene"], out["scene_copies"].mean(0))
    model.zero_grad(set_to_none=True)
    total, parts, _ = objective(out, batch, weights)
    (total - parts["action"]).backward()  # the scene part alone
    backbone = torch.cat([p.grad.flatten() for p in model.backbone.parameters()])
    heads = [torch.cat([p.grad.flatten() for p in copy.parameters()]) for copy in copies]
    # each copy alone, as a plain (non-adversarial) head of weight 1, from the same starting state
    plain_backbone, plain_heads = [], []
    for copy in copies:
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        features = model.backbone(video)
        F.binary_cross_entropy_with_logits(copy(features), batch["scene"]).backward()
        plain_backbone.append(torch.cat([p.grad.flatten() for p in model.backbone.parameters()]))
        plain_heads.append(torch.cat([p.grad.flatten() for p in copy.parameters()]))
    torch.testing.assert_close(backbone, -0.3 * torch.stack(plain_backbone).mean(0))
    for head, plain in zip(heads, plain_heads, strict=True):
        torch.testing.assert_close(head, plain)
    assert parts["scene"].item() == pytest.approx(
        float(
            np.mean(
                [F.binary_cross_entropy_with_logits(c, batch["scene"]).item() for c in out["scene_copies"]]
            )
        )
    )


def test_the_ensemble_reinitialises_one_head_in_turn_on_schedule():
    from trainer.losses import reinit_schedule

    every2 = [reinit_schedule(epoch, every=2, heads=3) for epoch in range(1, 14)]
    assert every2 == [None, None, 0, None, 1, None, 2, None, 0, None, 1, None, 2]
    assert [reinit_schedule(e, every=1, heads=2) for e in range(1, 6)] == [None, 0, 1, 0, 1]


def test_reinitialise_draws_the_same_head_from_the_same_seed_and_a_new_one_otherwise():
    from trainer.models import make_head, reinitialise

    head = make_head(8, 16, 5)
    before = [p.detach().clone() for p in head.parameters()]
    reinitialise(head, torch.Generator().manual_seed(7))
    first = [p.detach().clone() for p in head.parameters()]
    reinitialise(head, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, head.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(before, first, strict=True))
    linear = head[0]
    bound = 1 / 8**0.5  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias
    assert (
        float(linear.bias.detach().abs().max()) <= bound
        and float(linear.weight.detach().abs().max()) <= bound
    )


def test_the_ensemble_options_are_checked():
    with pytest.raises(ConfigError, match="--adversary-heads"):
        _resolve(adversary="ensemble", adversary_heads=1)
    with pytest.raises(ConfigError, match="--reinit-every"):
        _resolve(adversary="ensemble", reinit_every=0)
    assert _resolve(adversary="ensemble", adversary_heads=3).adversary_heads == 3


@pytest.mark.parametrize("kind", ["one-hot", "multi-hot"])
def test_the_dcorr_penalty_is_the_evaluators_dcorr2(kind):
    from hvueval.dcorr import distance_correlation_stats

    rng = np.random.default_rng(3)
    n, k = 96, 6
    scenes = rng.integers(0, k, n)
    labels = np.eye(k)[scenes] if kind == "one-hot" else (rng.random((n, k)) < 0.3).astype(np.float64)
    # features that carry some of the scene, some noise
    features = rng.normal(size=(n, 12)) + 1.5 * labels @ rng.normal(size=(k, 12))
    penalty = dcorr2_penalty(torch.tensor(features), torch.tensor(labels))
    measured = distance_correlation_stats(features, labels if kind == "multi-hot" else scenes)
    assert float(penalty) == pytest.approx(measured.dcorr2_u, abs=1e-6) and measured.dcorr2_u > 0.05
    assert float(dcorr2_penalty(torch.zeros(3, 4), torch.ones(3, 2))) == 0.0  # n < 4: no penalty


def test_the_dcorr_penalty_descends_and_scales_with_lambda():
    torch.manual_seed(0)
    labels = torch.eye(4)[torch.arange(32) % 4]
    features = (torch.randn(32, 8) + 2 * labels @ torch.randn(4, 8)).requires_grad_()
    outputs = {"features": features, "action": torch.zeros(32, 3), "scene": torch.zeros(32, 4)}
    batch = {"action": torch.zeros(32, dtype=torch.long), "scene": labels}

    def feature_grad(lam: float) -> torch.Tensor:
        objective = Objective(lambda_=lam, gamma=0.0, adversary="dcorr")
        total, parts, _ = objective(outputs, batch, objective.head_weights(1.0))
        (grad,) = torch.autograd.grad(total, features)
        return grad, parts

    small, parts = feature_grad(-0.3)
    large, _ = feature_grad(-0.6)
    torch.testing.assert_close(large, 2 * small)  # the only gradient to the features: |λ|·∇dcorr²
    before = float(parts["scene_dcorr2"].detach())
    with torch.no_grad():
        after = float(dcorr2_penalty(features - 0.05 * small / small.norm(), labels))
    assert 0 < after < before  # a step against the gradient removes scene information


def test_the_dcorr_penalty_has_a_finite_gradient_and_no_reward_below_independence():
    # a batch whose clips share their scene tags (or carry none): penalty 0, gradient finite (zero)
    for labels in (torch.zeros(9, 4), torch.ones(9, 4), torch.eye(4)[[0] * 9]):
        features = torch.randn(9, 5, requires_grad=True)
        dcorr2_penalty(features, labels).backward()
        assert torch.isfinite(features.grad).all() and float(features.grad.abs().sum()) == 0.0
    # minimised, the U-statistic would run to -1 (features made to mirror the labels' opposite); the
    # objective penalises max(0, ·), so it stops at independence
    torch.manual_seed(1)
    labels = torch.eye(2)[torch.arange(8) % 2]
    features = torch.randn(8, 4, requires_grad=True)
    objective = Objective(lambda_=-1.0, gamma=0.0, adversary="dcorr")
    optimizer = torch.optim.Adam([features], lr=0.05)
    batch = {"action": torch.zeros(8, dtype=torch.long), "scene": labels}
    for _ in range(300):
        outputs = {"features": features, "action": torch.zeros(8, 3), "scene": torch.zeros(8, 2)}
        total, parts, _ = objective(outputs, batch, objective.head_weights(1.0))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert float(parts["scene_dcorr2"].detach()) > -0.3


def test_the_dcorr_adversary_needs_batches_of_four():
    with pytest.raises(ConfigError, match="needs 4 clips or more; --batch-size 3"):
        _resolve(adversary="dcorr", batch_size=3)
    assert _resolve(adversary="dcorr", batch_size=4).adversary == "dcorr"


def test_dann_ramp_and_head_weights():
    assert dann_ramp(0.0) == 0.0
    assert dann_ramp(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_ramp(0.5) == pytest.approx(0.98661, abs=1e-5)
    grl = Objective(lambda_=-0.3, gamma=1.0, adversary="grl", adv_schedule="dann")
    w = grl.head_weights(0.0)
    assert w["scene"].grl == 0.0 and w["scene"].loss_weight == 1.0 and w["object"].loss_weight == 1.0
    assert w["object"].grl is None
    assert grl.head_weights(1.0)["scene"].grl == pytest.approx(0.3 * dann_ramp(1.0))
    neg = Objective(lambda_=-0.3, gamma=0.0, adversary="negative", adv_schedule="constant")
    assert neg.head_weights(0.0)["scene"].loss_weight == -0.3 and "object" not in neg.head_weights()
    assert "scene" not in grl.head_weights(1.0, scene=False)


def test_non_finite_loss_names_the_head_and_step():
    parts = {"action": torch.tensor(1.0), "scene": torch.tensor(float("nan"))}
    with pytest.raises(DivergedError, match="the scene loss became nan at epoch 3, step 7") as err:
        check_finite(parts, torch.tensor(float("nan")), epoch=3, step=7)
    assert err.value.exit_code == 6


def test_mean_average_precision_matches_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    targets = (rng.random((200, 6)) < 0.3).astype(np.uint8)
    targets[:, 5] = 0  # no positive: left out
    scores = rng.normal(size=(200, 6)) + targets
    expected = np.mean([average_precision_score(targets[:, k], scores[:, k]) for k in range(5)])
    assert mean_average_precision(scores, targets) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- pretrained
@pytest.mark.parametrize("backbone", ["r2plus1d_18", "mc3_18"])
def test_torchvision_backbones_load_a_local_weights_file_and_are_told_apart(tmp_path, backbone):
    """A torchvision state dict of the backbone (its Kinetics classifier included) loads from a file; a
    file of another backbone is refused with the backbone it is for."""
    import torchvision.models.video

    torch.manual_seed(3)
    reference = getattr(torchvision.models.video, backbone)(weights=None)  # as torchvision saves it, fc too
    torch.save(reference.state_dict(), tmp_path / "k400.pth")
    model = build_model(_config(backbone))
    report = load_pretrained(model, str(tmp_path / "k400.pth"))
    assert report.classifier_classes == 400 and report.missing == ()
    assert torch.equal(model.backbone.stem[0].weight, reference.stem[0].weight)
    other = "mc3_18" if backbone == "r2plus1d_18" else "r2plus1d_18"
    with pytest.raises(PretrainedError, match=f"it is a checkpoint of --backbone {backbone}"):
        load_pretrained(build_model(_config(other)), str(tmp_path / "k400.pth"))


def test_pretrained_path_loads_the_backbone(tmp_path):
    torch.manual_seed(1)
    source = build_model(_config())
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.backbone.state_dict().items()}}, tmp_path / "w.pt"
    )
    torch.manual_seed(2)
    target = build_model(_config())
    report = load_pretrained(target, str(tmp_path / "w.pt"))
    assert len(report.loaded) == len(source.backbone.state_dict()) and report.missing == ()
    for a, b in zip(
        source.backbone.state_dict().values(), target.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_pretrained_errors(tmp_path, monkeypatch):
    model = build_model(_config())
    with pytest.raises(PretrainedError, match="no such file"):
        load_pretrained(model, str(tmp_path / "none.pt"))
    torch.save({"blocks.0.weight": torch.zeros(8, 3, 1, 1, 1)}, tmp_path / "bad.pt")
    with pytest.raises(PretrainedError, match=r"blocks.0.weight has shape \(8, 3, 1, 1, 1\)"):
        load_pretrained(model, str(tmp_path / "bad.pt"))
    with pytest.raises(
        PretrainedError, match=r"torchvision's backbones \(r3d18, r2plus1d_18, mc3_18\), not tiny"
    ):
        load_pretrained(model, "kinetics400")

    def offline(builder):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(models, "_fetch_kinetics400_state_dict", offline)
    for backbone, file_name in (("r3d18", "r3d_18-b3b3357e.pth"), ("mc3_18", "mc3_18-a90a0ba3.pth")):
        with pytest.raises(PretrainedError) as err:
            load_pretrained(build_model(_config(backbone)), "kinetics400")
        message = str(err.value)
        assert "need a network connection" in message and "--pretrained PATH" in message
        assert f"copy {file_name} there" in message  # the file of that backbone's weights


# --------------------------------------------------------------------------- config
def _resolve(**kw) -> TrainConfig:
    return resolve_config(TrainConfig(**{"split_dir": "s", "backbone": "tiny", **kw}))


def test_method_defaults_follow_the_prototype():
    amt = _resolve()
    assert (amt.lambda_, amt.gamma, amt.adversary, amt.adv_schedule) == (-0.3, 1.0, "grl", "dann")
    assert amt.tasks == {"action": "learn", "scene": "adversarial", "object": "auxiliary"}
    assert _resolve(method="baseline").tasks == {"action": "learn", "scene": None, "object": None}
    assert _resolve(method="mtl").lambda_ == 1.0
    assert _resolve(method="mtl", gamma=0.5).object_role == "auxiliary"
    assert _resolve(method="amt-no-object").object_role is None
    assert _resolve(method="pretrain-adv", epochs=6).pretrain_epochs == 3
    assert _resolve(optimizer="adam").lr == 1e-3 and _resolve().lr == 0.01
    assert _resolve().head_hidden == 64
    assert resolve_config(_resolve()) == _resolve()  # idempotent


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lambda_": 0.3}, "--lambda 0.3 contradicts --method amt, whose scene head is adversarial"),
        ({"method": "mtl", "lambda_": -1.0}, "whose scene head is auxiliary"),
        ({"method": "baseline", "lambda_": -0.3}, "--method baseline trains no scene head"),
        ({"method": "amt-no-object", "gamma": 1.0}, "trains no object head"),
        ({"lambda_": 0.0}, "would switch off the scene head"),
        (
            {"method": "pretrain-adv", "epochs": 2, "pretrain_epochs": 2},
            "must be at least 1 and below --epochs",
        ),
        ({"pretrain_epochs": 2}, "only applies to --method pretrain-adv"),
        (
            {"backbone": "r3d99"},
            "unknown backbone 'r3d99'; choose one of: tiny, r3d18, r2plus1d_18, mc3_18, r3d10, r3d18h, r3d34",
        ),
        ({"max_lr": 0.1}, "--max-lr only applies to --schedule onecycle"),
        ({"min_found": 1.5}, "--min-found is a share"),
        ({"size": 4}, "--size must be an integer of at least 8"),
    ],
)
def test_contradictions_are_refused(kw, message):
    with pytest.raises(ConfigError) as err:
        _resolve(**kw)
    assert message in str(err.value)


def test_tasks_file_sets_signs_and_options_set_magnitudes(tmp_path):
    tasks = write_tasks(tmp_path / "tasks.json")
    cfg = _resolve(tasks_file=str(tasks), lambda_=0.2, gamma=2.0)
    assert (cfg.lambda_, cfg.gamma) == (-0.2, 2.0)
    notes = []
    flipped = write_tasks(tmp_path / "flipped.json", scene="auxiliary", obj="adversarial")
    cfg = resolve_config(
        TrainConfig(backbone="tiny", method="auto", tasks_file=str(flipped)), log=notes.append
    )
    assert cfg.method == "mtl" and (cfg.lambda_, cfg.gamma) == (1.0, -0.3)  # default magnitudes per role
    assert cfg.tasks == {"action": "learn", "scene": "auxiliary", "object": "adversarial"}
    assert "--method auto" in notes[0] and "so the method is mtl" in notes[0]
    assert resolve_config(cfg) == cfg  # resolving the resolved config changes nothing
    with pytest.raises(ConfigError, match="trains no scene or object head"):
        _resolve(method="baseline", tasks_file=str(tasks))
    (tmp_path / "old.json").write_text('{"format": "hvuaudit-tasks/0"}')
    with pytest.raises(ConfigError, match="format is 'hvuaudit-tasks/0'"):
        _resolve(tasks_file=str(tmp_path / "old.json"))
    with pytest.raises(ConfigError, match="no such tasks file"):
        _resolve(tasks_file=str(tmp_path / "none.json"))


def test_an_undecided_role_is_refused_for_a_head_the_method_trains(tmp_path):
    from hvucontracts.errors import ExitCode
    from hvucontracts.tasks import TASKS_FORMAT

    doc = {
        "format": TASKS_FORMAT,
        "roles": {"scene": "undecided", "object": "auxiliary"},
        "warnings": [
            "scene: undecided: at threshold 0.2 with labelled clips neither the bootstrap interval ..."
        ],
    }
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="left scene undecided") as err:
        _resolve(method="amt", tasks_file=str(path))
    assert err.value.exit_code == ExitCode.BAD_INPUT == 3
    # a method without a scene head does not need its role; the file's warnings are shown again
    doc["roles"] = {"scene": "adversarial", "object": "undecided"}
    path.write_text(json.dumps(doc))
    notes: list[str] = []
    cfg = resolve_config(
        TrainConfig(backbone="tiny", method="amt-no-object", tasks_file=str(path)), log=notes.append
    )
    assert cfg.tasks == {"action": "learn", "scene": "adversarial", "object": None}
    assert notes[0].startswith(f"warning: {path}: scene: undecided")


def test_resume_diff_ignores_harmless_settings():
    saved = _resolve()
    assert (
        diff_for_resume(saved, resolve_config(TrainConfig(split_dir="s", backbone="tiny", workers=0))) == []
    )
    assert diff_for_resume(saved, _resolve(lr=0.1))[0] == ("lr", 0.01, 0.1)


@pytest.mark.parametrize(
    ("method", "scene", "obj", "message"),
    [
        ("amt", "auxiliary", "auxiliary", "--method amt makes the scene adversarial, but"),
        ("mtl", "adversarial", "auxiliary", "the method that matches the file's roles is --method amt"),
        ("pretrain-adv", "auxiliary", "adversarial", "no named method has the file's roles"),
        ("amt", "adversarial", "adversarial", "--method amt makes the object auxiliary, but"),
        ("amt-no-object", "auxiliary", "auxiliary", "is --method mtl with --gamma 1"),
    ],
)
def test_a_method_that_tasks_json_contradicts_is_refused(tmp_path, method, scene, obj, message):
    """No silent override: the file's roles never turn one method into another behind its name."""
    from hvucontracts.errors import ExitCode

    tasks = write_tasks(tmp_path / "tasks.json", scene=scene, obj=obj)
    with pytest.raises(ConfigError, match=message) as err:
        _resolve(method=method, tasks_file=str(tasks))
    assert err.value.exit_code == ExitCode.BAD_INPUT == 3


def test_auto_takes_the_roles_as_they_are_and_needs_a_file(tmp_path):
    amt = _resolve(method="auto", tasks_file=str(write_tasks(tmp_path / "a.json")))
    assert amt.method == "amt" and amt.tasks == {
        "action": "learn",
        "scene": "adversarial",
        "object": "auxiliary",
    }
    both = _resolve(method="auto", tasks_file=str(write_tasks(tmp_path / "b.json", obj="adversarial")))
    assert both.method == "amt" and both.gamma is not None and both.gamma < 0
    with pytest.raises(ConfigError, match="--method auto takes the roles of a tasks.json"):
        _resolve(method="auto")


def test_head_loss_reductions_differ_by_the_number_of_classes():
    """--head-loss-reduction sum is Eq. 2: each head's BCE summed over its K classes, K times the mean."""
    torch.manual_seed(0)
    outputs = {"action": torch.randn(4, 3), "scene": torch.randn(4, 7), "object": torch.randn(4, 11)}
    batch = {
        "action": torch.tensor([0, 1, 2, 0]),
        "scene": (torch.rand(4, 7) > 0.5).float(),
        "object": (torch.rand(4, 11) > 0.7).float(),
    }
    parts = {}
    for reduction in ("mean", "sum"):
        objective = Objective(lambda_=1.0, gamma=1.0, head_reduction=reduction)
        total, parts[reduction], _ = objective(outputs, batch, objective.head_weights())
    assert torch.allclose(parts["sum"]["scene"], 7 * parts["mean"]["scene"])
    assert torch.allclose(parts["sum"]["object"], 11 * parts["mean"]["object"])
    assert torch.equal(parts["sum"]["action"], parts["mean"]["action"])  # the action loss is one softmax CE
    assert _resolve().head_loss_reduction == "mean"
    assert TrainConfig.from_json({"method": "amt"}).head_loss_reduction == "mean"  # a run from before
    with pytest.raises(ConfigError, match="--head-loss-reduction 'max' is not one of: mean, sum"):
        _resolve(head_loss_reduction="max")


def test_auto_drops_an_object_head_the_file_does_not_decide_and_refuses_a_missing_scene(tmp_path):
    from hvucontracts.tasks import TASKS_FORMAT

    path = tmp_path / "tasks.json"
    notes: list[str] = []
    path.write_text(
        json.dumps({"format": TASKS_FORMAT, "roles": {"scene": "adversarial", "object": "undecided"}})
    )
    cfg = resolve_config(TrainConfig(backbone="tiny", method="auto", tasks_file=str(path)), log=notes.append)
    assert cfg.method == "amt-no-object" and cfg.object_role is None and cfg.gamma == 0.0
    assert any("the object's role is undecided: no object head" in n for n in notes)
    path.write_text(json.dumps({"format": TASKS_FORMAT, "roles": {"object": "auxiliary"}}))
    with pytest.raises(ConfigError, match="the scene's role is missing, so --method auto cannot choose"):
        _resolve(method="auto", tasks_file=str(path))


def test_a_resumed_run_keeps_the_roles_it_was_trained_with(tmp_path):
    """A run's config.json records its resolved roles; resolving it again (as --resume does) keeps them, even
    for a run trained before a method's own roles were enforced (mtl that a file made adversarial)."""
    tasks = write_tasks(tmp_path / "tasks.json")  # scene adversarial, object auxiliary
    old = TrainConfig.from_json(
        {"method": "mtl", "backbone": "tiny", "tasks_file": str(tasks), "lambda": -0.3, "gamma": 0.0,
         "scene_role": "adversarial", "object_role": None, "split_dir": "s"}
    )  # fmt: skip
    resumed = resolve_config(old)
    assert (resumed.method, resumed.scene_role, resumed.lambda_) == ("mtl", "adversarial", -0.3)
    both = write_tasks(tmp_path / "both.json", obj="adversarial")
    auto = _resolve(method="auto", tasks_file=str(both))
    assert resolve_config(auto) == auto  # idempotent: the auto run resumes as it was


def test_each_recipe_resolves_to_the_documented_values():
    """docs/trainer.md's Recipes table lists, row by row, what each recipe sets; resolving keeps all of it."""
    from pathlib import Path

    from trainer.config import NEEDS_PRETRAINED, RECIPES, with_recipe

    docs = (Path(__file__).resolve().parents[2] / "docs" / "trainer.md").read_text()
    for name, values in RECIPES.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |"))
        extra = {"pretrained": "r3d_K_200ep.pth"} if name in NEEDS_PRETRAINED else {}
        cfg = resolve_config(with_recipe(name, split_dir="s", **extra))
        assert cfg.recipe == name
        for key, value in values.items():
            assert getattr(cfg, key) == value, (name, key)
            flag = key.replace("_", "-")
            shown = (
                (f"--{flag}" if value else f"--no-{flag}")
                if isinstance(value, bool)
                else f"--{flag} {value:g}"
                if isinstance(value, float)
                else f"--{flag} {value}"
            )
            assert f"`{shown}`" in row, (name, shown)
        assert ("needs `--pretrained`" in row) == (name in NEEDS_PRETRAINED)
    # an option given over a recipe wins
    assert resolve_config(with_recipe("cpu-demo", split_dir="s", epochs=1, size=48)).size == 48


def test_paper_recipes_need_pretrained_weights():
    from trainer.config import with_recipe

    for name in ("paper-r18", "paper-r50"):
        with pytest.raises(ConfigError, match=f"--recipe {name} starts from Kinetics-700 weights"):
            resolve_config(with_recipe(name, split_dir="s"))
    with pytest.raises(ConfigError, match="unknown recipe 'paper-r34'; choose one of: paper-r18"):
        with_recipe("paper-r34")


def test_an_ensemble_reinitialisation_draws_the_scheduled_copy_afresh_and_forgets_its_momentum():
    from types import SimpleNamespace

    from trainer.models import reinitialise
    from trainer.train import _reinit_ensemble

    cfg = TrainConfig(adversary="ensemble", adversary_heads=3, reinit_every=2, seed=5)
    model = build_model(_config(object_head=False, scene_copies=3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3, 8, 32, 32), {"scene": 0.1})["scene"].sum().backward()
    optimizer.step()  # every parameter has a momentum buffer now
    before = [[p.detach().clone() for p in copy.parameters()] for copy in model.head_copies("scene")]
    run = SimpleNamespace(cfg=cfg, model=model, optimizer=optimizer)
    assert _reinit_ensemble(run, 4) == {} and _reinit_ensemble(run, 2) == {}  # not on the schedule
    assert _reinit_ensemble(run, 5) == {"scene": 1}  # epoch 5, every 2: the second copy
    fresh = build_model(_config(object_head=False, scene_copies=3)).head_copies("scene")[1]
    reinitialise(fresh, torch.Generator().manual_seed(5 * 1_000_003 + 5 * 101 + 0))
    copies = model.head_copies("scene")
    assert all(torch.equal(a, b) for a, b in zip(copies[1].parameters(), fresh.parameters(), strict=True))
    for k in (0, 2):  # the others untouched, momentum kept
        assert all(torch.equal(a, b) for a, b in zip(before[k], copies[k].parameters(), strict=True))
        assert all(p in optimizer.state for p in copies[k].parameters())
    assert not any(p in optimizer.state for p in copies[1].parameters())


def test_ensemble_settings_are_checked_where_they_would_do_nothing():
    from trainer.config import unused_settings

    assert "adversary_heads" in unused_settings(_resolve(adversary="grl"))
    assert "adversary_heads" in unused_settings(
        _resolve(adversary="ensemble", method="mtl")
    )  # nothing adversarial
    ensemble = _resolve(adversary="ensemble", epochs=4, reinit_every=2)
    assert "adversary_heads" not in unused_settings(ensemble) and "reinit_every" not in unused_settings(
        ensemble
    )
    assert "reinit_every" in unused_settings(_resolve(adversary="ensemble", epochs=2, reinit_every=2))
    with pytest.raises(ConfigError, match="--eval-batch-size 3"):
        _resolve(adversary="dcorr", eval_batch_size=3)
    with pytest.raises(ConfigError, match="--eval-batch-size 8"):
        _resolve(adversary="cdcorr", batch_size=16, eval_batch_size=8)


def test_an_ensemble_checkpoint_starts_another_run_without_its_heads(tmp_path):
    ensemble = build_model(_config(scene_copies=3))
    path = tmp_path / "ensemble.pt"
    torch.save({"model": ensemble.state_dict()}, path)
    plain = build_model(_config())
    load_pretrained(plain, str(path))  # refused its heads' copies before: 'a checkpoint of another backbone?'
    torch.testing.assert_close(plain.backbone.state_dict(), ensemble.backbone.state_dict())
