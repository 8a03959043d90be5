"""Checks for the Grafana dashboard and the Prometheus rules in charts/files/.

What is checked, and with what:

- Rules: ``promtool check rules`` and ``promtool test rules`` (Debian package ``prometheus``;
  skipped with a reason when ``promtool`` is not on PATH). The unit-test file must have a firing
  and a non-firing case for every alert, and every alert has ``severity``, ``summary``,
  ``description`` and a one-line ``runbook``.
- Metric names: every metric referenced by a PromQL expression of the dashboard (panels and
  template variables) and of the rules exists in the gateway's metric set, which is derived from
  ``app.observability.metrics`` in a fresh process (plus ``up``). Recording-rule names resolve to
  the metrics of their ``expr``. Label names used in matchers and in ``by``/``without``/``on``/
  ``ignoring``/``group_*`` must be labels of the referenced metrics or target labels.
- Dashboard schema: the JSON is type-checked with ``tsc`` against Grafana's published TypeScript
  types (npm ``@grafana/schema``, pinned below): the whole model as ``Dashboard``, and each
  panel's ``options`` / ``fieldConfig.defaults.custom`` against its panel plugin's ``Options`` /
  ``FieldConfig``. Deliberately broken copies are compiled alongside, to prove the check rejects
  bad input. Skipped only when ``npm`` is not on PATH. On top of that, plain-Python structural
  checks (ids, grid, data source, targets, the namespace/model variables) always run; no
  JSON-Schema package is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "charts" / "files"
DASHBOARD = FILES / "dashboards" / "oci-gateway.json"
RULES = FILES / "alerts" / "oci-gateway-rules.yaml"
RULES_TEST = FILES / "alerts" / "oci-gateway-rules.test.yaml"

# Pin to the Grafana versions the dashboard must load in (override: GRAFANA_SCHEMA_VERSIONS=a,b).
GRAFANA_SCHEMA_VERSIONS = tuple(
    os.environ.get("GRAFANA_SCHEMA_VERSIONS", "11.6.16,13.2.3").split(",")
)
TYPESCRIPT_VERSION = "5.9.3"

# Labels Prometheus (or the Prometheus operator) attaches to every scraped series.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
)
EXTRA_METRICS = {"up": frozenset({"job", "instance"})}
SEVERITIES = {"critical", "warning", "info"}


# --------------------------------------------------------------------------- metric set

_METRIC_SET_SCRIPT = textwrap.dedent(
    """
    import json
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.metrics import MetricWrapperBase
    import app.observability.metrics as m

    wrappers = [o for o in vars(m).values() if isinstance(o, MetricWrapperBase)]
    for w in wrappers:  # a labelled metric exposes nothing until one label set exists
        if w._labelnames:
            w.labels(*["x"] * len(w._labelnames))
    text = generate_latest(REGISTRY).decode()
    out = {}
    for w in wrappers:
        for family in w.collect():
            for sample in family.samples:
                assert sample.name in text, sample.name
                out[sample.name] = sorted(sample.labels)
    print(json.dumps(out))
    """
)


@cache
def gateway_metrics() -> dict[str, frozenset[str]]:
    """Exposed sample name -> label names, from ``app.observability.metrics`` in a new process."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _METRIC_SET_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = {name: frozenset(labels) for name, labels in json.loads(proc.stdout).items()}
    assert found, "app.observability.metrics defines no metrics"
    return found


def known_metrics() -> dict[str, frozenset[str]]:
    return {**gateway_metrics(), **EXTRA_METRICS}


# --------------------------------------------------------------------------- PromQL scanning

PROMQL_FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month day_of_week
    day_of_year deg delta deriv double_exponential_smoothing end exp floor group_over_time
    histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev
    histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join
    label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute
    month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar
    sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year
    """.split()
)
AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk "
    "limit_ratio".split()
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"bool", "and", "or", "unless", "offset", "atan2"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<var>\$\{[^}]*\}|\$\w+)
    | (?P<number>\d[\w.]*|\.\d[\w.]*)
    | (?P<ident>[A-Za-z_:][\w:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],@!])
    """,
    re.VERBOSE,
)


@dataclass
class Selector:
    metric: str
    matchers: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (op, value)


@dataclass
class Scan:
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize {expr[pos : pos + 20]!r} in {expr!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, m.group()))
    return out


def scan_promql(expr: str) -> Scan:
    """Metric selectors, their matchers, and grouping labels of a PromQL expression.

    Function and aggregation names, keywords, label names inside ``{}`` and grouping clauses,
    range/subquery brackets, numbers, strings and Grafana ``$variables`` are not metric names.
    """
    toks = _tokens(expr)
    scan = Scan()
    i = 0

    def nxt(j: int) -> str:
        return toks[j][1] if j < len(toks) else ""

    while i < len(toks):
        kind, text = toks[i]
        if kind == "ident" and text in GROUPING:
            i += 1
            if nxt(i) == "(":
                i += 1
                while i < len(toks) and nxt(i) != ")":
                    if toks[i][0] == "ident":
                        scan.grouping_labels.add(toks[i][1])
                    i += 1
                i += 1
            continue
        if kind == "ident" and (text in KEYWORDS or text.lower() in {"inf", "nan"}):
            i += 1
            continue
        if kind == "ident" and nxt(i + 1) == "(":
            if text not in PROMQL_FUNCTIONS and text not in AGGREGATIONS:
                scan.errors.append(f"unknown function {text!r}")
            i += 1
            continue
        if text == "[":
            while i < len(toks) and nxt(i) != "]":
                i += 1
            i += 1
            continue
        if kind == "ident" and text in AGGREGATIONS:  # followed by by/without
            i += 1
            continue
        if kind == "ident" or text == "{":
            sel = Selector(metric=text if kind == "ident" else "")
            if not sel.metric:
                scan.errors.append("selector without a metric name")
            i += 1
            if nxt(i) == "{":
                i += 1
                while i < len(toks) and nxt(i) != "}":
                    if toks[i][0] == "ident":
                        label, op, value = toks[i][1], nxt(i + 1), nxt(i + 2)
                        sel.matchers[label] = (op, value[1:-1])
                        i += 3
                    else:
                        i += 1
                i += 1
            scan.selectors.append(sel)
            continue
        i += 1
    return scan


_LABEL_VALUES = re.compile(r"\s*label_values\((?:(?P<sel>.*),)?\s*(?P<label>[A-Za-z_]\w*)\s*\)\s*")


def scan_variable_query(query: str) -> tuple[Scan, str | None]:
    """A Grafana Prometheus variable query: ``label_values(sel, label)`` or a PromQL query."""
    m = _LABEL_VALUES.fullmatch(query)
    if not m:
        return scan_promql(query), None
    return scan_promql(m.group("sel") or ""), m.group("label")


# --------------------------------------------------------------------------- loading assets


@cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@cache
def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def all_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [r for r in all_rules() if "alert" in r]


def recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for r in all_rules() if "record" in r}


def leaf_panels() -> list[dict[str, Any]]:
    out = []
    for p in dashboard()["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def variable_query(var: dict[str, Any]) -> str:
    q = var.get("query", "")
    return q.get("query", "") if isinstance(q, dict) else q


def dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (f"panel {p['id']} {p.get('title')!r} target {t['refId']}", t["expr"])
        for p in leaf_panels()
        for t in p.get("targets", [])
    ]


def rule_exprs() -> list[tuple[str, str]]:
    return [(r.get("alert") or r["record"], r["expr"]) for r in all_rules()]


def resolve_metric(name: str, seen: frozenset[str] = frozenset()) -> dict[str, frozenset[str]]:
    """Metric name -> {underlying gateway metric: labels}; recording rules are expanded."""
    metrics = known_metrics()
    if name in metrics:
        return {name: metrics[name]}
    records = recording_rules()
    if name in records and name not in seen:
        out: dict[str, frozenset[str]] = {}
        for sel in scan_promql(records[name]).selectors:
            out.update(resolve_metric(sel.metric, seen | {name}))
        return out
    return {}


def check_expression(where: str, expr: str, scan: Scan | None = None) -> list[str]:
    scan = scan or scan_promql(expr)
    problems = [f"{where}: {e}" for e in scan.errors]
    labels_in_expr: set[str] = set(TARGET_LABELS) | {"__name__"}
    for sel in scan.selectors:
        resolved = resolve_metric(sel.metric)
        if not resolved:
            problems.append(f"{where}: unknown metric {sel.metric!r}")
            continue
        sel_labels = set(TARGET_LABELS) | {"__name__"}
        for labels in resolved.values():
            sel_labels |= labels
        labels_in_expr |= sel_labels
        for label in sel.matchers:
            if label not in sel_labels:
                problems.append(f"{where}: {sel.metric} has no label {label!r}")
    for label in scan.grouping_labels - labels_in_expr:
        problems.append(f"{where}: grouping label {label!r} is on none of the metrics")
    return problems


# --------------------------------------------------------------------------- (a) promtool


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not on PATH (install Debian package 'prometheus')")
    return path


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules() -> None:
    proc = subprocess.run(
        [_promtool(), "test", "rules", RULES_TEST.name],
        cwd=RULES_TEST.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rule_unit_tests_cover_every_alert_firing_and_quiet() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        assert case.get("input_series"), f"test {case.get('name')!r} has no input_series"
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in alert_rules()}
    assert alerts - firing == set(), "alerts without a firing test case"
    assert alerts - quiet == set(), "alerts without a non-firing test case"
    assert (firing | quiet) - alerts == set(), "tests for alerts that do not exist"


# --------------------------------------------------------------------------- (b) metric names


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping"),
    [
        (
            "histogram_quantile(0.95, sum by (le, model) (rate("
            'gateway_time_to_first_token_seconds_bucket{namespace=~"$namespace", '
            'model=~"$model"}[$__rate_interval])))',
            ["gateway_time_to_first_token_seconds_bucket"],
            {"le", "model"},
        ),
        (
            '(sum(rate(a_total{x="sum(b)"}[5m] offset 1h)) or vector(0)) / ignoring (y) '
            "group_left (z) c > bool 1e-3 and on () absent(d{e!~'f'}) unless sum without (w) (g)",
            ["a_total", "c", "d", "g"],
            {"y", "z", "w"},
        ),
        ('sum(rate(x[5m:1m] @ end())) by (k) / count(count_values("v", y))', ["x", "y"], {"k"}),
    ],
)
def test_promql_scanner(expr: str, metrics: list[str], grouping: set[str]) -> None:
    scan = scan_promql(expr)
    assert scan.errors == []
    assert [s.metric for s in scan.selectors] == metrics
    assert scan.grouping_labels == grouping


def test_promql_scanner_flags_unknown_functions() -> None:
    errors = scan_promql("histogram_quantle(0.5, x) unless (y)").errors
    assert errors == ["unknown function 'histogram_quantle'"]


def test_gateway_metric_set_is_derived() -> None:
    metrics = gateway_metrics()
    for name in (
        "gateway_requests_total",
        "gateway_time_to_first_token_seconds_bucket",
        "gateway_time_to_first_token_seconds_count",
        "gateway_active_streams",
    ):
        assert name in metrics
    assert "le" in metrics["gateway_request_duration_seconds_bucket"]


def test_rule_metrics_exist() -> None:
    problems = [p for where, expr in rule_exprs() for p in check_expression(where, expr)]
    assert problems == []


def test_recording_rule_names_do_not_shadow_metrics() -> None:
    assert set(recording_rules()) & set(known_metrics()) == set()
    for name in recording_rules():
        assert ":" in name, f"recording rule {name!r} should follow level:metric:operations"


def test_dashboard_metrics_exist() -> None:
    problems = [p for where, expr in dashboard_exprs() for p in check_expression(where, expr)]
    for var in dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        where = f"variable {var['name']}"
        scan, label = scan_variable_query(variable_query(var))
        problems += check_expression(where, variable_query(var), scan)
        if label is not None:
            labels = set(TARGET_LABELS)
            for sel in scan.selectors:
                for lbls in resolve_metric(sel.metric).values():
                    labels |= lbls
            if label not in labels:
                problems.append(f"{where}: label_values of unknown label {label!r}")
    assert problems == []


def test_dashboard_charts_every_gateway_metric() -> None:
    used: set[str] = set()
    for _where, expr in dashboard_exprs():
        for sel in scan_promql(expr).selectors:
            used |= set(resolve_metric(sel.metric))
    families = {re.sub(r"_(total|created|bucket|sum|count)$", "", n) for n in gateway_metrics()}
    unused = {
        f
        for f in families
        if not any(re.sub(r"_(total|bucket|sum|count)$", "", u) == f for u in used)
    }
    assert unused == set(), "metrics without a dashboard panel"


def test_dashboard_selectors_honour_namespace_and_model_variables() -> None:
    problems = []
    for where, expr in dashboard_exprs():
        for sel in scan_promql(expr).selectors:
            labels = set().union(*resolve_metric(sel.metric).values())
            if sel.matchers.get("namespace") != ("=~", "$namespace"):
                problems.append(f'{where}: {sel.metric} lacks namespace=~"$namespace"')
            if "model" in labels and sel.matchers.get("model") != ("=~", "$model"):
                problems.append(f'{where}: {sel.metric} lacks model=~"$model"')
    assert problems == []


# --------------------------------------------------------------------------- (c) dashboard


def test_dashboard_structure() -> None:
    d = dashboard()
    assert d["uid"] == "oci-gateway"
    assert d["title"]
    assert isinstance(d["schemaVersion"], int) and 36 <= d["schemaVersion"] <= 42
    assert d["editable"] is True
    assert d.get("id") is None, "provisioned dashboards must not carry a database id"

    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ns = variables["namespace"]
    assert ns["type"] == "query" and ns["includeAll"] is True
    # Compose has no namespace label: "All" must be ".*", which also matches a missing label.
    assert ns["allValue"] == ".*"
    assert scan_variable_query(variable_query(ns))[1] == "namespace"
    model = variables["model"]
    assert model["type"] == "query" and model["includeAll"] is True and model["multi"] is True
    assert model["allValue"] == ".*"
    assert scan_variable_query(variable_query(model))[1] == "model"
    for v in (ns, model):
        assert v["datasource"]["uid"] == "${datasource}"

    all_panels = [*d["panels"], *[c for p in d["panels"] for c in p.get("panels", [])]]
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"

    cells: dict[tuple[int, int], int] = {}
    for p in all_panels:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in ("x", "y", "w", "h")), p["id"]
        assert 0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["id"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {p['id']} overlap"
                cells[(x, y)] = p["id"]

    for p in leaf_panels():
        assert p["title"] and p["type"] != "row"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["id"]
        assert p["targets"], f"panel {p['id']} has no targets"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['id']}: duplicate refId"
        for t in p["targets"]:
            assert t["refId"] and t["expr"].strip(), p["id"]
            assert t["datasource"]["uid"] == "${datasource}", p["id"]


# Panel plugin -> (folder under raw/composable, whether it exports a FieldConfig type).
PANEL_TYPES = {
    "timeseries": ("timeseries", True),
    "stat": ("stat", False),
    "bargauge": ("bargauge", False),
    "table": ("table", True),
}

_TS_LOOSE = """\
// The generated types use string enums, which a JSON string never satisfies: map every string
// enum to the union of its values, recursively. Number enums and literal unions stay as they are.
type Loose<T> = T extends string
  ? (string extends T ? string : `${T}`)
  : T extends readonly (infer U)[]
    ? Loose<U>[]
    : T extends object
      ? { [K in keyof T]: Loose<T[K]> }
      : T;
"""


def _ts_prelude(work: Path) -> str:
    """Imports of Dashboard and of each panel plugin's types (their place differs by version)."""
    lines = ["import type { Dashboard } from '@grafana/schema';"]
    dist = work / "node_modules" / "@grafana" / "schema" / "dist"
    for name, (folder, _) in PANEL_TYPES.items():
        found = sorted(dist.glob(f"**/raw/composable/{folder}/panelcfg/x/*.d.ts"))
        assert found, f"@grafana/schema has no panelcfg types for {folder!r}"
        module = "./" + found[0].relative_to(work).as_posix().removesuffix(".d.ts")
        lines.append(f"import type * as P_{name} from '{module}';")
    return "\n".join(lines) + "\n" + _TS_LOOSE


def _panels_with_types(d: dict[str, Any]) -> list[dict[str, Any]]:
    nested = [c for p in d["panels"] for c in p.get("panels", [])]
    return [p for p in d["panels"] if p["type"] != "row"] + nested


def _ts_declarations(d: dict[str, Any], prefix: str) -> list[str]:
    lines = [f"export const {prefix}dashboard: Loose<Dashboard> = {json.dumps(d)};"]
    for p in _panels_with_types(d):
        assert p["type"] in PANEL_TYPES, f"add the panelcfg type of {p['type']!r} to PANEL_TYPES"
        has_field_config = PANEL_TYPES[p["type"]][1]
        lines.append(
            f"export const {prefix}options_{p['id']}: Loose<P_{p['type']}.Options> = "
            f"{json.dumps(p.get('options', {}))};"
        )
        custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            assert has_field_config, f"panel {p['id']}: {p['type']} has no custom field config"
            lines.append(
                f"export const {prefix}custom_{p['id']}: Loose<P_{p['type']}.FieldConfig> = "
                f"{json.dumps(custom)};"
            )
    return lines


@pytest.fixture(scope="session", params=GRAFANA_SCHEMA_VERSIONS)
def grafana_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node not on PATH: cannot type-check the dashboard with @grafana/schema "
                    "(apt-get install nodejs npm)")
    work = tmp_path_factory.mktemp(f"grafana-schema-{request.param}")
    (work / "package.json").write_text('{"private": true}\n')
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--loglevel=error",
            f"@grafana/schema@{request.param}",
            f"typescript@{TYPESCRIPT_VERSION}",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"npm install failed:\n{proc.stdout}{proc.stderr}"
    return work


def test_dashboard_typechecks_against_grafana_schema(grafana_schema: Path) -> None:
    d = dashboard()
    prelude = _ts_prelude(grafana_schema)
    (grafana_schema / "check.ts").write_text(prelude + "\n".join(_ts_declarations(d, "")) + "\n")

    # Negative control: the same harness must reject broken copies. tsc reports one error per
    # declaration, so each defect goes into its own copy.
    sabotage = {
        "'\"titel\"' does not exist": lambda b: b.update(titel="typo"),
        "'string' is not assignable to type 'number'": lambda b: _first_timeseries(b)[
            "gridPos"
        ].update(h="8"),
        '"tabel"': lambda b: _first_timeseries(b)["options"]["legend"].update(displayMode="tabel"),
    }
    control = [prelude]
    for n, breaker in enumerate(sabotage.values()):
        broken = json.loads(json.dumps(d))
        breaker(broken)
        control += _ts_declarations(broken, f"c{n}_")
    (grafana_schema / "control.ts").write_text("\n".join(control) + "\n")

    proc = subprocess.run(
        [
            "node",
            "node_modules/typescript/bin/tsc",
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--moduleResolution",
            "node",
            "--module",
            "commonjs",
            "--target",
            "es2020",
            "check.ts",
            "control.ts",
        ],
        cwd=grafana_schema,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if re.match(r"^\S+\.ts\(\d+,\d+\): error", line)]
    assert [e for e in errors if not e.startswith("control.ts")] == [], out
    for expected in sabotage:
        assert expected in out, f"negative control not rejected ({expected}):\n{out}"


def _first_timeseries(d: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in _panels_with_types(d) if p["type"] == "timeseries")


# --------------------------------------------------------------------------- (d) alert metadata


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook"):
        assert str(annotations.get(key, "")).strip(), f"{rule['alert']} lacks {key!r}"
    runbook = annotations["runbook"].strip()
    assert "\n" not in runbook, f"{rule['alert']}: runbook must be one line"


def test_required_alerts_exist() -> None:
    assert {r["alert"] for r in alert_rules()} >= {
        "OCIGatewayHighErrorRate",
        "OCIGatewayUpstreamThrottled",
        "OCIGatewaySlowTimeToFirstToken",
        "OCIGatewayNoSuccessfulRequests",
        "OCIGatewayDown",
    }
