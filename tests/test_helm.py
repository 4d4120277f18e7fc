"""The Helm chart: lint, render with every values file, validate against the Kubernetes schemas,
and check what the chart promises (security, keys as files, checksums, monitoring resources)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scribe_exporter.config import parse_config

from .conftest import ROOT, require_tool

CHART = ROOT / "helm" / "scribe-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
K8S_VERSION = "1.33.0"
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
Docs = list[dict[str, Any]]


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    binary = require_tool("helm")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=chart)


def render(*values: str | Path, sets: tuple[str, ...] = (), chart: Path = CHART) -> Docs:
    args = ["template", "rel", str(chart), "--namespace", "monitoring"]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    result = helm(*args, chart=chart)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def find(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def validate(docs: Docs, tmp_path: Path) -> None:
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            assert doc["spec"]
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    for rule in (d for d in docs if d["kind"] == "PrometheusRule"):
        promtool = require_tool("promtool")
        path = tmp_path / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "defaults")
def test_lint_render_and_validate(values: Path | None, tmp_path: Path) -> None:
    extra = ["-f", str(values)] if values else []
    lint = helm("lint", "--strict", ".", *extra)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(*([values] if values else []))
    validate(docs, tmp_path)
    config = yaml.safe_load(
        find(
            docs,
            "ConfigMap",
            next(
                d["metadata"]["name"]
                for d in docs
                if d["kind"] == "ConfigMap" and "config.yaml" in d["data"]
            ),
        )["data"]["config.yaml"]
    )
    if config["workspaces"]:
        parse_config(config)  # the exporter's own parser accepts what the chart renders


def test_defaults_are_secure(tmp_path: Path) -> None:
    docs = render(CHART / "ci" / "standalone-values.yaml")
    deployment = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert find(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65534
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}} in pod["volumes"]


def test_keys_are_mounted_as_files_never_in_env_or_args() -> None:
    docs = render(CHART / "ci" / "standalone-values.yaml")
    deployment = find(docs, "Deployment")
    rendered = json.dumps(deployment)
    assert "sk_test_chart" not in rendered
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "env" not in container and "envFrom" not in container
    keys = next(m for m in container["volumeMounts"] if m["name"] == "keys")
    assert keys == {
        "name": "keys",
        "mountPath": "/etc/scribe-exporter/keys",
        "readOnly": True,
    }  # no subPath
    secret = find(docs, "Secret")
    assert set(secret["data"]) == {"acme", "globex"}
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["config.yaml"])
    assert config["workspaces"] == [
        {"name": "acme", "api_key_file": "/etc/scribe-exporter/keys/acme"},
        {"name": "globex", "api_key_file": "/etc/scribe-exporter/keys/globex"},
    ]


def test_existing_secret() -> None:
    docs = render(CHART / "ci" / "existing-secret-values.yaml")
    assert not [d for d in docs if d["kind"] == "Secret"]
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == "scribe-api-keys"
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["config.yaml"])
    assert config["workspaces"][1] == {
        "name": "globex",
        "api_key_file": "/etc/scribe-exporter/keys/globex-2027",
    }


def test_a_workspace_without_a_key_source_fails_at_render() -> None:
    result = helm("template", "rel", ".", "--set", "workspaces[0].name=acme")
    assert result.returncode != 0
    assert "workspaces[0] (acme): set apiKey, or name an existingSecret" in result.stderr


def test_schema_rejects_a_misspelled_value() -> None:
    for typo in (
        "servicemonitor.enabled=true",
        "serviceMonitor.enable=true",
        "config.polling.interval=30",
        "logLevel=verbose",
    ):
        result = helm("template", "rel", ".", "--set", typo)
        assert result.returncode != 0, typo
        assert (
            "values don't meet the specifications of the schema" in result.stderr
            or "schema" in result.stderr
        ), result.stderr


def checksums(docs: Docs) -> dict[str, str]:
    annotations: dict[str, str] = find(docs, "Deployment")["spec"]["template"]["metadata"][
        "annotations"
    ]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def test_checksums_follow_the_values_not_the_chart(tmp_path: Path) -> None:
    base = CHART / "ci" / "standalone-values.yaml"
    before = checksums(render(base))
    assert set(before) == {"checksum/config", "checksum/secret"}
    config_changed = checksums(render(base, sets=("config.polling.interval_seconds=30",)))
    assert config_changed["checksum/config"] != before["checksum/config"]
    assert config_changed["checksum/secret"] == before["checksum/secret"]
    key_changed = checksums(render(base, sets=("workspaces[0].apiKey=sk_test_rotated",)))
    assert key_changed["checksum/secret"] != before["checksum/secret"]
    # A new chart version with the same values rolls nothing.
    upgraded = tmp_path / "scribe-exporter"
    shutil.copytree(CHART, upgraded)
    chart_yaml = (upgraded / "Chart.yaml").read_text().replace("version: 0.1.0", "version: 0.2.0")
    (upgraded / "Chart.yaml").write_text(chart_yaml)
    assert checksums(render(base, chart=upgraded)) == before


def test_prometheus_rule_keeps_label_templates_and_adapts_the_job(tmp_path: Path) -> None:
    docs = render(CHART / "ci" / "all-options-values.yaml")
    rule = find(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert rules["ScribeApiKeyRejected"]["annotations"]["summary"].startswith(
        "Scribe rejected the API key of workspace {{ $labels.workspace }}"
    )
    assert rules["ScribeExporterDown"]["expr"].strip() == 'up{job="scribe"} == 0'
    shipped = yaml.safe_load((ROOT / "monitoring" / "scribe-exporter.rules.yml").read_text())
    assert len(rules) == len(shipped["groups"][0]["rules"])
    for monitor in ("ServiceMonitor", "PodMonitor"):
        doc = find(docs, monitor)
        endpoint = (doc["spec"].get("endpoints") or doc["spec"]["podMetricsEndpoints"])[0]
        assert {"targetLabel": "job", "replacement": "scribe"} in endpoint["relabelings"]
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboard_configmap_carries_the_shipped_dashboard() -> None:
    docs = render(CHART / "ci" / "all-options-values.yaml")
    board = find(docs, "ConfigMap", "scribe-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["annotations"]["grafana_folder"] == "Marketing"
    shipped = json.loads((ROOT / "monitoring" / "scribe-exporter.dashboard.json").read_text())
    assert json.loads(board["data"]["scribe-exporter.json"]) == shipped


def test_monitoring_resources_are_off_by_default_with_no_capabilities_guard() -> None:
    kinds = {d["kind"] for d in render()}
    assert kinds == {"ServiceAccount", "ConfigMap", "Service", "Deployment", "Pod"}
    assert "StatefulSet" not in kinds
    templates = "\n".join(p.read_text() for p in (CHART / "templates").glob("*.yaml"))
    assert "Capabilities" not in templates


def test_helm_test_hook_checks_health_and_metrics() -> None:
    hook = find(render(CHART / "ci" / "standalone-values.yaml"), "Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = hook["spec"]["containers"][0]["command"][-1]
    assert "/healthz" in script and "/metrics" in script


def test_chart_files_are_the_repository_files() -> None:
    for name in ("scribe-exporter.rules.yml", "scribe-exporter.dashboard.json"):
        assert (CHART / "files" / name).read_text() == (ROOT / "monitoring" / name).read_text()


def test_chart_readme_lists_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()

    def paths(node: Any, prefix: str = "") -> list[str]:
        if (
            isinstance(node, dict)
            and node
            and prefix
            not in (
                "config",
                "podSecurityContext",
                "securityContext",
                "livenessProbe",
                "readinessProbe",
                "resources",
                "affinity",
                "dashboard.labels",
            )
        ):
            return [p for k, v in node.items() for p in paths(v, f"{prefix}.{k}" if prefix else k)]
        return [prefix]

    for path in paths(values):
        assert f"`{path}`" in readme, f"{path} is not in the chart README"


def test_sharded_mode_renders_a_statefulset() -> None:
    docs = render(CHART / "ci" / "sharded-values.yaml")
    assert not [d for d in docs if d["kind"] == "Deployment"]
    statefulset = find(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    headless = find(docs, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--shard.count=3" in container["args"]
    assert container["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    # The same config (all workspaces) and the same keys in every replica.
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["config.yaml"])
    assert [w["name"] for w in config["workspaces"]] == ["acme", "globex", "initech"]
    monitor = find(docs, "ServiceMonitor")
    assert {"key": "scribe-exporter/headless", "operator": "DoesNotExist"} in monitor["spec"][
        "selector"
    ]["matchExpressions"]
    assert headless["metadata"]["labels"]["scribe-exporter/headless"] == "true"


def test_standalone_values_plus_sharding_enabled_install_sharded(tmp_path: Path) -> None:
    docs = render(CHART / "ci" / "standalone-values.yaml", sets=("sharding.enabled=true",))
    validate(docs, tmp_path)
    assert find(docs, "StatefulSet")["spec"]["replicas"] == 2
    assert not [d for d in docs if d["kind"] == "Deployment"]


def test_sidecar_example_validates(tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "sidecar.yaml").read_text()) if d]
    validate(docs, tmp_path)
    deployment = find(docs, "Deployment")
    [sidecar] = deployment["spec"]["template"]["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert not any("subPath" in m for m in sidecar["volumeMounts"])
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["config.yaml"])
    parse_config(config)
    assert find(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "http-metrics"
