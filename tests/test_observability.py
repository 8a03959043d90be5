"""Metrics, traces and logs checked with real components: gunicorn workers, a real Prometheus
server (Debian's package), and an OTLP/HTTP receiver built on opentelemetry-proto."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, completion_tokens, tool_call
from tests.harness import ALICE, free_port, write_config, write_keys

TEXT = "metrics are counted per model and per worker"


def _post(url: str, model: str, stream: bool) -> httpx.Response:
    # a new client per call: a new connection, so gunicorn spreads them over its workers
    return httpx.post(url + "/v1/messages", headers={"x-api-key": ALICE}, timeout=30, json={
        "model": model, "max_tokens": 50, "stream": stream,
        "messages": [{"role": "user", "content": "count me"}]})


def _samples(exposition: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_are_summed_over_gunicorn_workers(fake: FakeOCI, oci_key: TestKey,
                                                  tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path))
    fake.set_default(Scenario(text=TEXT))
    n = 40
    try:
        with GatewayProcess(config, tmp_path, workers=2) as gw:
            for i in range(n):
                r = _post(gw.url, "grok" if i % 2 else "llama", stream=bool(i % 4 == 0))
                assert r.status_code == 200
            pids = {json.loads(line)["pid"] for line in gw.output().splitlines()
                    if '"logger":"app.access"' in line}
            exposition = httpx.get(gw.metrics_url).text
    finally:
        fake.set_default(None)
    assert len(pids) >= 2, "all requests landed on one worker; the test proves nothing"
    assert _samples(exposition, "gateway_requests_total", route="/v1/messages",
                    status_class="2xx", key_id="alice") == n
    per_answer = completion_tokens(TEXT, "", [])
    assert _samples(exposition, "gateway_tokens_total", type="output") == n * per_answer
    assert _samples(exposition, "gateway_tokens_total", type="output", model="grok",
                    oci_model="xai.grok-4") == (n // 2) * per_answer
    assert _samples(exposition, "gateway_active_streams") == 0
    assert _samples(exposition, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == n
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=exposition, text=True,
                               capture_output=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="prometheus is not installed (apt-get install prometheus)")
def test_real_prometheus_sees_exact_token_counts(fake: FakeOCI, oci_key: TestKey,
                                                 tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path))
    with GatewayProcess(config, tmp_path) as gw:
        expected: dict[str, int] = {}
        for i, (model, text) in enumerate([("grok", "alpha beta gamma"),
                                           ("gemini", "a longer answer from gemini here"),
                                           ("grok", "one more")] * 3):
            fake.push(Scenario(text=text, usage={"promptTokens": 100 + i,
                                                 "completionTokens": 10 + i,
                                                 "totalTokens": 110 + 2 * i}))
            r = _post(gw.url, model, stream=True)
            assert check_stream(r.text)["usage"]["output_tokens"] == 10 + i
            expected[model] = expected.get(model, 0) + 10 + i
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: oci-gateway\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{gw.metrics_port}']}}]\n")
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            got: dict[str, float] = {}
            deadline = time.monotonic() + 40
            query = 'sum by (model) (gateway_tokens_total{type="output"})'
            while time.monotonic() < deadline:
                try:
                    r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                  params={"query": query}, timeout=2)
                    got = {s["metric"]["model"]: float(s["value"][1])
                           for s in r.json()["data"]["result"]}
                    if got == expected:
                        break
                except (httpx.HTTPError, KeyError, ValueError):
                    pass
                time.sleep(0.5)
        finally:
            prom.terminate()
            prom.wait(timeout=20)
    assert got == expected


class _OtlpReceiver(ThreadingHTTPServer):
    spans: list[Any]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self.server.spans.append((resource, span))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _attr(span: Any, key: str) -> Any:
    for a in span.attributes:
        if a.key == key:
            v = a.value
            return {"string_value": v.string_value, "int_value": v.int_value,
                    "double_value": v.double_value, "bool_value": v.bool_value,
                    "array_value": [x.string_value for x in v.array_value.values]
                    }[v.WhichOneof("value")]
    return None


class _GrpcReceiver:
    """A real OTLP/gRPC TraceService on loopback (grpcio + opentelemetry-proto)."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        spans: list[Any] = []
        self.spans = spans

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                for rs in request.resource_spans:
                    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                    for ss in rs.scope_spans:
                        spans.extend((resource, span) for span in ss.spans)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self.server)
        self.server_port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def shutdown(self) -> None:
        self.server.stop(grace=None)


@pytest.mark.parametrize(("protocol", "server_span", "encoder"), [
    ("http/protobuf", "lean", "lean"), ("grpc", "lean", "lean"),
    ("http/protobuf", "instrumentation", "lean"), ("http/protobuf", "lean", "library")])
def test_otlp_spans_for_a_streaming_request(fake: FakeOCI, oci_key: TestKey, tmp_path: Path,
                                            protocol: str, server_span: str,
                                            encoder: str) -> None:
    """Every OCI attempt a CLIENT span under the one SERVER span, over gRPC and over HTTP with
    either OTLP encoder (app/observability/otlp.py or the library's: the same spans)."""
    receiver: Any
    if protocol == "grpc":
        receiver = _GrpcReceiver()
    else:
        receiver = _OtlpReceiver(("127.0.0.1", 0), _Handler)
        receiver.spans = []
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_INSECURE": "true",
           "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_SERVICE_NAME": "gw-under-test", "OTEL_RESOURCE_ATTRIBUTES": "team=platform",
           "GATEWAY_TRACE_SERVER_SPAN": server_span, "GATEWAY_OTLP_ENCODER": encoder}
    try:
        with GatewayProcess(config, tmp_path, env=env) as gw:
            fake.push(Scenario(error={"status": 503}), Scenario(text="traced answer", chunks=3))
            r = _post(gw.url, "grok", stream=True)
            assert check_stream(r.text)["text"] == "traced answer"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(
                    [s for _, s in receiver.spans if s.name == "chat xai.grok-4"]) < 2:
                time.sleep(0.1)
            log = gw.output()
    finally:
        receiver.shutdown()
    chats = [(res, s) for res, s in receiver.spans if s.name == "chat xai.grok-4"]
    assert len(chats) == 2, [s.name for _, s in receiver.spans]
    resource, failed = chats[0]
    _, ok = chats[1]
    assert resource["service.name"] == "gw-under-test" and resource["team"] == "platform"
    assert failed.kind == 3 and ok.kind == 3  # SPAN_KIND_CLIENT
    assert _attr(failed, "error.type") == "server_error" and _attr(failed, "gateway.attempt") == 1
    expect = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "oci.genai",
              "gen_ai.request.model": "xai.grok-4", "gen_ai.request.max_tokens": 50,
              "gateway.model": "grok", "gateway.requested_model": "grok",
              "gateway.client_key_id": "alice", "gateway.attempt": 2,
              "oci.api_format": "GENERIC", "oci.serving_mode": "ON_DEMAND",
              "oci.region": "us-chicago-1", "oci.circuit_state": "closed"}
    for key, value in expect.items():
        assert _attr(ok, key) == value, key
    assert _attr(ok, "gen_ai.response.finish_reasons") == ["stop"]
    assert _attr(ok, "gen_ai.usage.output_tokens") == completion_tokens("traced answer", "", [])
    assert _attr(ok, "gen_ai.usage.input_tokens") > 0
    assert _attr(ok, "gen_ai.response.id").startswith("msg_")
    assert len(_attr(ok, "oci.opc_request_id")) >= 32
    assert _attr(ok, "gen_ai.response.time_to_first_chunk") >= 0
    # never prompt or completion text
    for _, span in receiver.spans:
        for a in span.attributes:
            assert "count me" not in str(a.value) and "traced answer" not in str(a.value)
    # one SERVER span is the parent (FastAPI's own telemetry is off), and the access log
    # carries its trace id
    servers = [s for _, s in receiver.spans if s.kind == 2]
    assert len(servers) == 1 and servers[0].trace_id == ok.trace_id
    # the lean span uses the stable HTTP semconv name, the instrumentation its default (old) one
    assert 200 in (_attr(servers[0], "http.response.status_code"),
                   _attr(servers[0], "http.status_code"))
    access = [json.loads(line) for line in log.splitlines() if '"logger":"app.access"' in line]
    assert access[-1]["trace_id"] == ok.trace_id.hex()


def test_content_is_recorded_only_when_opted_in(fake: FakeOCI, oci_key: TestKey,
                                                tmp_path: Path) -> None:
    receiver = _OtlpReceiver(("127.0.0.1", 0), _Handler)
    receiver.spans = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path),
                          observability={"record_content": True})
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        with GatewayProcess(config, tmp_path, env=env) as gw:
            fake.push(Scenario(text="recorded answer", chunks=2),
                      Scenario(text="plain json answer"))
            assert check_stream(_post(gw.url, "grok", stream=True).text)["text"]
            assert _post(gw.url, "grok", stream=False).status_code == 200
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(
                    [s for _, s in receiver.spans if s.name == "chat xai.grok-4"]) < 2:
                time.sleep(0.1)
    finally:
        receiver.shutdown()
    chats = [s for _, s in receiver.spans if s.name == "chat xai.grok-4"]
    assert len(chats) == 2
    assert "count me" in _attr(chats[0], "gen_ai.input.messages")
    assert _attr(chats[0], "gen_ai.output.messages") == "recorded answer"
    assert "plain json answer" in _attr(chats[1], "gen_ai.output.messages")


def _deep(levels: int = 300) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_gateway_bug_is_answered_logged_traced_and_counted(fake: FakeOCI, oci_key: TestKey,
                                                              tmp_path: Path) -> None:
    """Review B1: an unexpected exception while answering (here an OCI tool input nested past
    what the gateway can serialise) is a clean 500 carrying the request's own id, logged at
    ERROR with its stack but without the request, on an ended span, in the access log and the
    metrics. count_tokens and /v1/models get their access-log lines too (review §2.1)."""
    receiver = _OtlpReceiver(("127.0.0.1", 0), _Handler)
    receiver.spans = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    marker = f"PRIVATE-PROMPT-{time.monotonic_ns()}"
    headers = {"x-api-key": ALICE}
    try:
        with GatewayProcess(config, tmp_path, env=env) as gw:
            fake.push(Scenario(tool_calls=[tool_call("nest", _deep())]))
            r = httpx.post(gw.url + "/v1/messages", headers=headers, timeout=30, json={
                "model": "grok", "max_tokens": 50,
                "messages": [{"role": "user", "content": marker}]})
            counted = httpx.post(gw.url + "/v1/messages/count_tokens", headers=headers,
                                 json={"model": "grok", "messages": [
                                     {"role": "user", "content": "count me"}]})
            listed = httpx.get(gw.url + "/v1/models", headers=headers)
            exposition = httpx.get(gw.metrics_url).text
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(
                    s.name == "chat xai.grok-4" for _, s in receiver.spans):
                time.sleep(0.1)
            output = gw.output()
    finally:
        receiver.shutdown()
    assert r.status_code == 500
    rid = r.headers["request-id"]
    assert r.json() == {"type": "error", "request_id": rid, "error": {
        "type": "api_error", "message": "internal error in the gateway"}}
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = {rec["request_id"]: rec for rec in records if rec["logger"] == "app.access"}
    assert access[rid]["status"] == 500 and access[rid]["error_type"] == "other"
    bug = [rec for rec in records if rec["level"] == "error" and rec.get("request_id") == rid]
    assert len(bug) == 1, records
    assert bug[0]["exc_type"] == "TypeError"  # orjson.JSONEncodeError
    assert "app/service/finish.py" in bug[0]["stack"] and "json_answer" in bug[0]["stack"]
    assert marker not in output  # the traceback is logged, the request never
    assert "Traceback" not in output  # nothing escaped to the server's own error log
    assert _samples(exposition, "gateway_requests_total", route="/v1/messages",
                    status_class="5xx") == 1
    assert _samples(exposition, "gen_ai_client_operation_duration_seconds_count",
                    error_type="other") == 1
    chats = [s for _, s in receiver.spans if s.name == "chat xai.grok-4"]
    assert len(chats) == 1 and _attr(chats[0], "error.type") == "other"
    assert chats[0].status.code == 2  # STATUS_CODE_ERROR
    # the other routes are accounted the same way
    for resp, route in ((counted, "/v1/messages/count_tokens"), (listed, "/v1/models")):
        assert resp.status_code == 200
        line = access[resp.headers["request-id"]]
        assert line["route"] == route and line["status"] == 200
    assert access[counted.headers["request-id"]]["model"] == "grok"
