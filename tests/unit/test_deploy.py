"""deploy/: the container image, Kubernetes manifests, systemd unit, Prometheus rules and Grafana dashboard.

All offline. Kubernetes objects are checked against the API's own schemas by
kubernetes-validate (strict: unknown fields are errors); the ServiceMonitor,
a CRD it has no schema for, by its structure. promtool checks the rules, the
scrape config and every PromQL expression of the dashboard, and runs the
rules' unit tests (deploy/prometheus/alerts_test.yml). Debian's promtool is
built without Kubernetes service discovery: the kubernetes_sd job is then
checked with a static target in its place (its relabelling rules still are).

Needs `pip install kubernetes-validate` and `apt-get install prometheus`
(promtool): without them these tests skip, and fail under CI=true.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from droptrace.commands.exporter import build_parser
from droptrace.web.config import FLAG as WEB_CONFIG_FLAG

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINERFILE = DEPLOY / "Containerfile"
DAEMONSET = DEPLOY / "kubernetes" / "daemonset.yaml"
SERVICEMONITOR = DEPLOY / "kubernetes" / "servicemonitor.yaml"
UNIT = DEPLOY / "systemd" / "droptrace-exporter.service"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
SCRAPE = DEPLOY / "prometheus" / "scrape.yml"
SCRAPE_KUBERNETES = DEPLOY / "prometheus" / "scrape-kubernetes.yml"
DASHBOARD = DEPLOY / "grafana" / "droptrace-dashboard.json"

PORT = 9587
CAPS = {"BPF", "PERFMON", "SYS_ADMIN", "NET_ADMIN"}
HOST_PATHS = {"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup", "/run/netns",
              # container and pod names (droptrace.runtime_names)
              "/var/log/pods", "/var/lib/containers/storage", "/var/lib/docker/containers"}
WEB_CONFIG_DIR = "/etc/droptrace/web"
OLDEST_KUBERNETES = "1.30.0"  # besides the newest kubernetes-validate ships
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, install: str) -> None:
    """A tool these tests need is absent: fail under CI, skip elsewhere."""
    message = f"{what} is not installed ({install})"
    if IN_CI:
        pytest.fail(message + ": CI must install it")
    pytest.skip(message)


def yaml_module() -> Any:
    try:
        import yaml
    except ImportError:
        missing("PyYAML", "pip install kubernetes-validate")
    return yaml


def load_yaml_docs(path: Path) -> List[Dict[str, Any]]:
    return [d for d in yaml_module().safe_load_all(path.read_text()) if d is not None]


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as kv
    except ImportError:
        missing("kubernetes-validate", "pip install kubernetes-validate")
    return kv


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing("promtool", "apt-get install prometheus")
    return path


def run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)}:\n{proc.stdout}\n{proc.stderr}"


# --- Kubernetes -------------------------------------------------------------------------------------


def kube_objects() -> Dict[Tuple[str, str], Dict[str, Any]]:
    out = {}
    for path in (DAEMONSET, SERVICEMONITOR):
        for doc in load_yaml_docs(path):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def kube_versions() -> List[str]:
    kv = kubernetes_validate()
    from kubernetes_validate import utils

    versions = [kv.latest_version()]
    if OLDEST_KUBERNETES in utils.all_versions():
        versions.append(OLDEST_KUBERNETES)
    return versions


def test_kubernetes_manifests_match_the_api_schemas():
    kv = kubernetes_validate()
    checked = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in load_yaml_docs(path):
            for version in kube_versions():
                try:
                    kv.validate(doc, version, strict=True)
                except kv.SchemaNotFoundError:
                    # A CRD: no schema ships with kubernetes-validate (structure checked below).
                    assert doc["kind"] == "ServiceMonitor", f"{path.name}: no schema for {doc['kind']}"
                    continue
                except kv.ValidationError as e:
                    where = "/".join(str(p) for p in e.absolute_path)
                    pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']} at {where} "
                                f"(Kubernetes {version}): {e.message}")
                checked.append((doc["kind"], version))
    assert {kind for kind, _ in checked} == {"Namespace", "DaemonSet", "Service"}


def test_strict_validation_rejects_an_unknown_field():
    """The check above is not vacuous: a misspelt field is an error."""
    kv = kubernetes_validate()
    ds = kube_objects()[("DaemonSet", "droptrace-exporter")]
    bad = json.loads(json.dumps(ds))
    bad["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPropogation"] = "None"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)


def pod_spec() -> Dict[str, Any]:
    return kube_objects()[("DaemonSet", "droptrace-exporter")]["spec"]["template"]["spec"]


def exporter_container() -> Dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def test_daemonset_runs_the_exporter_on_every_node():
    objs = kube_objects()
    ns = objs[("Namespace", "droptrace")]
    ds = objs[("DaemonSet", "droptrace-exporter")]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert ds["metadata"]["namespace"] == "droptrace"
    template = ds["spec"]["template"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(PORT)
    spec = template["spec"]
    assert spec["hostPID"] is True
    assert spec["hostNetwork"] is False
    assert {"operator": "Exists"} in spec["tolerations"]
    assert "priorityClassName" not in spec
    c = exporter_container()
    argv = c.get("command", []) + c.get("args", [])
    assert argv == ["droptrace", "exporter", "--listen", f"0.0.0.0:{PORT}",
                    WEB_CONFIG_FLAG, f"{WEB_CONFIG_DIR}/web-config.yml"]
    assert template["metadata"]["annotations"]["prometheus.io/scheme"] == "https"
    assert c["ports"] == [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}]
    assert c["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"  # answered without credentials
        assert c[probe]["httpGet"]["port"] in ("metrics", PORT)
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"


def test_daemonset_privileges_are_the_documented_ones():
    sc = exporter_container()["securityContext"]
    assert set(sc["capabilities"]["add"]) == CAPS
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc.get("privileged") is not True
    # allowPrivilegeEscalation: false means nothing beside SYS_ADMIN, and the API server rejects it beside
    # the capability spelt CAP_SYS_ADMIN (no schema says so).
    assert not ("SYS_ADMIN" in sc["capabilities"]["add"] and sc.get("allowPrivilegeEscalation") is False)


def test_daemonset_mounts_the_host_paths_read_only():
    spec = pod_spec()
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = exporter_container()["volumeMounts"]
    assert {m["mountPath"] for m in mounts} == HOST_PATHS | {WEB_CONFIG_DIR}
    for m in mounts:
        assert m["readOnly"] is True, m
        if m["mountPath"] == WEB_CONFIG_DIR:  # the Secret with the web config, certificate and key
            assert volumes[m["name"]]["secret"]["secretName"] == "droptrace-web"
            continue
        host = volumes[m["name"]]["hostPath"]
        assert host["path"] == m["mountPath"]
        assert host.get("type", "") in ("", "Directory"), host
    # Named network namespaces are mounts made after the pod starts.
    netns = next(m for m in mounts if m["mountPath"] == "/run/netns")
    assert netns["mountPropagation"] == "HostToContainer"


def test_headless_service_selects_the_daemonset_pods():
    objs = kube_objects()
    svc = objs[("Service", "droptrace-exporter")]
    pod_labels = objs[("DaemonSet", "droptrace-exporter")]["spec"]["template"]["metadata"]["labels"]
    assert svc["metadata"]["namespace"] == "droptrace"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("metrics", PORT, "metrics")


# Fields of the ServiceMonitor CRD (monitoring.coreos.com/v1) this file may use: the
# structure check that stands in for a schema kubernetes-validate does not have.
SERVICEMONITOR_FIELDS = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "namespace", "labels", "annotations"},
    "spec": {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels",
             "sampleLimit"},
    "spec.selector": {"matchLabels", "matchExpressions"},
    "spec.namespaceSelector": {"matchNames", "any"},
    "spec.endpoints": {"port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                       "honorTimestamps", "relabelings", "metricRelabelings", "params", "tlsConfig",
                       "bearerTokenSecret", "followRedirects", "enableHttp2", "basicAuth"},
    "spec.endpoints.tlsConfig": {"ca", "cert", "keySecret", "serverName", "insecureSkipVerify"},
    "spec.endpoints.tlsConfig.ca": {"secret", "configMap"},
    "spec.endpoints.tlsConfig.ca.secret": {"name", "key", "optional"},
    "spec.endpoints.basicAuth": {"username", "password"},
    "spec.endpoints.basicAuth.username": {"name", "key", "optional"},
    "spec.endpoints.basicAuth.password": {"name", "key", "optional"},
    "spec.endpoints.relabelings": {"sourceLabels", "separator", "targetLabel", "regex", "modulus",
                                   "replacement", "action"},
}


def walk_fields(node: Any, path: str = "") -> Iterator[Tuple[str, str]]:
    if isinstance(node, list):
        for item in node:
            yield from walk_fields(item, path)
    elif isinstance(node, dict) and path in SERVICEMONITOR_FIELDS:
        for key, value in node.items():
            yield path, key
            yield from walk_fields(value, f"{path}.{key}" if path else key)


def test_servicemonitor_structure():
    kv = kubernetes_validate()
    (sm,) = load_yaml_docs(SERVICEMONITOR)
    with pytest.raises(kv.SchemaNotFoundError):  # if this starts to pass, the schema test covers it
        kv.validate(sm, kv.latest_version(), strict=True)
    unknown = [f"{path}.{key}" for path, key in walk_fields(sm) if key not in SERVICEMONITOR_FIELDS[path]]
    assert not unknown, f"fields the ServiceMonitor CRD does not have: {unknown}"
    assert (sm["apiVersion"], sm["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    svc = kube_objects()[("Service", "droptrace-exporter")]
    assert sm["metadata"]["namespace"] == svc["metadata"]["namespace"]
    assert svc["metadata"]["namespace"] in sm["spec"]["namespaceSelector"]["matchNames"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    assert sm["spec"]["endpoints"], "no endpoints"
    for ep in sm["spec"]["endpoints"]:
        assert ep["port"] in port_names
        assert ep.get("path", "/metrics") == "/metrics"
        assert ep["scheme"] == "https" and ep["basicAuth"] and ep["tlsConfig"]["ca"]
        for field in ("interval", "scrapeTimeout"):
            assert re.fullmatch(r"(\d+(ms|s|m|h))+", ep.get(field, "30s")), ep
        for r in ep.get("relabelings", []):
            assert r.get("action", "replace") in ("replace", "keep", "drop", "labelmap", "labeldrop",
                                                  "labelkeep", "hashmod", "lowercase", "uppercase")


# --- Prometheus -------------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check():
    assert_ok(run_promtool("check", "rules", str(ALERTS)))


def test_alert_rules_unit_tests():
    """200 drops/s sustained fires DroptraceDropRateHigh, 50/s does not; a reason new today fires
    DroptraceNewDropReason; and the other alerts' cases (deploy/prometheus/alerts_test.yml)."""
    proc = run_promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert_ok(proc)
    assert "SUCCESS" in proc.stdout


def test_alert_rules_contract():
    (group,) = yaml_module().safe_load(ALERTS.read_text())["groups"]
    assert group["name"] == "droptrace"
    alerts = {r["alert"]: r for r in group["rules"] if "alert" in r}
    assert {"DroptraceNewDropReason", "DroptraceDropRateHigh", "DroptraceExporterDown",
            "DroptraceUncountedDrops"} <= alerts.keys()
    high = alerts["DroptraceDropRateHigh"]
    assert high["expr"].strip() == "sum by (instance, reason) (rate(droptrace_drops_total[5m])) > 100"
    assert high["for"] == "10m"
    assert high["labels"]["severity"] == "warning"
    for key in ("summary", "description"):
        assert "{{ $labels.reason }}" in high["annotations"][key]
    assert alerts["DroptraceNewDropReason"]["for"] == "0m"
    assert "droptrace_uncounted_drops_total" in alerts["DroptraceUncountedDrops"]["expr"]
    # Every droptrace job of the scrape example is one DroptraceExporterDown watches.
    down = re.search(r'job=~"([^"]+)"', alerts["DroptraceExporterDown"]["expr"]).group(1)
    for path in (SCRAPE, SCRAPE_KUBERNETES):
        for job in yaml_module().safe_load(path.read_text())["scrape_configs"]:
            assert re.fullmatch(down, job["job_name"]), job["job_name"]


def promtool_has_kubernetes_sd(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.yml"
    probe.write_text("scrape_configs:\n  - job_name: p\n    kubernetes_sd_configs:\n      - role: pod\n")
    return run_promtool("check", "config", str(probe)).returncode == 0


def test_scrape_config_passes_promtool_check(tmp_path):
    """scrape.yml as it is: Debian's promtool too (it has no Kubernetes discovery)."""
    yaml = yaml_module()
    jobs = {j["job_name"]: j for j in yaml.safe_load(SCRAPE.read_text())["scrape_configs"]}
    assert jobs["droptrace"]["static_configs"] == [{"targets": [f"localhost:{PORT}"]}]
    tls = jobs["droptrace-tls"]
    assert tls["scheme"] == "https" and tls["basic_auth"]["password_file"] and tls["tls_config"]["ca_file"]
    assert_ok(run_promtool("check", "config", str(SCRAPE)))


def test_kubernetes_scrape_config_passes_promtool_check(tmp_path):
    yaml = yaml_module()
    config = yaml.safe_load(SCRAPE_KUBERNETES.read_text())
    (pods,) = config["scrape_configs"]
    assert pods["job_name"] == "droptrace-pods"
    assert [sd["role"] for sd in pods["kubernetes_sd_configs"]] == ["pod"]
    keep = pods["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert (keep["action"], keep["regex"]) == ("keep", "true")
    scheme = next(r for r in pods["relabel_configs"] if r.get("target_label") == "__scheme__")
    assert scheme["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"]
    ds = kube_objects()[("DaemonSet", "droptrace-exporter")]
    assert pods["tls_config"]["server_name"] == "droptrace-exporter.droptrace.svc"
    annotations = ds["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(scheme["regex"], annotations["prometheus.io/scheme"])
    if not promtool_has_kubernetes_sd(tmp_path):
        # Debian's promtool lacks Kubernetes service discovery: check the rest of the job.
        pods.pop("kubernetes_sd_configs")
        pods["static_configs"] = [{"targets": [f"10.0.0.7:{PORT}"]}]
    config["rule_files"] = [str(ALERTS)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert_ok(run_promtool("check", "config", str(path)))


@pytest.mark.parametrize("address, port, expected", [
    ("10.1.2.3:9587", "9587", "10.1.2.3:9587"),
    ("10.1.2.3", "9587", "10.1.2.3:9587"),
    ("10.1.2.3:8080", "9587", "10.1.2.3:9587"),
    ("[fd00::1]:9587", "9587", "[fd00::1]:9587"),
])
def test_scrape_config_address_relabelling(address, port, expected):
    """The pod job's address rule (Prometheus anchors relabel regexes; RE2 reads this one as Python does)."""
    config = yaml_module().safe_load(SCRAPE_KUBERNETES.read_text())
    pods = next(j for j in config["scrape_configs"] if j["job_name"] == "droptrace-pods")
    rule = next(r for r in pods["relabel_configs"] if r.get("target_label") == "__address__")
    assert rule["source_labels"] == ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"]
    m = re.fullmatch(rule["regex"], f"{address};{port}")
    assert m is not None
    assert re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))), rule["replacement"]) == expected


# --- Grafana ----------------------------------------------------------------------------------------


def dashboard() -> Dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_structure():
    dash = dashboard()
    assert dash["schemaVersion"] == 39
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for name in ("instance", "reason"):
        query = variables[name]["query"]
        query = query["query"] if isinstance(query, dict) else query
        assert variables[name]["type"] == "query"
        assert re.fullmatch(rf"label_values\(droptrace_\w+(\{{[^}}]*\}})?, {name}\)", query), query
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert any("droptrace_" in t.get("expr", "") for t in p["targets"]), p["title"]
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"]) == p["datasource"], p["title"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert ('sum by (reason) (rate(droptrace_drops_total{instance=~"$instance", reason=~"$reason"}'
            "[$__rate_interval]))") in exprs
    assert any(p["type"] == "table" and all(t["instant"] for t in p["targets"]) for p in panels)
    for metric in ("droptrace_drop_bytes_total", "droptrace_uncounted_drops_total",
                   "droptrace_folded_series_total", "droptrace_scrape_duration_seconds"):
        assert any(metric in e for e in exprs), metric


def test_dashboard_panels_do_not_overlap():
    cells = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "5m", "$__interval": "5m",
                     "$instance": ".*", "$reason": ".*"}


def test_dashboard_promql_passes_promtool(tmp_path):
    """promtool has no expression check: each expression becomes a recording rule."""
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:expr:{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    assert_ok(run_promtool("check", "rules", str(path)))


# --- systemd ----------------------------------------------------------------------------------------


def parse_unit(text: str) -> Dict[str, Dict[str, List[str]]]:
    """systemd's unit syntax: sections, repeatable keys, `\\` continuations, # and ; comments."""
    sections: Dict[str, Dict[str, List[str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_settings():
    unit = parse_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    svc = {k: v[-1] for k, v in unit["Service"].items()}
    assert shlex.split(svc["ExecStart"]) == ["/usr/local/bin/droptrace", "exporter"]  # localhost default
    assert svc["Restart"] == "on-failure"
    caps = {f"CAP_{c}" for c in CAPS}
    assert set(svc["CapabilityBoundingSet"].split()) == caps
    assert set(svc["AmbientCapabilities"].split()) == caps
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict"
    assert svc["ProtectHome"] == "yes"
    assert "User" not in svc and "DynamicUser" not in svc  # root: tracefs files are root's
    # These would hide what droptrace reads (/proc/kallsyms, the host's namespaces) or break ctypes.
    for key in ("ProtectKernelTunables", "MemoryDenyWriteExecute", "PrivateNetwork", "RestrictNamespaces",
                "ProtectProc", "ProcSubset"):
        assert key not in svc, key
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_shows_the_web_config(tmp_path):
    """The unit's commented example ExecStart= with --web.config.file is a command line the exporter takes."""
    (example,) = [ln for ln in UNIT.read_text().splitlines() if ln.startswith("#   ExecStart=/") and
                  WEB_CONFIG_FLAG in ln]
    argv = shlex.split(example.split("=", 1)[1])
    assert argv[:2] == ["/usr/local/bin/droptrace", "exporter"]
    config = tmp_path / "web-config.yml"
    config.write_text("basic_auth_users: {}\n")
    argv[argv.index(WEB_CONFIG_FLAG) + 1] = str(config)
    args = build_parser().parse_args(argv[2:])
    assert args.web_config is not None and args.listen == ("0.0.0.0", PORT)


def test_systemd_analyze_verify():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    proc = subprocess.run([tool, "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    exec_start = "/usr/local/bin/droptrace"
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    # verify also checks that ExecStart's program exists on this machine; droptrace need not.
    if not os.access(exec_start, os.X_OK):
        lines = [line for line in lines if f"Command {exec_start} is not executable" not in line]
    elif proc.returncode != 0:
        pytest.fail(f"systemd-analyze verify failed:\n{proc.stdout}\n{proc.stderr}")
    assert not lines, "systemd-analyze verify:\n" + "\n".join(lines)


# --- Containerfile ----------------------------------------------------------------------------------


def containerfile_instructions() -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments), with `\\` continuations joined and comments dropped."""
    out = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Containerfile ends in a continuation"
    return out


def stages() -> List[List[Tuple[str, str]]]:
    out: List[List[Tuple[str, str]]] = []
    for ins in containerfile_instructions():
        if ins[0] == "FROM":
            out.append([])
        assert out, "instruction before FROM"
        out[-1].append(ins)
    return out


def apt_packages(stage: List[Tuple[str, str]]) -> set:
    pkgs = set()
    for word, args in stage:
        if word == "RUN":
            for m in re.finditer(r"apt-get install ([^&;|]*)", args):
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def test_containerfile_stages():
    build, runtime = stages()
    base, _, name = build[0][1].partition(" AS ")
    assert base.startswith("debian:bookworm") and name.strip() == "build"
    assert runtime[0][1].startswith("debian:bookworm")
    assert {"python3", "python3-venv", "clang-19", "libbpf-dev"} <= apt_packages(build)
    assert any(w == "RUN" and "pip wheel" in a and " ." in a for w, a in build)
    assert apt_packages(runtime) == {"python3", "python3-venv", "libbpf1", "libpcap0.8", "iproute2"}
    installs = [a for w, a in runtime if w == "RUN" and "pip install" in a]
    assert installs and all("from=build" in a and "--no-index" in a for a in installs)
    # What the builder copies exists in the build context (the repo root).
    for word, args in build:
        if word == "COPY":
            for src in args.split()[:-1]:
                assert (ROOT / src).exists(), src


def test_containerfile_runs_the_exporter_on_all_addresses():
    (_build, runtime) = stages()
    words = dict(runtime)
    assert words["EXPOSE"].split() == [str(PORT)]
    entrypoint = json.loads(words["ENTRYPOINT"])  # exec form: signals reach droptrace
    argv = entrypoint + (json.loads(words["CMD"]) if "CMD" in words else [])
    assert argv[:2] == ["droptrace", "exporter"]
    assert argv[argv.index("--listen") + 1] == f"0.0.0.0:{PORT}"
    # The reason is said beside it: the default listens on localhost only.
    text = CONTAINERFILE.read_text()
    before = text[:text.index("ENTRYPOINT")].rsplit("\n\n", 1)[-1]
    assert "127.0.0.1:9587" in before and "#" in before


def test_containerfile_ignore_keeps_what_the_build_copies():
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text().split("\n")
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    build, _ = stages()
    copied = {src.rstrip("/") for w, a in build if w == "COPY" for src in a.split()[:-1]}
    assert copied <= kept
