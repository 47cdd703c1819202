from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.synthetic_study import STUDY_YAML, CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret.errors import DataError
from polyret.eval.model_card import END, START, write_model_card
from polyret.eval.results import MainScore, TaskResult
from polyret.report import published as pub
from polyret.report.render import write_report
from polyret.report.tables import Stat, load_study, paired_sample
from polyret.study.runner import run_study
from polyret.train.methods import get_method

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    config = write_study_config(root / "study.yaml")
    calls = CallLog(root / "calls.jsonl")
    status = run_study(
        config,
        root / "study",
        trainer=FakeTrainer(calls),
        evaluator=FakeEvaluator(calls),
        show_progress=False,
        command="polyret compare study.yaml --study-dir study",
    )
    assert status.ok
    return root / "study"


@pytest.fixture(scope="module")
def report(synthetic_study: Path):
    return write_report(synthetic_study, n_resamples=2000)


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_report_files(report, synthetic_study: Path):
    assert report.markdown == synthetic_study / "report.md" and report.html.is_file()
    names = {path.name for path in report.figures}
    for stem in (
        "xquad-r_per_language",
        "xquad-r_rank_distance",
        "xquad-r_alpha_sweep",
        "tatoeba_per_language",
        "tatoeba_vs_cc100",
        "udhr_per_language",
    ):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    for path in report.figures:
        assert path.stat().st_size > 1000
    assert report.figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_content(report):
    text = report.markdown.read_text(encoding="utf-8")
    assert "Embedded demo data" in text  # the banner
    headline = _table_rows(_section(text, "Headline results").split("### tatoeba")[0])
    assert headline[0][:3] == ["backbone", "method", "mul.map"] and "mul.rank_distance ↓" in headline[0]
    mono = next(row for row in headline if row[1] == "mono")
    assert re.fullmatch(r"\d+\.\d ± \d+\.\d \(n=2\)", mono[2])  # mean ± std over the two seeds
    # per-language tables: low-resource languages first and marked, unseen languages marked
    tatoeba = _section(text, "Per-language results").split("### tatoeba")[1].split("###")[0]
    rows = _table_rows(tatoeba)
    assert [row[0] for row in rows[1:4]] == ["jv † *", "sw † *", "kk † *"]  # by CC-100 size
    assert rows[4][0] == "**mean, low-resource (3)**"
    assert rows[7][0] == "de"  # seen in training: no mark
    # provenance
    produced = _section(text, "How this was produced")
    assert "polyret compare study.yaml --study-dir study" in produced and "polyret report" in produced
    assert "sentence-transformers" in produced and "demo_data: true" in produced


def test_runs_table_shows_the_kept_step_and_the_selection_rule(report):
    runs = _section(report.markdown.read_text(encoding="utf-8"), "Runs")
    rows = {row[0]: row for row in _table_rows(runs)}
    assert rows["run"][4] == "kept step"
    assert rows["tiny__mono__s0"][4] == "3" and rows["tiny__zero-shot"][4] == "—"
    assert "lowest loss on one shared validation set (en pairs, 5% of the training items held out" in runs


def test_two_seeds_are_not_tested(report):
    """Two seeds per trained arm (PROTOCOLS §7.2 asks for 3): every trained comparison says so, none is called."""
    text = report.markdown.read_text(encoding="utf-8")
    section = _section(text, "Significance against zero-shot")
    assert "Holm–Bonferroni" in section and "within each task" in section
    header, *rows = _table_rows(section)
    assert header[-5:] == ["Δ (± seed sd)", "95% CI", "p", "p (holm)", "verdict"]
    # every (method, metric) of the PROTOCOLS §7.3 families: 4 methods x (4 LAReQA + 2 Tatoeba + 2 UDHR metrics)
    assert len(rows) == 4 * 8
    assert {row[3] for row in rows if row[0] == "tatoeba"} == {"xx2en.accuracy", "en2xx.accuracy"}
    for row in rows:
        assert row[5] == "2 vs 1" and row[-1] == "single seed: not tested" and row[-2] == "—"
        assert re.fullmatch(r"[+-]\d+\.\d\d \(± \d+\.\d\d\)", row[8])  # Δ with its seed-to-seed spread
    claims = json.loads(report.claims.read_text(encoding="utf-8"))
    assert [claim["id"] for claim in claims["claims"]] == ["C1", "C2", "C3", "C4", "C5"]
    c1 = [row for row in claims["rows"] if row["claim"] == "C1"]
    assert c1 and all(row["verdict_text"] == "single seed: not tested" for row in c1)
    assert claims["claims"][0]["support"] == "not tested"


def test_report_opens_with_the_claims_table(report):
    text = report.markdown.read_text(encoding="utf-8")
    assert re.findall(r"^## .*$", text, flags=re.M)[0] == "## Claims"
    header, *rows = _table_rows(_section(text, "Claims"))
    assert header[:4] == ["claim", "task", "metric", "comparison"] and header[-3:] == ["seeds", "verdict", "why"]
    assert {row[0].split()[0] for row in rows} == {"C1", "C2", "C3", "C4", "C5"}
    html = report.html.read_text(encoding="utf-8")
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html)[0] == "Claims"


def test_paired_sample_keeps_seeds_and_items(synthetic_study: Path):
    study = load_study(synthetic_study)
    sample = paired_sample(study, ("tiny", "mono"), ("tiny", "zero-shot"), "tatoeba", "xx2en.accuracy")
    assert sample is not None and sample.a.values.shape == (2, 6 * 40) and sample.b.values.shape == (1, 6 * 40)
    assert set(np.unique(sample.b.values)) <= {0.0, 100.0}  # hits scaled to the result's x100 scale
    assert len(set(sample.items.tolist())) == 6 * 40  # one item per sentence pair of a language
    assert set(sample.strata.tolist()) == {"sw", "kk", "jv", "de", "fr", "el"}


def test_html_is_self_contained(report):
    html = report.html.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)
    assert html.count("<figure") == len(report.figures) // 2
    assert 'class="banner warning"' in html
    assert '<tr class="low">' in html


def test_stale_and_missing_results_are_reported(synthetic_study: Path, tmp_path: Path):
    copy = tmp_path / "study"
    shutil.copytree(synthetic_study, copy)
    (copy / "runs" / "tiny__xy__s1" / "done.json").unlink()
    (copy / "runs" / "tiny__xy__s1" / "results" / "udhr.done.json").write_text('{"fingerprint": "old"}')
    study = load_study(copy)
    xy1 = next(run for run in study.runs if run.name == "tiny__xy__s1")
    assert not xy1.done and set(xy1.results) == {"xquad-r", "tatoeba"}  # the stale UDHR result is ignored
    files = write_report(copy, n_resamples=500, figures=False)
    text = files.markdown.read_text(encoding="utf-8")
    assert "1 of 9 runs are not finished (tiny__xy__s1)" in text


def test_stand_in_banner(synthetic_study: Path, tmp_path: Path):
    """A result whose encoder records ``stand_in: true`` brings its method's banner (the registry's text)."""
    root = tmp_path
    text = STUDY_YAML.replace("  - xy\n", "  - xy\n  - {{method: criss, settings: {{tatoeba: {{languages: [de]}}}}}}\n")
    config = write_study_config(root / "study.yaml", text=text)
    calls = CallLog(root / "calls.jsonl")
    model_info = {"name": "standin", "label": "stand-in, not comparable with CRISS", "stand_in": True}
    run_study(
        config,
        root / "s",
        only=["tiny__zero-shot", "tiny__criss__s0"],
        trainer=FakeTrainer(calls),
        evaluator=FakeEvaluator(calls, model_info=model_info),
        show_progress=False,
    )
    report = write_report(root / "s", n_resamples=200, figures=False).markdown.read_text(encoding="utf-8")
    assert f"> **WARNING:** {get_method('criss').stand_in_banner}" in report
    # the same words in a free-text field are not the typed flag
    model_info.pop("stand_in")
    run_study(
        config,
        root / "t",
        only=["tiny__criss__s0"],
        trainer=FakeTrainer(calls),
        evaluator=FakeEvaluator(calls, model_info=model_info),
        show_progress=False,
    )
    report = write_report(root / "t", n_resamples=200, figures=False).markdown.read_text(encoding="utf-8")
    assert "CRISS stand-in" not in report


def test_published_comparison_recomputes_on_shared_languages():
    languages = {"sw": {"xx2en.accuracy": 70.0}, "kk": {"xx2en.accuracy": 80.0}, "de": {"xx2en.accuracy": 90.0}}
    group = pub.OurGroup(
        backbone="e5-small",
        model="multilingual-e5-small",
        label="zero-shot",
        method="zero-shot",
        alpha=None,
        overall={"xx2en.accuracy": 80.0},
        per_language=languages,
        task_config={"languages": ["sw", "kk", "de"], "max_sentences": None},
    )
    rows = pub.comparison_rows(["tatoeba"], {"tatoeba": [group]})
    e5 = next(r for r in rows if r.reference.backbone == "multilingual-e5-small")
    # PROTOCOLS §5.3: sw 75.9, kk 83.8, de 98.0 -> mean 85.9, against ours on the same three
    assert e5.published["xx2en.accuracy"] == pytest.approx((75.9 + 83.8 + 98.0) / 3)
    assert e5.ours == {"xx2en.accuracy": pytest.approx(80.0)}
    assert e5.basis.startswith("the 3 languages both have")
    assert any("4-bit" in note for note in e5.differences) and not any("subset" in n for n in e5.differences)
    assert "§5.3" in e5.reference.cite
    labse = next(r for r in rows if r.reference.backbone == "LaBSE")
    assert "backbone differs (multilingual-e5-small vs LaBSE)" in labse.differences
    criss = next(r for r in rows if r.reference.method == "criss")
    assert criss.ours is None and criss.differences == ["not run"]


def test_a_derived_published_number_is_never_comparable():
    """PROTOCOLS §6.5: CRISS's 89.0 is derived (its abstract gives "+21.5" only), so never "comparable"."""
    group = pub.OurGroup(
        backbone="mbart",
        model="facebook/mbart-large-cc25",
        label="criss",
        method="criss",
        alpha=None,
        overall={"mean.accuracy": 88.0},
        per_language={"de": {"mean.accuracy": 88.0}},
        task_config={"languages": ["de"]},
        trained_on="pairs it mines",
    )
    criss = next(r for r in pub.comparison_rows(["tatoeba"], {"tatoeba": [group]}) if r.reference.method == "criss")
    assert criss.reference.derived and not criss.comparable
    assert "derived by us, not printed by the source: never comparable" in criss.differences


def test_published_values_are_on_polyrets_scale():
    xquad = [r for r in pub.REFERENCES if r.task == "xquad-r" and r.section == "§5.1" and r.metrics]
    hybrid_labse = next(r for r in xquad if r.backbone == "LaBSE" and r.method == "hybrid")
    assert hybrid_labse.metrics["mul.map"] == pytest.approx(68.17)
    assert hybrid_labse.metrics["mul.rank_distance"] == pytest.approx(221.1)
    e5 = next(r for r in pub.REFERENCES if r.task == "tatoeba" and r.backbone == "multilingual-e5-small")
    assert len(e5.per_language) == 36
    assert np.mean([v["xx2en.accuracy"] for v in e5.per_language.values()]) == pytest.approx(86.86, abs=0.01)
    assert pub.backbone_family("FacebookAI/xlm-roberta-large") == "XLM-R-large"
    assert pub.backbone_family("sentence-transformers/LaBSE") == "LaBSE"


def test_model_card(tmp_path: Path):
    result = TaskResult(
        task="tatoeba",
        main_score=MainScore(metric="xx2en.accuracy", value=81.5),
        languages={"sw": {"xx2en.accuracy": 70.0}, "de": {"xx2en.accuracy": 93.0}},
        aggregates={
            "all": {"xx2en.accuracy": 81.5},
            "low-resource": {"xx2en.accuracy": 70.0},
            "other": {"xx2en.accuracy": 93.0},
        },
        config={"max_sentences": 100},
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    card = write_model_card(bare, [result], run_name="e5__mono__s0")
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\nlibrary_name: sentence-transformers") and "- sw" in text
    assert "| tatoeba | xx2en.accuracy | 81.50 | 70.00 | 93.00 |" in text
    # an existing sentence-transformers card keeps its text; a second call replaces our section
    st_dir = tmp_path / "st"
    st_dir.mkdir()
    (st_dir / "README.md").write_text("---\ntags: [x]\n---\n# SentenceTransformer\n\nUsage...\n", encoding="utf-8")
    write_model_card(st_dir, [result])
    updated = result.model_copy(update={"main_score": MainScore(metric="xx2en.accuracy", value=90.0)})
    text = write_model_card(st_dir, [updated]).read_text(encoding="utf-8")
    assert text.startswith("---\ntags: [x]\n---\n# SentenceTransformer\n\nUsage...")
    assert text.count(START) == 1 and text.count(END) == 1
    assert "| tatoeba | xx2en.accuracy | 90.00 |" in text and "| tatoeba | xx2en.accuracy | 81.50 |" not in text


def test_trained_runs_get_a_model_card(synthetic_study: Path):
    card = synthetic_study / "runs" / "tiny__mono__s0" / "train" / "model" / "README.md"
    assert "## polyret evaluation" in card.read_text(encoding="utf-8")


def test_report_cli(synthetic_study: Path, tmp_path: Path):
    from polyret.cli import app

    copy = tmp_path / "study"
    shutil.copytree(synthetic_study, copy)
    result = CliRunner().invoke(app, ["report", str(copy), "--resamples", "300", "--correction", "bh", "--no-figures"])
    assert result.exit_code == 0, result.output
    assert "Benjamini–Hochberg" in (copy / "report.md").read_text(encoding="utf-8")
    with pytest.raises(DataError, match="not a study directory"):
        load_study(tmp_path)


def test_stat_format():
    assert Stat.of([1.0, 2.0, 3.0]).format() == "2.0 ± 1.0"
    assert Stat.of([5.0]).format() == "5.0" and Stat.of([float("nan")]) is None


@pytest.mark.slow
def test_html_renders_in_headless_chromium(report, tmp_path: Path):
    """The screenshot script renders the report; the picture is not blank (skips without Chromium)."""
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("chromium not installed (apt-get update && apt-get install -y chromium)")
    shot = tmp_path / "report.png"
    completed = subprocess.run(
        [str(ROOT / "scripts" / "screenshot_report.sh"), str(report.html), str(shot), "1200x3000"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert image.shape == (3000, 1200)
    assert image.std() > 20  # text, tables and figures, not a blank page
    # the top rows hold the title: dark pixels on white
    assert (image[:200] < 100).mean() > 0.001


def test_language_info_names_udhr_versions_and_accepts_every_key_scheme() -> None:
    from polyret.report.tables import language_info

    assert language_info("sw-Latn-x-062").name == "Swahili (Chimwiini)"
    assert language_info("062").name == "Swahili (Chimwiini)"
    assert language_info("sw-Latn").name == language_info("sw").name == "Swahili"
    assert language_info("sw-Latn").low_resource and language_info("sw-Latn").bucket == "low"


def test_three_seed_study_opens_with_tested_claims(tmp_path: Path):
    """3 seeds per trained arm and a CRISS-style arm: every claim is tested, claims.json carries the verdicts."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\nd e f\n", encoding="utf-8")
    criss = f"  - {{{{method: criss-contrastive, settings: {{{{corpora: {{{{sw: {corpus}, en: {corpus}}}}}}}}}}}}}\n"
    text = STUDY_YAML.replace("seeds: [0, 1]", "seeds: [0, 1, 2]").replace("  - xy\n", "  - xy\n" + criss)
    config = write_study_config(tmp_path / "study.yaml", text=text)
    calls = CallLog(tmp_path / "calls.jsonl")
    status = run_study(
        config, tmp_path / "study", trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )
    assert status.ok
    files = write_report(tmp_path / "study", n_resamples=1000, figures=False)
    text = files.markdown.read_text(encoding="utf-8")
    assert re.findall(r"^## .*$", text, flags=re.M)[0] == "## Claims"
    claims = json.loads(files.claims.read_text(encoding="utf-8"))
    support = {claim["id"]: claim["support"] for claim in claims["claims"]}
    assert list(support) == ["C1", "C2", "C3", "C4", "C5"]
    assert support["C1"] == "supported" and support["C4"] == "answered"  # the synthetic hybrid effect is large
    for row in claims["rows"]:
        assert row["verdict"] in ("better", "worse", "matches", "no significant difference")
        assert row["seeds"][0] == 3 and row["p_corrected"] is not None and row["seed_spread"] is not None
    # the paragraph in words follows from the rows
    words = next(line for line in _section(text, "Claims").splitlines() if line.startswith("**C1**"))
    assert words.startswith("**C1** (hybrid ≥ X-X-mono and X-Y on Mul. mAP) is **supported**:")
    assert "hybrid-a0.5's mul.map on xquad-r (all items) is significantly better than mono's (Δ +" in words
    # the significance table tests every trained arm now
    rows = _table_rows(_section(text, "Significance against zero-shot"))[1:]
    assert {row[5] for row in rows} == {"3 vs 1"} and not any("not tested" in row[-1] for row in rows)


def test_forest_rows_put_the_low_resource_group_first(synthetic_study: Path):
    from polyret.report.comparisons import PairedTests
    from polyret.report.sections import forest_series

    study = load_study(synthetic_study)
    tests = PairedTests(300, 0, "holm")
    rows, series = forest_series(study, tests, "tatoeba", "xx2en.accuracy")
    assert [row.label for row in rows] == ["low-resource (3, macro)", "jv", "sw", "kk", "el", "fr", "de"]
    assert rows[0].group and all(row.low_resource for row in rows[:4]) and not any(r.low_resource for r in rows[4:])
    assert list(series) == ["tiny / mono", "tiny / xy", "tiny / hybrid-a0.25", "tiny / hybrid-a0.5"]  # not the ref
    mono = series["tiny / mono"]
    # the group's row is the macro mean: each language weighs the same
    assert mono["low-resource (3, macro)"][0] == pytest.approx(np.mean([mono[code][0] for code in ("jv", "sw", "kk")]))
    for diff, low, high, tested in mono.values():
        assert low <= diff <= high and tested is False  # two seeds: drawn hollow, not a verdict


def _small_study_report(
    tmp_path: Path, only: list[str], text: str = STUDY_YAML, evaluator_class: type[FakeEvaluator] = FakeEvaluator
) -> tuple[str, list[list[str]]]:
    """Run ``only`` of the synthetic study ``text`` with the fakes and writes its report: its markdown and the rows
    of its significance table."""
    calls = CallLog(tmp_path / "calls.jsonl")
    config = write_study_config(tmp_path / "study.yaml", text=text)
    evaluator = evaluator_class(calls)
    run_study(config, tmp_path / "s", only=only, trainer=FakeTrainer(calls), evaluator=evaluator, show_progress=False)
    report = write_report(tmp_path / "s", n_resamples=200, figures=False).markdown.read_text(encoding="utf-8")
    return report, _table_rows(_section(report, "Significance against zero-shot"))


class PromptChangingEvaluator(FakeEvaluator):
    """As if one arm's training had saved other prompts: its results record another query prefix."""

    def __call__(self, model, tasks, output_dir, options):
        prefix = "query: " if "__mono__" in str(output_dir) else "Query: "
        self.model_info = {"name": "tiny", "query_prefix": prefix, "passage_prefix": "passage: "}
        return super().__call__(model, tasks, output_dir, options)


def test_an_arm_with_other_saved_prompts_gets_no_verdict(tmp_path: Path):
    """PROTOCOLS §6.1: the prefix alone moves LAReQA's mAP by more than the paper's gains."""
    from polyret.report.comparability import settings_differences

    only = ["tiny__zero-shot", "tiny__mono__s0", "tiny__xy__s0"]
    report, rows = _small_study_report(tmp_path, only, evaluator_class=PromptChangingEvaluator)
    tested = {(row[0], row[1]) for row in rows[1:]}
    assert ("xquad-r", "tiny / xy") in tested and ("xquad-r", "tiny / mono") not in tested
    assert "xquad-r: tiny / mono vs tiny / zero-shot (not comparable: query_prefix)" in report
    study = load_study(tmp_path / "s")
    mono, zero = (study.results_for(("tiny", label), "tatoeba")[0] for label in ("mono", "zero-shot"))
    assert settings_differences(mono, zero) == ["query_prefix"] and settings_differences(zero, zero) == []


def test_results_of_a_run_that_mined_the_task_get_no_verdict(tmp_path: Path):
    """PROTOCOLS §6.3: mining Tatoeba's sentences makes the run's Tatoeba results transductive."""
    text = STUDY_YAML.replace(
        "  - xy\n", "  - xy\n  - {{method: criss-contrastive, settings: {{tatoeba: {{languages: [de]}}}}}}\n"
    )
    report, rows = _small_study_report(tmp_path, ["tiny__zero-shot", "tiny__criss-contrastive__s0"], text)
    tested = {(row[0], row[1]) for row in rows[1:]}
    assert ("xquad-r", "tiny / criss-contrastive") in tested  # its text is the training set's, not XQuAD-R's
    assert ("tatoeba", "tiny / criss-contrastive") not in tested
    assert "tatoeba: tiny / criss-contrastive (transductive: tiny / criss-contrastive trained on its text)" in report
    assert "CRISS-style mining + InfoNCE, not CRISS's translation objective" in report  # its label's banner


def test_a_backbones_own_reference_keeps_verdicts_within_it(tmp_path: Path):
    text = STUDY_YAML.replace("  tiny: {model}\n", "  tiny: {{model: {model}, reference: mono}}\n")
    _, rows = _small_study_report(tmp_path, ["tiny__zero-shot", "tiny__mono__s0", "tiny__xy__s0"], text)
    assert {(row[1], row[2]) for row in rows[1:]} == {("tiny / xy", "tiny / mono"), ("tiny / zero-shot", "tiny / mono")}
