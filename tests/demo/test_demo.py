"""The built-in benchmark (hvuaudit synth videos) and the end-to-end demo (hvuaudit demo --quick).

The generator tests are fast. ``test_demo_quick`` runs the whole quick demo (about
2 minutes on a 2-core machine) and checks properties of its seeded run with margins
measured over 5 seeds (see docs/demo.md, "Measured").
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.errors import ConflictError, InputError
from hvudemo.videoset import (
    ACTIONS,
    FILE_NAMES,
    PER_ACTION_MIN_SPRITE,
    SHAPES,
    VideoSetConfig,
    _shape_mask,
    generate_video_set,
    plan_clips,
)

SMALL = VideoSetConfig(clips=160, test_clips=40, indist_clips=16, uniform_clips=16, control_clips=64)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_generator_is_deterministic_whatever_the_worker_count(tmp_path):
    one = generate_video_set(SMALL, tmp_path / "a", workers=1)
    two = generate_video_set(SMALL, tmp_path / "b", workers=2)
    assert one.clips == two.clips == 160 + 40 + 16 + 16 + 64
    digest = _digest(tmp_path / "a")
    assert digest == _digest(tmp_path / "b")
    assert len([k for k in digest if k.endswith(".mp4")]) == one.clips
    other = generate_video_set(VideoSetConfig(**{**SMALL.__dict__, "seed": 1}), tmp_path / "c", workers=1)
    assert (tmp_path / "c" / FILE_NAMES["train"]).read_bytes() != (
        tmp_path / "a" / FILE_NAMES["train"]
    ).read_bytes()
    assert other.si2_val_fraction == one.si2_val_fraction


# SHA-256 of SMALL's files as the generator wrote them before --objects existed (commit 6ba692d): the default
# scheme must keep writing them, or a rerun of an older demo would train on another benchmark
FAMILY_DIGESTS = {
    "HVU_Train_Benchmark.csv": "7eb873799c00b2f8ff10f6caeeadae8d422dfdfd2df9c83c616c412109980c7b",
    "Benchmark_indist.csv": "e81feb111819a50f1c3177ba538e4bb5c05afd0ca5c72be2490fb95874c9b447",
    "Benchmark_uniform.csv": "08a65048e09593de1b923ca81d11dd8ad3aec2cde04497bd61504db93136737d",
    "Benchmark_control.csv": "16a97cc8a7779c4c1ae285a94fbe7e518d8c4217e19e6e8ba53d480713a88308",
    "HVU_Tags_Categories_Benchmark.csv": "49e39fc5f625a8840d5fd4bb20b7bfb5b4e21e91be2a907f964b29020c21a721",
}
# the raw frames of SMALL's first 8 clips (before encoding, so that no codec version enters the digest)
FAMILY_PIXELS = "60b98f4a92050a20dd55490c20104fd52052712310d69feb9a3876a99bde28b2"


def test_the_default_object_scheme_writes_the_benchmark_of_earlier_versions(tmp_path):
    from hvudemo.videoset import render_clip

    generate_video_set(SMALL, tmp_path / "b", workers=2)
    assert {name: _digest(tmp_path / "b")[name] for name in FAMILY_DIGESTS} == FAMILY_DIGESTS
    config = SMALL.resolved()
    frames = b"".join(render_clip(spec, config).tobytes() for spec in plan_clips(config)[:8])
    assert hashlib.sha256(frames).hexdigest() == FAMILY_PIXELS


def test_clips_decode_to_the_requested_frames_and_names_follow_mmaction(tmp_path):
    import av

    files = generate_video_set(SMALL, tmp_path / "b", workers=1)
    first = files.annotations["train"].read_text().splitlines()[1]
    tags, youtube_id, start, end = first.split(",")
    assert (start, end) == ("0", "0.8") and len(tags.split("|")) == 3
    with av.open(str(files.videos / f"{youtube_id}_000000_000008.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (32, 32, 3)


def test_existing_benchmark_is_refused_without_force(tmp_path):
    generate_video_set(SMALL, tmp_path / "b", workers=1)
    with pytest.raises(ConflictError):
        generate_video_set(SMALL, tmp_path / "b", workers=1)
    generate_video_set(SMALL, tmp_path / "b", workers=1, force=True)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"test_clips": 400}, "could not tell them apart"),
        ({"dominant": 0.2}, "--dominant"),
        ({"speed": 4}, "leaves the 32 px frame"),
        ({"clips": 4}, "--clips"),
        ({"object_share": 0.5}, "--object-share"),
        ({"objects": "per-tag"}, "--objects must be one of family, per-action"),
        ({"objects": "per-action", "sprite": 5}, "--objects per-action needs --sprite 6 or more"),
    ],
)
def test_bad_settings_are_refused_with_a_hint(change, needle):
    with pytest.raises(InputError, match=needle):
        VideoSetConfig(**{**SMALL.__dict__, **change}).resolved()


def test_the_pair_structure_follows_the_recipe():
    config = VideoSetConfig(clips=3000).resolved()
    plan = plan_clips(config)
    train = [c for c in plan if c.subset == "train"]
    assert len(train) == 3000 + 1200
    for action in range(len(ACTIONS)):
        seen = [c.scene for c in train if c.action == action and c.scene in config.seen_scene_ids(action)]
        assert seen.count(action) == 300  # the dominant scene: 80% of the action's 375 biased clips
        rare = [c for c in train if c.action == action and c.scene in config.rare_scene_ids(action)]
        assert len(rare) == 150
    uniform = [c for c in plan if c.subset == "uniform"]
    pairs = {(c.action, c.scene) for c in uniform}
    assert len(pairs) == 64  # every action with every scene


@pytest.mark.parametrize("objects", ["family", "per-action"])
def test_the_shape_follows_the_action_by_the_object_scheme(objects):
    config = VideoSetConfig(clips=3000, objects=objects).resolved()
    train = [c for c in plan_clips(config) if c.subset == "train"]
    for action, name in enumerate(ACTIONS):
        shapes = [SHAPES[c.shape] for c in train if c.action == action]
        main = max(set(shapes), key=shapes.count)
        share = shapes.count(main) / len(shapes)
        assert (
            0.85 < share < 0.95 and len(set(shapes)) == 2
        )  # object_share 0.9: the main shape, else one other
        if objects == "per-action":  # one shape per action: the main shape names the action
            assert main == SHAPES[action] and set(shapes) == {SHAPES[action], SHAPES[(action + 1) % 8]}
        else:  # one bit: translations are squares (or triangles), the others disks (or pluses)
            assert set(shapes) == ({"square", "triangle"} if name.startswith("moving") else {"disk", "plus"})
    mains = {c.shape for c in train}
    assert len(mains) == (8 if objects == "per-action" else 4)


def test_a_per_action_benchmark_lists_its_eight_shapes(tmp_path):
    files = generate_video_set(replace(SMALL, objects="per-action"), tmp_path / "b", workers=1)
    objects = [
        line.split(",")[0] for line in files.categories.read_text().splitlines() if line.endswith(",object")
    ]
    assert objects == list(SHAPES)
    doc = json.loads(files.manifest.read_text())
    assert doc["config"]["objects"] == "per-action"
    assert [doc["actions"][a]["main_object"] for a in ACTIONS] == list(SHAPES)
    # the eight masks differ at every side from the smallest sprite allowed up to the largest a growing
    # default sprite reaches (12 px); growing and shrinking pass through 4 and 5 px for a frame or two
    for side in range(PER_ACTION_MIN_SPRITE, 13):
        assert len({_shape_mask(name, side).tobytes() for name in SHAPES}) == 8, side


@pytest.fixture(scope="module")
def benchmark_store(tmp_path_factory):
    """A 400-clip benchmark, ingested as the demo does."""
    from hvuaudit.ingest import ingest

    root = tmp_path_factory.mktemp("bench")
    files = generate_video_set(VideoSetConfig(clips=400, control_clips=0), root / "bench", workers=2)
    db = root / "store.duckdb"
    ingest([files.annotations["train"]], files.categories, db=db)
    for subset in ("indist", "uniform"):
        ingest([files.annotations[subset]], None, db=db, subset=subset)
    return files, db


def test_nca_finds_objects_necessary_and_scenes_not(benchmark_store):
    from hvuaudit.nca import compute_nca
    from hvuaudit.roles import recommend_roles
    from hvuaudit.store import open_store
    from hvudemo.settings import NCA_THRESHOLD

    _files, db = benchmark_store
    with open_store(db, read_only=True) as con:
        objects = compute_nca(con, "object", threshold=NCA_THRESHOLD, subset="train")
        scenes = compute_nca(con, "scene", threshold=NCA_THRESHOLD, subset="train")
        roles = recommend_roles(con, threshold=NCA_THRESHOLD, subset="train", categories=("scene", "object"))
    assert objects["necessary"].all() and objects.height == len(ACTIONS)
    assert not scenes["necessary"].any()
    assert roles.roles == {"scene": "adversarial", "object": "auxiliary"}


def test_si2_split_holds_out_exactly_the_rare_pairs(benchmark_store, tmp_path):
    from hvuaudit.splits import SplitParams, build_split

    files, db = benchmark_store
    doc = json.loads(files.manifest.read_text())
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        result = build_split(
            con,
            SplitParams(
                variant="2",
                min_videos=1,
                val_fraction=doc["si2_val_fraction"],
                subset="train",
                eval_subsets=("indist", "uniform"),
            ),
        )
    seen = {(a, s) for a, info in doc["actions"].items() for s in info["seen_scenes"]}
    rare = {(a, s) for a, info in doc["actions"].items() for s in info["rare_scenes"]}
    assert set(zip(result.train["action"], result.train["scene"], strict=True)) == seen
    assert set(zip(result.val["action"], result.val["scene"], strict=True)) == rare
    assert set(result.extra) == {"indist", "uniform"}


def test_synth_videos_command(tmp_path):
    args = [
        "synth",
        "videos",
        "--out",
        str(tmp_path / "b"),
        "--clips",
        "160",
        "--test-clips",
        "40",
        "--indist-clips",
        "16",
        "--uniform-clips",
        "16",
        "--control-clips",
        "0",
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "HVU_Train_Benchmark.csv" in result.output and "benchmark.json" in result.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 5 and "--force" in again.output


# Margins measured over seeds 0-4 of the quick demo (docs/demo.md): the smallest gap
# between the baseline's in-distribution and scene-invariant accuracy was 0.38, and
# AMT's uniform-set dcorr² was below the baseline's by at least 0.04.
GAP_MARGIN = 0.15


@pytest.mark.slow
def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    base, amt = summary["methods"]["baseline"], summary["methods"]["amt"]
    assert base["acc_indist"]["mean"] - base["acc_val"]["mean"] >= GAP_MARGIN, base
    assert amt["dcorr2_uniform"]["mean"] < base["dcorr2_uniform"]["mean"], (amt, base)

    for path in [
        "demo.json",
        "REPORT.md",
        "results.json",
        "seed0/tasks.json",
        "seed0/hvu.duckdb",
        "seed0/benchmark/benchmark.json",
        "seed0/si2/manifest.json",
        "seed0/si2/eval_uniform.csv",
        "seed0/si2/eval_indist.csv",
    ]:
        assert (out / path).is_file(), path
    for method in ("baseline", "amt"):
        run = out / "runs" / "main" / f"{method}_seed0"
        for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "eval.json", "features.npz"):
            assert (run / name).is_file(), run / name
        assert set(json.loads((run / "eval.json").read_text())["sets"]) == {"val", "indist", "uniform"}
        assert json.loads((run / "config.json").read_text())["recipe"] == "cpu-demo"  # docs/trainer.md
    report = (out / "REPORT.md").read_text()
    for needle in (
        "## Validity checks",
        "scene-invariant",
        "Seed by seed",
        "| Baseline |",
        "left out of `--quick`",
        "## Figures",
        "](figures/curves.png)",
        "](figures/tsne_scene.png)",
    ):
        assert needle in report, needle
    for figure in summary["figures"]:
        assert (out / figure).read_bytes()[:4] == b"\x89PNG", figure

    # a rerun reuses every finished step
    again = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "reused 2 finished run(s)" in again.output and "reused" in again.output.split("[2/7]")[0]
    # other settings in the same folder are refused
    other = CliRunner().invoke(cli, ["demo", "--quick", "--seeds", "2", "--out", str(out)])
    assert other.exit_code == 5 and "--force" in other.output


@pytest.mark.slow
def test_the_figure_step_draws_grad_cam_without_torch_in_the_parent(tmp_path):
    """Step 7 draws Fig. 4-6, Grad-CAM included, in a worker: the demo's own process never imports torch."""
    from tests.trainer_fixtures import TINY_ARGS, make_split

    split_dir, _ = make_split(tmp_path, record_videos=True)
    for method in ("baseline", "amt"):
        run = tmp_path / "demo" / "runs" / "main" / f"{method}_seed0"
        trained = CliRunner().invoke(
            cli, ["train", "--split", str(split_dir), "--out", str(run), *TINY_ARGS, "--method", method]
        )
        assert trained.exit_code == 0, trained.output
        assert CliRunner().invoke(cli, ["eval", str(run), "--workers", "0"]).exit_code == 0
    code = (
        "import sys; from pathlib import Path; from hvudemo.pipeline import _figures; "
        "from hvudemo.settings import demo_settings; "
        f"paths = _figures(Path({str(tmp_path / 'demo')!r}), demo_settings(quick=True, seeds=None), print); "
        "print(sorted(paths)); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *_, paths, torch_loaded = done.stdout.strip().splitlines()
    assert torch_loaded == "False", done.stdout
    assert "figures/curves.png" in paths and "figures/gradcam/" in paths, paths
