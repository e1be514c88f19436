"""``python -m trainer train|tune|eval|report|dcorr|plot|explain``: the commands of ``hvuaudit``.

For environments without the ``hvuaudit`` entry point (a training node, ``torchrun
-m trainer``). Errors of the trainer family become ``error: ...`` on stderr and
their exit code, as under ``hvuaudit`` (under torchrun, printed by rank 0 only).
Never imports ``hvuaudit``; the evaluator's commands come from ``hvueval.cli``.
"""

from __future__ import annotations

import click

from hvucontracts.cli import ErrorHandlingGroup, protect_outputs
from hvueval.cli import dcorr, eval_command, explain, plot, report
from trainer.cli import train, tune


@click.group(cls=ErrorHandlingGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train and evaluate AMT models from a split folder (see docs/trainer.md)."""


for command in (train, tune, eval_command, report, dcorr, plot, explain):
    main.add_command(command)
protect_outputs(main)

if __name__ == "__main__":
    main(prog_name="python -m trainer")
