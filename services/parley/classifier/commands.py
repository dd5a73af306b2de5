"""`parley train`, `parley eval` and `parley classify`: build, measure and run the intent and topic models."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from parley.config import Settings

commands = typer.Typer(help="Train, evaluate and run the intent and topic models.", no_args_is_help=True)
console = Console()

DEFAULT_DATA = Path("../shared/data")


def _models_dir(models: Path | None) -> Path:
    return models or Settings().models_dir


@commands.command()
def train(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Folder holding the public data sets."),
    models: Path | None = typer.Option(
        None, "--models", help="Output folder (default: settings.models_dir)."
    ),
    corrections: bool = typer.Option(
        False, "--corrections", help="Add the agents' triage corrections (from REDIS_URL) as hand labels."
    ),
) -> None:
    """Build intent.skops, topic.skops, metrics.json and model_card.md from the data sets."""
    from parley.classifier.training.plots import MissingExtraError, require_extra
    from parley.classifier.training.run import train as run

    try:
        require_extra()
    except MissingExtraError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    out_dir = _models_dir(models)
    if not (out_dir / "label_mapping.yaml").is_file():
        raise typer.BadParameter(
            f"{out_dir} has no label_mapping.yaml: name the folder holding the label mapping, the team's "
            "examples and hand labels (the repository's models/ folder, or a copy of it)",
            param_hint="--models",
        )
    if not (out_dir / "static_vectors.npz").is_file():
        raise typer.BadParameter(
            f"{out_dir} has no static_vectors.npz, the bot's sentence vectors the classifier loads: copy it "
            "from the repository's models/ folder or make it with scripts/distill-vectors",
            param_hint="--models",
        )
    fixes = _load_corrections() if corrections else None
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("loading data", total=None)

        def progress(message: str) -> None:
            bar.console.log(message)
            bar.update(task, description=message)

        metrics = run(data, out_dir, progress, fixes)
    s = metrics["summary"]
    console.print(
        f"intent macro-F1 {s['macro_f1']:.3f} (model alone {s['model_macro_f1']:.3f}), "
        f"urgent recall {s['urgent_recall']:.3f}, topic macro-F1 {s['topic_macro_f1']:.3f}"
    )


def _load_corrections() -> list[dict[str, str]]:
    """Every desk correction as a hand label, read from the suite's Redis (REDIS_URL)."""
    import asyncio

    from parley.corrections import hand_labels
    from parley.store import connect, keys_for

    settings = Settings()
    if not settings.redis_url:
        raise typer.BadParameter("set REDIS_URL to the suite's Redis", param_hint="--corrections")

    async def read() -> list[dict[str, str]]:
        redis = connect(settings)
        try:
            return await hand_labels(redis, keys_for(settings))
        finally:
            await redis.aclose()

    return asyncio.run(read())


@commands.command("eval")
def eval_(
    data: Path = typer.Option(..., "--data", help="CSV with columns text,label."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    models: Path | None = typer.Option(None, "--models"),
) -> None:
    """Per-class precision/recall/F1, macro-F1 and the confusion matrix on a labelled CSV."""
    from parley.classifier.training.evaluation import evaluate

    result = evaluate(data, _models_dir(models))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"{result['rows']} messages, model {result['model_version']}")
    for col in ("intent", "precision", "recall", "F1", "support"):
        table.add_column(col)
    for label, v in result["per_class"].items():
        table.add_row(
            label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"])
        )
    table.add_row("macro", "", "", f"{result['macro_f1']:.3f}", "")
    console.print(table)
    matrix = Table(title="confusion (rows true, columns predicted)")
    matrix.add_column("")
    for label in result["labels"]:
        matrix.add_column(label)
    for label, row in zip(result["labels"], result["confusion_matrix"], strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)


@commands.command()
def classify(
    input: Path = typer.Option(..., "--input", help="CSV with a text column (id and channel optional)."),
    output: Path = typer.Option(..., "--output", help="JSON lines, one triage per row."),
    models: Path | None = typer.Option(None, "--models"),
) -> None:
    """Classify every row of a CSV."""
    from parley.classifier.csv_triage import classify_csv

    n = classify_csv(input, output, _models_dir(models))
    console.print(f"{n} messages classified → {output}")


@commands.command("classify-bench")
def classify_bench(
    models: Path | None = typer.Option(None, "--models"),
    data: Path | None = typer.Option(
        None, "--data", help="CSV with a text column (default: twcs traffic if present, else the demo)."
    ),
    messages: int = typer.Option(20_000, "--messages", help="How many messages to classify."),
    batch: int = typer.Option(1000, "--batch", help="Messages per batch (and per Classify call)."),
    rpc: bool = typer.Option(True, "--rpc/--no-rpc", help="Also measure through the Classify RPC."),
    write: bool = typer.Option(
        False, "--write", help="Save the figures to speed.json and refresh the model card."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Measure classification speed in-process and through the Classify RPC (reported, not asserted)."""
    from parley.classifier import bench
    from parley.classifier.training.card import refresh_card

    models_dir = _models_dir(models)
    speed = bench.run(
        models_dir, data, messages, batch, rpc, say=lambda m: None if as_json else console.log(m)
    )
    figures = bench.as_dict(speed)
    if write:
        (models_dir / "speed.json").write_text(json.dumps(figures, indent=2) + "\n")
        refresh_card(models_dir)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))


@commands.command("bot-eval")
def bot_eval(
    kb: Path = typer.Option(
        ..., "--kb", help="Knowledge base CSV (intent,question,answer[,topic,channels])."
    ),
    data: Path = typer.Option(..., "--data", help="CSV text,label (a KB intent, or oos)."),
    output: Path = typer.Option(..., "--output", help="JSON lines, one per test row, in order."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The bot's precision, coverage and speed on a brand's knowledge base (threshold: settings)."""
    from parley.classifier import bot_eval as run_eval
    from parley.classifier.kb_files import KnowledgeBaseError

    try:
        settings = Settings()
        summary = run_eval.run(kb, data, output, settings.bot_min_confidence, settings.models_dir)
    except KnowledgeBaseError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{summary['rows']} queries ({summary['oos']} oos), threshold {summary['threshold']}")
    for col in ("threshold", "precision", "coverage", "oos answered"):
        table.add_column(col)
    for row in summary["curve"]:
        table.add_row(
            f"{row['threshold']:.2f}",
            "" if row["precision"] is None else f"{row['precision']:.3f}",
            "" if row["coverage"] is None else f"{row['coverage']:.3f}",
            "" if row["oos_answered"] is None else f"{row['oos_answered']:.3f}",
        )
    console.print(table)
    console.print(
        f"at {summary['threshold']}: precision {summary['precision']}, coverage {summary['coverage']}, "
        f"oos answered {summary['oos_answered']}, {summary['lookups_per_second']} lookups/s"
    )
