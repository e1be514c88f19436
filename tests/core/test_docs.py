"""The documentation cannot go stale silently: a generated CLI reference, every command described,
links that lead somewhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from hvuaudit.cli import cli
from hvucontracts.errors import HvuError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STAGE_PAGES = [p for p in DOCS.glob("*.md") if p.name != "cli.md"]


def command_paths(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of `hvuaudit`, the lazily loaded ones included."""
    ctx = click.Context(group, info_name="hvuaudit")
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append((*path, name))
        try:
            real = command._load() if hasattr(command, "_load") else command
        except HvuError:  # a lazy command whose extra is not installed
            continue
        if isinstance(real, click.Group):
            found += command_paths(real, (*path, name))
    return found


def test_the_cli_reference_is_generated_from_the_current_help():
    pytest.importorskip("torch")  # the reference includes the trainer's commands
    cog = shutil.which("cog", path=str(Path(sys.executable).parent))
    assert cog, "cogapp is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run([cog, "--check", str(DOCS / "cli.md")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"docs/cli.md is stale; run `make docs`\n{done.stdout}{done.stderr}"


def test_every_command_is_described_on_a_stage_page():
    text = "\n".join(page.read_text() for page in STAGE_PAGES)
    missing = [" ".join(path) for path in command_paths() if f"hvuaudit {' '.join(path)}" not in text]
    assert not missing, f"no stage page in docs/ mentions: {missing}"
    reference = (DOCS / "cli.md").read_text()
    assert all(f"## hvuaudit {' '.join(p)}\n" in reference for p in command_paths())


def test_the_readme_is_short_and_points_at_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme
    for page in STAGE_PAGES:
        assert f"docs/{page.name}" in readme or page.name == "index.md", f"README does not link {page.name}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_local_links_lead_to_a_file_and_a_heading(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file) if file else page
        assert linked.is_file(), f"{page.name}: link to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            headings = [_slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)]
            assert anchor in headings, f"{page.name}: no heading #{anchor} in {linked.name}"


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (what mkdocs links to)."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_one_place_for_the_demo_timings():
    """Timings of the demo are stated in docs/demo.md only; the CLI help and the README point there."""
    from hvudemo.cli import demo

    assert "docs/demo.md" in demo.help and "minute" not in demo.help
    for option in demo.params:
        assert "minute" not in (getattr(option, "help", "") or ""), option.name
    readme = (ROOT / "README.md").read_text()
    assert "minutes" not in readme and "docs/demo.md#measured" in readme


def test_the_layout_names_every_package_and_module():
    """docs/development.md's Layout lists every module of every package, so it cannot go stale."""
    text = (DOCS / "development.md").read_text()
    layout = text[text.index("## Layout") : text.index("## What each package may import")]
    for package in ("hvucontracts", "hvuaudit", "hvuaudit/tui", "trainer", "hvueval", "hvudemo", "queries"):
        assert f"{package}/" in layout, package
    missing = [
        str(module.relative_to(ROOT))
        for package in ("hvucontracts", "hvuaudit", "trainer", "hvueval", "hvudemo")
        for module in (ROOT / package).glob("*.py")
        if module.name not in ("__init__.py", "__main__.py") and module.name not in layout
    ]
    assert not missing, f"docs/development.md (Layout) does not name {missing}"
