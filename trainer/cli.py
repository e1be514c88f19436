"""Click commands of the trainer, loaded lazily by ``hvuaudit`` (see hvuaudit/cli.py).

They stay thin: parse options, call one function of the trainer package, print.
Errors raised as :class:`trainer.errors.TrainerError` carry an ``exit_code`` that
the ``hvuaudit`` group turns into ``error: ...`` on stderr and that exit status.
"""

from __future__ import annotations

import click

# --- train / eval commands (trainer engine) ---


@click.command()
def train() -> None:
    """Not built yet."""
    raise click.ClickException("train is not available yet")


@click.command("eval")
def eval_command() -> None:
    """Not built yet."""
    raise click.ClickException("eval is not available yet")


# --- end train / eval commands ---

# --- dcorr / report commands (evaluator) ---


@click.command()
def dcorr() -> None:
    """Not built yet."""
    raise click.ClickException("dcorr is not available yet")


@click.command()
def report() -> None:
    """Not built yet."""
    raise click.ClickException("report is not available yet")


# --- end dcorr / report commands ---
