#!/usr/bin/env python
"""Write docs/findings.md (and its figures, and README's findings section) from a study directory.

    python scripts/findings.py studies/cpu-study [--output docs/findings.md] [--figures docs/findings]
        [--readme README.md] [--resamples 10000]

Every number comes from the study's files (polyret.report.findings); run it again after `polyret compare` adds runs.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from polyret.errors import PolyretError
from polyret.report.findings import write_findings
from polyret.report.significance import Correction

USER_ERROR = 2


def findings(
    study_dir: Annotated[Path, typer.Argument(help="A study directory written by `polyret compare`.")],
    output: Annotated[Path, typer.Option(help="The Markdown document to write.")] = Path("docs/findings.md"),
    figures: Annotated[
        Path | None, typer.Option(help="Folder of its figures and CSVs (default: OUTPUT's stem).")
    ] = None,
    readme: Annotated[Path | None, typer.Option(help="Also rewrite this README's findings section.")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap and randomisation-test resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    correction: Annotated[Correction, typer.Option(help="Multiple-comparison correction.")] = "holm",
) -> None:
    """Write the findings document of STUDY_DIR."""
    options = {"--output": output, "--figures": figures, "--readme": readme}
    given = [str(part) for name, value in options.items() if value is not None for part in (name, value)]
    command = shlex.join(["python", "scripts/findings.py", str(study_dir), *given])
    try:
        files = write_findings(
            study_dir, output, figures, readme, n_resamples=resamples, seed=seed, correction=correction, command=command
        )
    except PolyretError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(USER_ERROR) from None
    extra = f" and {files.readme}" if files.readme else ""
    typer.echo(f"findings: {files.markdown} ({len(files.figures) // 2} figures){extra}")


if __name__ == "__main__":
    typer.run(findings)
