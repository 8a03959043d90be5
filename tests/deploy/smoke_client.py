"""Black-box smoke check of a running gateway (used by container_smoke.sh against containers).

usage: python tests/deploy/smoke_client.py BASE_URL --metrics-url URL [--api-key KEY] [--model NAME]
                                          [--drain-with "COMMAND THAT SENDS SIGTERM"]

With the official ``anthropic`` SDK: one streaming /v1/messages (text must arrive as deltas and
the final message must carry usage and a stop_reason), one count_tokens; with plain HTTP:
/healthz, /readyz, HEAD /, /v1/models, and the metrics on their own port (``--metrics-url``;
the request must show up in the gateway's counters, and ``/metrics`` on the API port must be a
404). With ``--drain-with``, then starts one more stream, runs the command (e.g. ``podman
kill --signal TERM gw``) once the first text delta arrived, and requires that stream to finish
normally: graceful shutdown lets in-flight streams complete. Exits non-zero with a message on
the first failure.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
import urllib.request
import warnings


def _get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def check(base: str, api_key: str, model: str, metrics_url: str) -> None:
    import anthropic

    warnings.filterwarnings("ignore", category=DeprecationWarning)

    base = base.rstrip("/")
    status, body = _get(base + "/healthz")
    assert status == 200, f"/healthz: {status} {body[:200]}"
    status, body = _get(base + "/readyz")
    assert status == 200, f"/readyz: {status} {body[:200]}"
    status, _ = _get(base + "/", method="HEAD")
    assert status < 400, f"HEAD /: {status}"
    status, body = _get(
        base + "/v1/models", headers={"x-api-key": api_key, "anthropic-version": "2023-06-01"}
    )
    assert status == 200 and '"data"' in body, f"/v1/models: {status} {body[:200]}"

    client = anthropic.Anthropic(base_url=base, api_key=api_key, max_retries=2, timeout=60)
    t0 = time.perf_counter()
    deltas: list[str] = []
    with client.messages.stream(
        model=model,
        max_tokens=128,
        messages=[{"role": "user", "content": "Say hello from the container smoke test."}],
    ) as stream:
        for text in stream.text_stream:
            deltas.append(text)
        final = stream.get_final_message()
    elapsed = time.perf_counter() - t0
    text = "".join(deltas)
    assert deltas and text.strip(), "stream produced no text deltas"
    assert final.stop_reason is not None, f"no stop_reason: {final}"
    assert final.usage.output_tokens > 0, f"no output usage: {final.usage}"
    print(
        f"stream: {len(deltas)} text deltas, {final.usage.input_tokens} in / "
        f"{final.usage.output_tokens} out tokens, stop_reason={final.stop_reason}, "
        f"model={final.model}, {elapsed:.2f}s: {text[:60]!r}"
    )

    counted = client.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    assert counted.input_tokens > 0, f"count_tokens: {counted}"

    assert _get(base + "/metrics")[0] == 404, "/metrics must not be served on the API port"
    status, metrics = _get(metrics_url)
    assert status == 200, f"{metrics_url}: {status}"
    for name in (
        "gateway_requests_total",
        "gateway_tokens_total",
        "gen_ai_client_operation_duration_seconds",
    ):
        assert name in metrics, f"/metrics lacks {name}"
    served = [
        ln
        for ln in metrics.splitlines()
        if ln.startswith("gateway_requests_total{") and 'route="/v1/messages"' in ln
    ]
    assert served, "/metrics: no gateway_requests_total sample for /v1/messages"
    print(f"/healthz /readyz HEAD / /v1/models count_tokens /metrics: ok ({len(served)} series)")


def drain_check(base: str, api_key: str, model: str, command: str) -> None:
    import anthropic

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    client = anthropic.Anthropic(
        base_url=base.rstrip("/"), api_key=api_key, max_retries=0, timeout=60
    )
    deltas = 0
    t0 = time.perf_counter()
    with client.messages.stream(
        model=model,
        max_tokens=128,
        messages=[{"role": "user", "content": "A stream that outlives the SIGTERM."}],
    ) as stream:
        for _ in stream.text_stream:
            deltas += 1
            if deltas == 1:
                subprocess.run(shlex.split(command), check=True, capture_output=True)
                t_sig = time.perf_counter()
        final = stream.get_final_message()
    assert final.stop_reason is not None and deltas > 1, f"stream cut by SIGTERM: {deltas}"
    print(
        f"drain: the in-flight stream finished after SIGTERM ({deltas} deltas, "
        f"{time.perf_counter() - t_sig:.2f}s after the signal, {time.perf_counter() - t0:.2f}s "
        f"in all, stop_reason={final.stop_reason})"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("--metrics-url", required=True, help="http://HOST:PORT/metrics")
    parser.add_argument("--api-key", default="smoke-test-key-0001")
    parser.add_argument("--model", default="claude-sonnet-4-5")
    parser.add_argument("--drain-with", help="command that sends SIGTERM to the gateway")
    args = parser.parse_args()
    try:
        check(args.base_url, args.api_key, args.model, args.metrics_url)
        if args.drain_with:
            drain_check(args.base_url, args.api_key, args.model, args.drain_with)
    except AssertionError as err:
        print(f"SMOKE FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
