"""The conformance results as a matrix (models by scenarios) for people, or as JSON.

Contract: :func:`summary` turns the runner's per-cell results into the run's record:
``passed`` (no cell failed; skipped cells do not count), ``models``, ``scenarios``,
``counts``, ``upstream``, ``cassettes`` and ``results`` (one object per cell: ``model``,
``scenario``, ``status`` pass/fail/skip, ``detail``, ``oci_error`` -- ``{status, kind,
message, opc_request_id}`` of the last OCI error of a failed cell, else null -- ``oci_requests``
and ``seconds``). :func:`to_json` prints that record; :func:`to_text` prints the matrix, then
one paragraph per failure with OCI's error, then the skipped cells.
"""

from __future__ import annotations

import json
from typing import Any

_MARK = {"pass": "ok", "fail": "FAIL", "skip": "-"}


def summary(
    results: list[dict[str, Any]],
    models: list[str],
    scenarios: list[str],
    upstream: str,
    cassettes: dict[str, Any] | None,
) -> dict[str, Any]:
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "skip")}
    return {
        "passed": counts["fail"] == 0,
        "upstream": upstream,
        "models": models,
        "scenarios": scenarios,
        "counts": counts,
        "cassettes": cassettes,
        "results": results,
    }


def to_json(run: dict[str, Any]) -> str:
    return json.dumps(run, indent=1, ensure_ascii=False)


def oci_error_text(err: dict[str, Any]) -> str:
    status = err.get("status")
    where = f"HTTP {status}" if status is not None else "no HTTP answer"
    return (
        f"OCI {where} ({err.get('kind')}): {err.get('message')} "
        f"[opc-request-id {err.get('opc_request_id') or '-'}]"
    )


def to_text(run: dict[str, Any]) -> str:
    cells = {(r["model"], r["scenario"]): r for r in run["results"]}
    first = max([len("model"), *(len(m) for m in run["models"])])
    widths = [max(len(s), 4) for s in run["scenarios"]]
    lines = [
        f"upstream: {run['upstream']}",
        "  ".join(
            [
                "model".ljust(first),
                *(s.ljust(w) for s, w in zip(run["scenarios"], widths, strict=True)),
            ]
        ),
    ]
    for model in run["models"]:
        marks = [
            _MARK[cells[(model, s)]["status"]] if (model, s) in cells else "?"
            for s in run["scenarios"]
        ]
        lines.append(
            "  ".join(
                [model.ljust(first), *(m.ljust(w) for m, w in zip(marks, widths, strict=True))]
            )
        )
    failed = [r for r in run["results"] if r["status"] == "fail"]
    if failed:
        lines += ["", "failures:"]
        for r in failed:
            lines.append(f"  {r['model']} / {r['scenario']}: {r['detail']}")
            if r["oci_error"]:
                lines.append(f"      {oci_error_text(r['oci_error'])}")
    skipped = [r for r in run["results"] if r["status"] == "skip" and r["detail"] != "--skip"]
    if skipped:
        lines += ["", "skipped:"]
        lines += [f"  {r['model']} / {r['scenario']}: {r['detail']}" for r in skipped]
    c = run["counts"]
    lines += ["", f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped"]
    if run["cassettes"]:
        lines.append(
            f"cassettes: {run['cassettes']['files']} file(s) in {run['cassettes']['directory']}"
        )
    return "\n".join(lines)
