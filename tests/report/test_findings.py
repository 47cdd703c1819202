"""docs/findings.md from a study directory (polyret.report.findings, scripts/findings.py): every number read back."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.synthetic_study import STUDY_YAML, CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret.errors import ConfigError
from polyret.io import read_json, write_json
from polyret.report import published as pub
from polyret.report.claims import evaluate_claims
from polyret.report.findings import (
    END,
    START,
    beside_criss,
    beside_the_paper,
    readme_section,
    replace_section,
    write_findings,
)
from polyret.report.tables import group_stat, load_study, order_languages
from polyret.study.runner import run_study

ROOT = Path(__file__).resolve().parents[2]
RESAMPLES = 300
README = """\
# tool

Intro.

## Set-up

```bash
make demo
make test
```

## Using it

Text that must stay as it is.
"""


def _three_seed_config(root: Path) -> Path:
    """The synthetic study with 3 seeds and a CRISS-style arm: every claim can be tested."""
    corpus = root / "corpus.txt"
    corpus.write_text("a b c\nd e f\n", encoding="utf-8")
    criss = f"  - {{{{method: criss-contrastive, settings: {{{{corpora: {{{{sw: {corpus}, en: {corpus}}}}}}}}}}}}}\n"
    text = STUDY_YAML.replace("seeds: [0, 1]", "seeds: [0, 1, 2]").replace("  - xy\n", "  - xy\n" + criss)
    return write_study_config(root / "study.yaml", text=text)


def _run(config: Path, study_dir: Path, only: list[str] | None = None) -> Path:
    calls = CallLog(study_dir.parent / "calls.jsonl")
    run_study(
        config, study_dir, only=only, trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )
    return study_dir


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("findings")
    return _run(_three_seed_config(root), root / "study")


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same study with 3 of its runs finished."""
    root = tmp_path_factory.mktemp("partial")
    return _run(
        _three_seed_config(root), root / "study", only=["tiny__zero-shot", "tiny__mono__s0", "tiny__hybrid-a0.5__s0"]
    )


@pytest.fixture(scope="module")
def findings(study: Path, tmp_path_factory: pytest.TempPathFactory):
    docs = tmp_path_factory.mktemp("repo") / "docs"
    (docs.parent / "README.md").write_text(README, encoding="utf-8")
    files = write_findings(study, docs / "findings.md", readme=docs.parent / "README.md", n_resamples=RESAMPLES)
    return files, files.markdown.read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _tables(section: str) -> list[list[list[str]]]:
    """Each Markdown table of a section as rows of cells (the header first)."""
    tables, rows = [], []
    for line in [*section.splitlines(), ""]:
        if line.startswith("|---"):
            continue
        if line.startswith("| "):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append([re.sub(r"^\*\*(.*)\*\*$", r"\1", cell) for cell in cells])  # group rows are bold
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def test_the_claims_table_carries_the_verdicts_of_claims_json(findings, study: Path):
    _, text = findings
    assert text.splitlines()[0] == "# What polyret found: the synthetic study"
    runs = len(load_study(study).runs)
    assert f"**Status:** all {runs} runs of the study are finished" in text.split("\n## ", 1)[0]
    claims = evaluate_claims(load_study(study), n_resamples=RESAMPLES).to_json()  # what claims.json holds
    header, *rows = _tables(_section(text, "Claims"))[0]
    assert header[0] == "claim" and "verdict" in header
    verdict = header.index("verdict")
    assert [(row[0].split()[0], row[verdict]) for row in rows] == [
        (row["claim"], row["verdict_text"]) for row in claims["rows"]
    ]
    supports = {claim["id"]: claim["support"] for claim in claims["claims"]}
    assert all(row[0] == f"{row[0].split()[0]} ({supports[row[0].split()[0]]})" for row in rows)
    assert "**C1** (hybrid ≥ X-X-mono and X-Y on Mul. mAP) is **supported**" in _section(text, "Claims")


def test_low_resource_tables_have_one_row_per_language_low_resource_first(findings, study: Path):
    _, text = findings
    tatoeba, udhr = _tables(_section(text, "Low-resource languages, one row per language"))
    arms = [
        f"tiny / {label}" for label in ("zero-shot", "mono", "xy", "criss-contrastive", "hybrid-a0.25", "hybrid-a0.5")
    ]
    for table in (tatoeba, udhr):
        assert table[0] == ["language", "name", "CC-100", *arms]
    languages = [row[0] for row in tatoeba[1:]]
    assert languages == [
        "jv † *",
        "sw † *",
        "kk † *",
        "mean, low-resource (3)",
        "el *",
        "fr *",
        "de",
        "mean, other (3)",
    ]
    low, other = order_languages(load_study(study).results_for(("tiny", "zero-shot"), "udhr")[0].languages)
    assert [row[0].split()[0] for row in udhr[1:]] == [*low, "mean,", *other, "mean,"]
    # cells are the seed means of the study's per-language values, marked where the tests say so
    sw = next(row for row in tatoeba if row[0] == "sw † *")
    hybrid = load_study(study).results_for(("tiny", "hybrid-a0.5"), "tatoeba")
    mean = sum(r.languages["sw"]["xx2en.accuracy"] for r in hybrid) / 3
    assert sw[-1].startswith(f"{mean:.1f} ± ") and "(n=3)" in sw[-1]


def test_rank_distance_has_a_row_per_query_language_and_a_column_per_arm(findings, study: Path):
    _, text = findings
    (table,) = _tables(_section(text, "Rank distance per query language"))
    assert len(table[0]) == 3 + 6
    loaded = load_study(study)
    languages = [code.split("-")[0] for code in loaded.results_for(("tiny", "mono"), "xquad-r")[0].languages]
    assert sorted(row[0].split()[0] for row in table[1:] if not row[0].startswith("mean")) == sorted(languages)
    zero = next(r for r in loaded.results_for(("tiny", "zero-shot"), "xquad-r"))
    de = next(row for row in table if row[0].split()[0] == "de")
    assert de[3] == f"{zero.languages['de']['mul.rank_distance']:.1f}"


def test_figures_are_copied_beside_the_document_and_linked_relatively(findings):
    files, text = findings
    docs = files.markdown.parent
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert links and all((docs / link).is_file() for link in links)
    assert all(link.startswith("findings/") for link in links)
    names = {Path(link).name for link in links}
    assert {"xquad-r_alpha_sweep.png", "tatoeba_per_language.png", "xquad-r_rank_distance.png"} <= names
    assert {path.name for path in files.figures} >= names


def test_the_best_arm_sits_beside_the_papers_hybrid_numbers(findings, study: Path):
    _, text = findings
    section = _section(text, "Beside arXiv 2408.10536")
    numbers, settings = _tables(section)
    loaded = load_study(study)
    trained = [key for key in loaded.keys("xquad-r") if loaded.trained(key)]
    best = max(trained, key=lambda key: group_stat(loaded, key, "xquad-r", "mul.map").mean)
    mul_map = group_stat(loaded, best, "xquad-r", "mul.map").mean
    rank = group_stat(loaded, best, "xquad-r", "mul.rank_distance").mean
    assert numbers[1] == [f"this study: tiny / {best[1]} (3 seeds)", f"{mul_map:.1f}", f"{rank:.1f}"]
    references = pub.headline_references()
    assert [(ref.backbone, ref.method) for ref in references] == [("XLM-R", "hybrid"), ("LaBSE", "hybrid")]
    assert [row[1:] for row in numbers[2:]] == [["59.3", "286.6"], ["68.2", "221.1"]]  # PROTOCOLS §5.1
    assert [row[0] for row in settings[1:]] == list(pub.PAPER_SETUP)
    steps = dict((row[0], row[1]) for row in settings[1:])
    assert steps["seeds"] == "3" and steps["steps × batch"].startswith("3 × 4")
    assert "backbone differs (tiny-model vs XLM-R)" in section


def test_readme_section_is_replaced_between_markers_and_nothing_else_changes(findings, partial: Path):
    files, _ = findings
    readme = files.readme.read_text(encoding="utf-8")
    before, after = README.split("## Using it")
    assert readme.startswith(before + START + "\n## What polyret found\n")
    assert readme.endswith(END + "\n\n## Using it" + after)
    assert "[docs/findings.md](docs/findings.md)" in readme
    rows = _tables(readme.split(START)[1])[0]
    assert {row[0] for row in rows[1:]} == {"C1 (supported)"} and len(rows) == 1 + 4  # 2 hybrids x (mono, xy)
    # from a partial study: only the marked part changes, and doing it again changes nothing
    study = load_study(partial)
    section = readme_section(study, evaluate_claims(study, n_resamples=RESAMPLES), "docs/findings.md")
    once = replace_section(readme, section)
    assert replace_section(once, section) == once != readme
    assert once.split(START)[0] == readme.split(START)[0] and once.split(END)[1] == readme.split(END)[1]
    assert f"The synthetic study (3 of {len(study.runs)} runs finished)" in once.split(START)[1]


def test_the_repository_readme_keeps_its_two_set_up_commands(findings):
    files, _ = findings
    section = files.readme.read_text(encoding="utf-8").split(START)[1].split(END)[0].strip("\n")
    original = (ROOT / "README.md").read_text(encoding="utf-8")
    text = replace_section(original, section)
    fences = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert fences == re.findall(r"```bash\n(.*?)```", original, flags=re.S)
    assert re.findall(r"^make \w+", text, flags=re.M) == re.findall(r"^make \w+", original, flags=re.M)
    if START not in original:  # inserted as a section of its own after the set-up section
        assert re.sub(re.escape(START) + ".*?" + re.escape(END) + "\n\n", "", text, flags=re.S) == original


def test_a_partial_study_says_so_at_the_top(partial: Path, tmp_path: Path):
    text = write_findings(partial, tmp_path / "docs" / "findings.md", n_resamples=RESAMPLES).markdown.read_text()
    top = text.split("\n## ", 1)[0]
    assert f"**Status: partial study.** 3 of {len(load_study(partial).runs)} runs are finished" in top
    header, *rows = _tables(_section(text, "Claims"))[0]
    verdicts = {row[header.index("verdict")] for row in rows}
    assert verdicts and all(v.startswith("not tested") or v.startswith("single seed") for v in verdicts)
    assert "**GPU run: none.**" in top


def test_figures_outside_the_documents_folder_are_refused(study: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="not inside"):
        write_findings(study, tmp_path / "docs" / "findings.md", tmp_path / "elsewhere", n_resamples=RESAMPLES)
    assert not (tmp_path / "docs" / "findings.md").exists()


def test_the_script_writes_the_document_and_names_a_bad_study_in_one_line(partial: Path, tmp_path: Path):
    spec = importlib.util.spec_from_file_location("findings_script", ROOT / "scripts" / "findings.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    app = __import__("typer").Typer()
    app.command()(script.findings)
    output = tmp_path / "docs" / "findings.md"
    result = CliRunner().invoke(app, [str(partial), "--output", str(output), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert output.is_file() and f"python scripts/findings.py {partial} --output {output}" in output.read_text()
    result = CliRunner().invoke(app, [str(tmp_path / "nothing"), "--output", str(output)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "study.json" in result.output


def test_without_a_trained_arm_nothing_is_set_beside_the_paper(tmp_path: Path):
    zero_shot = load_study(_run(_three_seed_config(tmp_path), tmp_path / "study", only=["tiny__zero-shot"]))
    groups = pub.our_groups(zero_shot)
    heading, words = beside_the_paper(zero_shot, groups)
    assert heading.text == "Beside arXiv 2408.10536" and "nothing to set beside" in words.text
    _, words = beside_criss(zero_shot, groups)
    assert words.text == "The study has no CRISS-style arm beside its untouched backbone on tatoeba yet."


def test_a_readme_with_one_marker_or_none_is_refused_in_one_line(study: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="but not both in order"):
        replace_section(README.replace("## Using it", f"{END}\n## Using it"), "section")
    with pytest.raises(ConfigError, match="README not found"):
        write_findings(study, tmp_path / "docs" / "findings.md", readme=tmp_path / "missing.md")
    assert not (tmp_path / "docs").exists()
    assert replace_section("# one section only\n", "section") == f"# one section only\n\n{START}\nsection\n{END}\n"


def test_the_cost_table_reads_each_arms_timings_from_its_runs(partial: Path, tmp_path: Path):
    study_dir = tmp_path / "study"
    shutil.copytree(partial, study_dir)
    meta = read_json(study_dir / "study.json")
    environment = {**meta["environment"], "cpu": "Test CPU", "cpu_count": 2}
    write_json(study_dir / "study.json", {**meta, "environment": environment})
    timings = {  # mono: 10 min, 5 of them training, 1,200 CPU seconds on 2 cores = 100 %
        "tiny__zero-shot": ("09:00", "09:06", {"seconds": 360.0, "train_seconds": 0.0, "cpu_seconds": 360.0}),
        "tiny__mono__s0": ("10:00", "10:10", {"seconds": 600.0, "train_seconds": 300.0, "cpu_seconds": 1200.0}),
        "tiny__hybrid-a0.5__s0": ("10:10", "10:40", {"seconds": 1800.0, "train_seconds": 900.0}),  # no cpu_seconds
    }
    for name, (started, finished, timing) in timings.items():
        run_dir = study_dir / "runs" / name
        info = {key: value for key, value in read_json(run_dir / "run.json").items() if key != "cpu_seconds"}
        day = "2026-01-01T{}:00+00:00"
        load = {"load_average": [3.0, 2.0, 1.0] if "hybrid" in name else [1.5, 1.0, 0.5]}
        # the hybrid run comes from before the runner recorded the machine per run
        machine = {} if "hybrid" in name else {"environment": {**info["environment"], "cpu": "CPU A"}}
        info.pop("environment", None)
        write_json(
            run_dir / "run.json",
            {**info, **timing, **load, **machine, "started": day.format(started), "finished": day.format(finished)},
        )
        marker = run_dir / "results" / "xquad-r.done.json"
        write_json(marker, {**read_json(marker), "seconds": 120.0})
        for path in (run_dir / "results").glob("*.json"):  # the hybrid run evaluated on a machine without bf16
            if not path.name.endswith(".done.json"):
                result = read_json(path)
                write_json(
                    path, {**result, "model": {**result["model"], "precision": "fp32" if "hybrid" in name else "bf16"}}
                )
    text = write_findings(study_dir, tmp_path / "docs" / "findings.md", n_resamples=RESAMPLES).markdown.read_text()
    section = _section(text, "What it cost")
    assert "Measured on CPU A (2 runs), not recorded (1 run from before the runner recorded it per run), 2 cores" in (
        section
    )
    assert (
        "took 0.8 hours of wall time in all; first start 2026-01-01 09:00 to last finish 2026-01-01 10:40 UTC"
        in section
    )
    header, *rows = _tables(section)[0]
    by_arm = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert list(by_arm) == ["tiny / zero-shot", "tiny / mono", "tiny / hybrid-a0.5"]
    mono, hybrid, zero_shot = by_arm["tiny / mono"], by_arm["tiny / hybrid-a0.5"], by_arm["tiny / zero-shot"]
    assert (mono["runs"], mono["train (min)"], mono["xquad-r (min)"], mono["run (min)"]) == ("1", "5.0", "2.0", "10.0")
    assert (mono["CPU use"], mono["load"]) == ("100 %", "1.5")
    assert (mono["precision"], hybrid["precision"], zero_shot["precision"]) == ("bf16", "fp32", "bf16")
    assert (hybrid["run (min)"], hybrid["CPU use"], hybrid["load"]) == ("30.0", "—", "3.0")
    assert (zero_shot["train (min)"], zero_shot["run (min)"], zero_shot["CPU use"]) == ("0.0", "6.0", "50 %")


def test_crisss_claim_sits_beside_what_each_arm_does_to_the_untouched_backbone(findings, study: Path):
    _, text = findings
    section = _section(text, "Beside CRISS (arXiv 2006.09526)")
    header, *rows = _tables(section)[0]
    loaded = load_study(study)
    low, other = order_languages(loaded.results_for(("tiny", "zero-shot"), "tatoeba")[0].languages)

    def group_mean(label: str, languages: list[str]) -> float:
        """Each language's mean over seeds, then the mean over languages (computed here from the result files)."""
        results = loaded.results_for(("tiny", label), "tatoeba")
        per_language = [sum(r.languages[c]["mean.accuracy"] for r in results) / len(results) for c in languages]
        return sum(per_language) / len(per_language)

    by_arm = {row[0]: row for row in rows}
    assert list(by_arm) == [f"{backbone} / {label}" for backbone, label in loaded.groups]
    for label in ("mono", "criss-contrastive", "hybrid-a0.5"):
        expected_low = group_mean(label, low) - group_mean("zero-shot", low)
        expected_other = group_mean(label, other) - group_mean("zero-shot", other)
        assert by_arm[f"tiny / {label}"][1:] == [
            f"{group_mean(label, low):.1f}",
            f"{expected_low:+.1f}",
            f"{group_mean(label, other):.1f}",
            f"{expected_other:+.1f}",
        ]
    assert by_arm["tiny / zero-shot"][2] == "—" and header[1] == f"mean.accuracy, low-resource ({len(low)})"
    shift = group_mean("criss-contrastive", low) - group_mean("zero-shot", low)
    assert f"tiny / criss-contrastive moves the low-resource mean by {shift:+.1f} points" in section
    assert "89.0 on CRISS-16 with mBART-cc25 after 3 iterations" in section
