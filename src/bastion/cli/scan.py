"""``bastion scan``: find sensitive data (and prompt injection) in text, files or JSON Lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

#: Largest single input (TEXT, --file, or one JSON Lines record), in characters.
MAX_INPUT_CHARS = 10_000_000


def _build_scanner(config: str | None) -> Any:
    from bastion.errors import ConfigError
    from bastion.protect import Scanner
    from bastion.settings import load_settings

    try:
        settings = load_settings(config) if config else None
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    from bastion.protect.config import ProtectionSettings

    return Scanner.from_settings(settings.protection if settings else ProtectionSettings())


def _injection_scorer() -> Any:
    """The prompt-injection detector, or None when that module is not part of this build."""
    from bastion.errors import ConfigError

    try:
        from bastion.protect.injection import load_default_detector
    except ImportError:
        return None
    try:
        return load_default_detector()
    except ConfigError as exc:
        # Fail closed: without its injection verdict a result line would be incomplete.
        typer.echo(f"the prompt-injection detector could not be loaded: {exc}", err=True)
        raise typer.Exit(2) from None


def _injection(detector: Any, text: str) -> dict[str, Any]:
    if detector is None:
        return {"flagged": False, "score": 0.0}
    result = detector.score(text)
    return {"flagged": bool(result.flagged), "score": round(float(result.score), 4)}


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    typer.echo(f"{path}:{lineno}: not valid JSON: {exc.msg}", err=True)
                    raise typer.Exit(2) from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    typer.echo(f"{path}:{lineno}: each line needs a string 'text'", err=True)
                    raise typer.Exit(2)
                yield lineno, row


def _scan_jsonl(scanner: Any, src: Path, dst: Path, tenant: str | None) -> int:
    detector = _injection_scorer()
    total = sum(1 for _ in _records(src))
    show_progress = sys.stderr.isatty()
    n = 0
    with dst.open("w", encoding="utf-8") as out:
        progress_cm: Any = None
        if show_progress:
            from rich.progress import Progress

            progress_cm = Progress(transient=True, console=_stderr_console())
            progress_cm.start()
            task = progress_cm.add_task("scanning", total=total)
        try:
            for _lineno, row in _records(src):
                text = row["text"][:MAX_INPUT_CHARS]
                findings = scanner.scan(text, tenant=tenant)
                record = {
                    "id": row.get("id"),
                    "entities": [
                        {"type": f.type, "start": f.start, "end": f.end, "score": f.score} for f in findings
                    ],
                    "injection": _injection(detector, text),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
                if progress_cm is not None:
                    progress_cm.update(task, advance=1)
        finally:
            if progress_cm is not None:
                progress_cm.stop()
    return n


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _print_table(text: str, findings: list[Any], injection: dict[str, Any], ner_active: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title="Sensitive data found" if findings else "No sensitive data found")
    for col in ("type", "start", "end", "score", "classes", "value", "why"):
        table.add_column(col)
    for f in findings:
        value = text[f.start : f.end]
        shown = value if len(value) <= 40 else value[:37] + "..."
        table.add_row(f.type, str(f.start), str(f.end), f"{f.score:.2f}", ",".join(f.data_classes), escape(shown),
                      escape(f.explanation))
    console.print(table)
    flag = "[red]flagged[/red]" if injection["flagged"] else "not flagged"
    console.print(f"prompt injection: {flag} (score {injection['score']:.2f})")
    if not ner_active:
        console.print("[yellow]NER model not installed: names are found by cues and a name list only[/yellow]")


def register(app: typer.Typer) -> None:
    """Add the scan command to ``app``."""

    @app.command()
    def scan(
        text: Annotated[str | None, typer.Argument(help="Text to scan.")] = None,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="Scan the contents of this file.",
                                                  exists=True, dir_okay=False)] = None,
        input: Annotated[Path | None, typer.Option("--input", "-i", help="JSON Lines of {id, text} to scan.",  # noqa: A002
                                                   exists=True, dir_okay=False)] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Results file (JSON Lines).")] = None,
        config: Annotated[str | None, typer.Option("--config", "-c", help="Configuration file.")] = None,
        tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant for custom detectors.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Find sensitive data and prompt injection; offsets are indices into the original text."""
        if input is not None:
            if output is None:
                typer.echo("--input needs --output", err=True)
                raise typer.Exit(2)
            scanner = _build_scanner(config)
            n = _scan_jsonl(scanner, input, output, tenant)
            typer.echo(f"scanned {n} records -> {output}", err=True)
            return
        if file is not None:
            body = file.read_text(encoding="utf-8", errors="replace")[:MAX_INPUT_CHARS]
        elif text is not None:
            body = text[:MAX_INPUT_CHARS]
        else:
            typer.echo("give TEXT, --file PATH or --input IN.jsonl --output OUT.jsonl", err=True)
            raise typer.Exit(2)
        scanner = _build_scanner(config)
        findings = scanner.scan(body, tenant=tenant)
        injection = _injection(_injection_scorer(), body)
        if as_json:
            typer.echo(json.dumps({
                "entities": [
                    {"type": f.type, "start": f.start, "end": f.end, "score": f.score,
                     "data_classes": list(f.data_classes), "detector": f.detector, "explanation": f.explanation}
                    for f in findings
                ],
                "injection": injection,
                "ner_active": scanner.ner_active,
                "engine": scanner.engine,
            }, ensure_ascii=False))
        else:
            _print_table(body, findings, injection, scanner.ner_active)
