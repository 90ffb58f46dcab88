"""Show a bench report: a Rich table, a JSON document, a Markdown table.

The table has one row per artifact, fastest first, with failed and skipped
artifacts last. Speed-up is relative to the fastest fp32 artifact that ran.
SQNR, cosine and agreement are those of the class output when the manifest
names one, otherwise of the first output.
"""

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgekit.bench import BenchReport

COLUMNS = (
    "artifact",
    "format",
    "precision",
    "size",
    "p50 ms",
    "p90 ms",
    "speed-up",
    "SQNR dB",
    "cosine",
    "agreement",
    "status",
)


def table_rows(report: BenchReport) -> list[list[str]]:
    """The table's cells as text, in display order."""
    ran = [r for r in report.results if "latency_ms" in r]
    fastest = min(
        (r["latency_ms"]["p50"] for r in ran if r["precision"] == "fp32"), default=None
    )
    ordered = sorted(report.results, key=_sort_key)
    return [_row(r, fastest, report.class_output) for r in ordered]


def _sort_key(result: dict[str, Any]) -> tuple[int, float]:
    order = {"ok": 0, "failed": 1, "skipped": 2}[result["status"]]
    p50 = result.get("latency_ms", {}).get("p50", math.inf)
    return order, p50


def _row(
    result: dict[str, Any], fastest: float | None, class_output: str | None
) -> list[str]:
    latency = result.get("latency_ms")
    parity = _headline_parity(result, class_output)
    speedup = "-"
    if latency and fastest:
        speedup = f"{fastest / latency['p50']:.2f}x"
    return [
        result["id"],
        result["format"],
        result["precision"],
        _size(result["bytes"]),
        f"{latency['p50']:.3f}" if latency else "-",
        f"{latency['p90']:.3f}" if latency else "-",
        speedup,
        _sqnr(parity),
        f"{parity['cosine']:.6f}" if parity.get("cosine") is not None else "-",
        f"{parity['agreement']:.1f}%" if parity.get("agreement") is not None else "-",
        result["status"],
    ]


def _headline_parity(
    result: dict[str, Any], class_output: str | None
) -> dict[str, Any]:
    parity = result.get("parity") or {}
    if class_output in parity:
        return parity[class_output]
    return next(iter(parity.values()), {})


def _sqnr(parity: dict[str, Any]) -> str:
    if not parity:
        return "-"
    if parity.get("identical"):
        return "inf"
    value = parity.get("sqnr_db")
    return f"{value:.1f}" if value is not None else "nan"


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**10:.1f} KiB"


def print_table(report: BenchReport, console: Console) -> None:
    """Print the Rich table, then each failure and skip on its own line."""
    table = Table(title=f"edgekit bench - {report.bundle}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in COLUMNS[:3] else "right")
    for row in table_rows(report):
        style = {"failed": "red", "skipped": "dim"}.get(row[-1])
        table.add_row(*row, style=style)
    # Piped output would otherwise be cut to 80 columns and lose the numbers.
    if not console.is_terminal:
        console.width = max(console.width, 150)
    console.print(table)

    threads = report.options.threads
    console.print(f"threads {threads}, batch 1, p50/p90 of the runtime call alone")
    for note in precision_notes(report):
        console.print(note)
    for result in report.results:
        if result["status"] == "skipped":
            console.print(f"skipped {result['file']}: {result['reason']}")
    for failure in report.failures:
        console.print(f"FAILED {failure}", style="red")


def precision_notes(report: BenchReport) -> list[str]:
    """Say where a runtime ran float math in less than float32.

    OpenVINO's CPU plugin runs the float parts of a model in bf16 where the
    CPU has it (AVX512_BF16, AMX), unless told otherwise. bench asks for f32
    only for fp32 artifacts; an int8 or fp16 IR runs as it would when
    deployed with the defaults, and its layers kept in float then run in
    bf16. The reader of the table must know that.
    """
    notes = []
    for result in report.results:
        precision = (result.get("runtime") or {}).get("inference_precision_hint")
        if precision and precision not in ("f32", "undefined"):
            notes.append(
                f"{result['id']}: OpenVINO ran its float layers in {precision}, "
                "the CPU plugin's default on this CPU"
            )
    return notes


def write_json(report: BenchReport, path: Path) -> None:
    """Write the versioned JSON document; strict JSON, no NaN or Infinity."""
    text = json.dumps(report.to_json(), indent=2, allow_nan=False, default=str)
    Path(path).write_text(text + "\n", encoding="utf-8")


def markdown(report: BenchReport) -> str:
    """The same table as GitHub Markdown, for a pull request."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| "
        + " | ".join("---" if i < 3 else "---:" for i in range(len(COLUMNS)))
        + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    cpu = report.environment.get("cpu", {})
    version = report.environment.get("edgekit")
    lines.append("")
    lines.append(
        f"{cpu.get('model', '?')}, {report.options.threads} threads, batch 1; "
        f"latency is the runtime call alone (edgekit {version})."
    )
    lines += [f"- {note}" for note in precision_notes(report)]
    lines += [f"- FAILED {f}" for f in report.failures]
    return "\n".join(lines) + "\n"
