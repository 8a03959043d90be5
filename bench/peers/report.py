"""The peers' columns of the benchmark table: for each peer, its figure and the ratio peer /
gateway, beside the gateway's figure on the same row.

Contract: :func:`add_columns` takes the report's table (rows of strings: section, figure,
gateway, emulator, ratio, target, result) and the results; for every peer in
``results["peers"]`` it inserts two columns before the target column. A row gets a value when
:data:`ROWS` maps its section and figure to a peer figure (the first such row of a section: the
1-worker rows come before the 2-worker ones); other rows get "". The figures' keys are in
``bench.peers.sections``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (section starts with / contains, figure starts with, peer value, gateway value) — the figure
# labels are bench/report.py's; tests/test_bench_peers.py checks that every one still exists.
Getter = Callable[[dict[str, Any], dict[str, Any]], Any]


def _at(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(node: Any) -> Any:
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    return get


def _cap(us: Any) -> Any:
    return 1e6 / us if isinstance(us, (int, float)) and us > 0 else None


def _rows() -> list[tuple[str, str, Getter, Getter]]:
    rows: list[tuple[str, str, Getter, Getter]] = []

    def add(sec: str, fig: str, peer: Callable[[Any], Any], gw: Callable[[Any], Any]) -> None:
        rows.append((sec, fig, lambda p, r: peer(p), lambda p, r: gw(r)))

    for q in (50, 90, 99):
        add("TTFT", f"time to first token p{q}", _at("ttft", f"gateway_p{q}_ms"),
            _at("ttft", f"gateway_p{q}_ms"))  # fmt: skip
    for q in (50, 99):
        add("TTFT", f"added TTFT p{q}", _at("ttft", f"added_p{q}_ms"),
            _at("ttft", f"added_p{q}_ms"))  # fmt: skip
    t1, g1 = ("throughput", "1w"), ("throughput", "gateway_1w")
    add("throughput", "req/s, 1 worker", _at(*t1, "rps"), _at(*g1, "rps"))
    add("throughput", "  worker CPU (share", _at(*t1, "cpu_share", "peer"),
        _at(*g1, "cpu_share", "gateway_workers"))  # fmt: skip
    add("throughput", "  worker CPU per request", _at(*t1, "cpu_us_per_request", "peer"),
        _at(*g1, "cpu_us_per_request", "gateway_workers"))  # fmt: skip
    add("throughput", "  capacity", lambda p: _cap(_at(*t1, "cpu_us_per_request", "peer")(p)),
        lambda r: _cap(_at(*g1, "cpu_us_per_request", "gateway_workers")(r)))  # fmt: skip
    add("throughput", "  emulator CPU", _at(*t1, "cpu_share", "emulator"),
        _at(*g1, "cpu_share", "emulator"))  # fmt: skip
    for fig, key in (
        ("  upstream streams open at peak", "peak_open_upstream"),
        ("RSS peak", "rss_peak_total_mb"),
        ("  RSS per open stream", "rss_per_stream_kb"),
        ("  inter-chunk delay added p50", "gap_excess_p50_ms"),
        ("  inter-chunk delay added p99", "gap_excess_p99_ms"),
        ("  inter-chunk delay added max", "gap_excess_max_ms"),
        ("incl. opening", "all_gap_excess_p99_ms"),
        ("  CPU used during the run", "cpu_s"),
    ):
        add("open streams", fig, _at("streams", key), _at("streams", "gateway", key))
    add("open streams", "  RSS idle before", lambda p: sum(_at("streams", "rss_idle_mb")(p) or []),
        lambda r: sum(_at("streams", "gateway", "rss_idle_mb")(r) or []))  # fmt: skip
    rows.append(
        (
            "open streams",
            "streams completed / peak open",
            lambda p, r: (
                f"{p['streams']['completed']}/{p['streams']['peak_open_client']}"
                if "streams" in p
                else None
            ),
            lambda p, r: None,
        )
    )
    for fig, mode, key, gw in (
        ("fixed CPU per request", "paced", "fixed_us", "gateway"),
        ("CPU per streamed event, paced", "paced", "per_event_us", "gateway"),
        ("back to back (no delay): fixed", "burst", "fixed_us", "gateway_burst"),
        ("back to back (no delay): CPU per streamed", "burst", "per_event_us", "gateway_burst"),
    ):
        add("CPU, paced", fig, _at("cpu", mode, key), _at("cpu", gw, key))
    for label in ("16K", "256K", "1M", "4M"):  # bench/long.py's SIZES labels
        size = ("long", "sizes", label)
        add("long conversations", f"{label} (", _at(*size, "cpu_ms_per_request"),
            _at(*size, "cpu_ms_per_request"))  # fmt: skip
        add("long conversations", f"  {label}: time to first token",
            _at(*size, "ttft", "gateway_ms"), _at(*size, "ttft", "gateway_ms"))  # fmt: skip
        add("long conversations", f"  {label}: added TTFT", _at(*size, "ttft", "added_ms"),
            _at(*size, "ttft", "added_ms"))  # fmt: skip
    for i in (0, 1):
        rows.append(
            (
                "CPU, paced",
                f"CPU per request, #{i}",  # the chunk count is in the label: matched below
                lambda p, r, i=i: _per_request(p, r, i)[0],
                lambda p, r, i=i: _per_request(p, r, i)[1],
            )
        )
    return rows


def _per_request(peer: dict[str, Any], results: dict[str, Any], i: int) -> tuple[Any, Any]:
    chunks = _at("cpu", "gateway", "chunks")(results) or []
    if len(chunks) <= i:
        return None, None
    k = str(chunks[i])
    return (
        _at("cpu", "paced", "cpu_us_per_request", k)(peer),
        _at("cpu", "gateway", "cpu_us_per_request", k)(results),
    )


ROWS = _rows()


def _matches(section: str, figure: str, rule: tuple[str, str, Getter, Getter]) -> bool:
    sec, fig = rule[0], rule[1]
    if sec not in section:
        return False
    if fig.startswith("CPU per request, #"):
        return figure.startswith("CPU per request, ") and figure.count("chunks") == 1
    return figure.startswith(fig)


def cells(
    results: dict[str, Any], peer: dict[str, Any], rows: list[tuple[str, ...]]
) -> list[tuple[Any, Any]]:
    """(peer value, gateway value) per table row; (None, None) where nothing maps."""
    used: set[int] = set()
    per_request_seen: dict[str, int] = {}
    out: list[tuple[Any, Any]] = []
    for row in rows:
        section, figure = row[0], row[1]
        got: tuple[Any, Any] = (None, None)
        for n, rule in enumerate(ROWS):
            if n in used or not _matches(section, figure, rule):
                continue
            if rule[1].startswith("CPU per request, #"):
                i = per_request_seen.get(section, 0)
                if rule[1] != f"CPU per request, #{i}":
                    continue
                per_request_seen[section] = i + 1
            used.add(n)
            got = (rule[2](peer, results), rule[3](peer, results))
            break
        out.append(got)
    return out


def add_columns(
    table: Any, results: dict[str, Any], fmt: Callable[[Any], str], ratio: Callable[..., str]
) -> None:
    """Insert ``<peer>`` and ``<peer>/gw`` columns before the target column of ``table``."""
    peers = results.get("peers") or {}
    for name, peer in peers.items():
        got = cells(results, peer, table.rows)
        table.head = (*table.head[:-2], name, f"{name}/gw", *table.head[-2:])
        table.rows = [
            (
                *row[:-2],
                "" if p is None else fmt(p),
                "" if p is None or isinstance(p, str) else ratio(p, g),
                *row[-2:],
            )
            for row, (p, g) in zip(table.rows, got, strict=True)
        ]


def peer_notes(results: dict[str, Any]) -> list[str]:
    """One line per peer under the table: what it is and what was checked."""
    out = []
    for name, peer in (results.get("peers") or {}).items():
        info = peer.get("info") or {}
        sc = info.get("stream_check") or {}
        out.append(
            f"Peer '{name}': {info.get('label') or name} {info.get('version', '')} on "
            f"{info.get('endpoint', '?')}, one worker, on the gateway's CPUs; OCI signature "
            f"{'verified by the emulator' if info.get('signature_verified') else 'NOT verified'}"
            f"; stream check {sc.get('deltas')}/{sc.get('chunks_sent')} deltas; "
            f"'{name}/gw' = {name} / gateway"
        )
        for section, entry in peer.items():
            if isinstance(entry, dict) and entry.get("first_error"):
                out.append(f"  {name} {section}: first error {entry['first_error']}")
        refused = (peer.get("long") or {}).get("refused")
        if refused:
            out.append(
                f"  {name} long: its request for {refused['model']} was refused "
                f"({str(refused['first_error'])[:160]}); its long rows are for the same "
                "bodies without the tool definitions, on grok-4.20"
            )
    return out
