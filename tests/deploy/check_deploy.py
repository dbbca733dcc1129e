#!/usr/bin/env python3
"""Checks of deploy/ and the Dockerfile with the tools their users run (ctest label "deploy").

  check_deploy.py k8s         kubectl kustomize renders base+overlays; kubernetes-validate --strict
                              against the schemas of Kubernetes 1.27 (gRPC probes GA) and 1.37;
                              what the issue asks of the manifests; kvserve accepts the ConfigMap
  check_deploy.py prometheus  promtool check config / check rules / test rules; every alert tested
  check_deploy.py grafana     dashboard JSON: panels, datasource variable, the metrics covered
  check_deploy.py nginx       nginx -t on the shipped server block
  check_deploy.py dockerfile  hadolint

Run from the repository root. Tools: scripts/setup.sh (Debian packages; PyPI into .venv/).
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)
        print(f"FAIL: {message}")
    return condition


SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def tool(name):
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and pathlib.Path(candidate).exists():
            return str(candidate)
    if name == "kubectl":
        # Not in Debian 12 in a version with kustomize v5; see README, Deploy.
        print("SKIP: kubectl not installed (https://kubernetes.io/docs/tasks/tools/)")
        sys.exit(SKIP)
    sys.exit(f"{name} not found: run scripts/setup.sh")


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


# --- Kubernetes -------------------------------------------------------------------------------


def render(overlay):
    r = run([tool("kubectl"), "kustomize", str(ROOT / "deploy/k8s" / overlay)])
    if not check(r.returncode == 0, f"kubectl kustomize {overlay}: {r.stderr.strip()}"):
        return [], ""
    return [d for d in yaml.safe_load_all(r.stdout) if d], r.stdout


def validate(overlay, text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        for version in ("1.27.0", "1.37.0"):
            r = run([tool("kubernetes-validate"), "--strict", "-k", version, f.name])
            out = r.stdout + r.stderr
            # Only KEDA's CRD has no schema in kubernetes-validate; it is checked by hand below.
            missing = re.findall(r"Couldn't find schema for kind (\w+)", out)
            check(set(missing) <= {"ScaledObject"}, f"{overlay} @ {version}: no schema for {missing}")
            errors = [l for l in out.splitlines() if l.startswith("ERROR")]
            check(r.returncode in (0, 1) and not errors,
                  f"{overlay} @ {version}: kubernetes-validate: {errors or out[-2000:]}")
            passed = len(re.findall(r"passed for resource", out))
            check(passed == 6, f"{overlay} @ {version}: {passed} resources passed, want 6:\n{out}")


def by_kind(docs):
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    return kinds


def config_toml(kinds):
    return kinds["ConfigMap"][0]["data"]["kvserve.toml"]


def toml_value(toml, key):
    m = re.search(rf"^{re.escape(key)}\s*=\s*(.+)$", toml, re.M)
    return m.group(1).strip().strip('"') if m else None


def check_manifests(overlay, docs):
    kinds = by_kind(docs)
    for kind in ("Deployment", "Service", "ConfigMap", "PersistentVolumeClaim",
                 "PodDisruptionBudget", "ScaledObject"):
        check(kind in kinds, f"{overlay}: no {kind}")
    if "Deployment" not in kinds:
        return
    deploy = kinds["Deployment"][0]
    pod = deploy["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "kvserve")
    probes = {p: server.get(p, {}).get("grpc") for p in
              ("startupProbe", "livenessProbe", "readinessProbe")}
    check(all(probes.values()), f"{overlay}: every probe is a grpc probe: {probes}")
    if all(probes.values()):
        check(probes["livenessProbe"].get("service") == "", f"{overlay}: liveness service \"\"")
        check(probes["readinessProbe"].get("service") == "kvserve.v1.Inference",
              f"{overlay}: readiness service kvserve.v1.Inference")
        check(probes["startupProbe"].get("service") == "kvserve.v1.Inference",
              f"{overlay}: startup service kvserve.v1.Inference")
    pre_stop = server.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    check(pre_stop[:1] == ["sleep"], f"{overlay}: preStop sleeps: {pre_stop}")
    sleep_s = float(pre_stop[1]) if len(pre_stop) > 1 else 0
    drain_s = float(toml_value(config_toml(kinds), "drain-timeout") or 30)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > sleep_s + drain_s,
          f"{overlay}: terminationGracePeriodSeconds {grace} > preStop {sleep_s} + drain {drain_s}")
    sc = server.get("securityContext", {})
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{overlay}: runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{overlay}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{overlay}: no privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{overlay}: capabilities dropped")
    check(server.get("resources", {}).get("requests"), f"{overlay}: resource requests")
    init = pod.get("initContainers", [])
    check(any("fetch-model.sh" in " ".join(c.get("command", [])) for c in init),
          f"{overlay}: an init container fetches the model")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v]
    pvcs = [p["metadata"]["name"] for p in kinds.get("PersistentVolumeClaim", [])]
    check(claims and set(claims) <= set(pvcs), f"{overlay}: model volume {claims} is a PVC {pvcs}")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    check(ports.get("grpc") == int(toml_value(config_toml(kinds), "port")),
          f"{overlay}: container grpc port matches the config's")
    check(ports.get("metrics") == int(toml_value(config_toml(kinds), "metrics-port")),
          f"{overlay}: container metrics port matches the config's")
    services = {s["metadata"]["name"]: s for s in kinds.get("Service", [])}
    check({p["name"] for p in services.get("kvserve", {}).get("spec", {}).get("ports", [])}
          == {"grpc", "metrics"}, f"{overlay}: Service kvserve has grpc and metrics")
    check(services.get("kvserve-headless", {}).get("spec", {}).get("clusterIP") == "None",
          f"{overlay}: headless Service")
    selector = deploy["spec"]["selector"]["matchLabels"]
    for s in services.values():
        check(all(s["spec"]["selector"].get(k) == v for k, v in selector.items()),
              f"{overlay}: Service {s['metadata']['name']} selects the Deployment's pods")
    pdb = kinds.get("PodDisruptionBudget", [{}])[0]
    check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == selector,
          f"{overlay}: the PDB selects the Deployment's pods")
    so = kinds.get("ScaledObject", [{}])[0]
    check(so.get("apiVersion") == "keda.sh/v1alpha1", f"{overlay}: KEDA ScaledObject")
    check(so.get("spec", {}).get("scaleTargetRef", {}).get("name") == deploy["metadata"]["name"],
          f"{overlay}: ScaledObject scales the Deployment")
    triggers = so.get("spec", {}).get("triggers", [])
    check(any(t["type"] == "prometheus" and "kvserve_num_requests_waiting" in t["metadata"]["query"]
              and float(t["metadata"]["threshold"]) > 0 for t in triggers),
          f"{overlay}: ScaledObject triggers on kvserve_num_requests_waiting")
    image = server["image"]
    if overlay == "gpu":
        limits = server["resources"].get("limits", {})
        check(str(limits.get("nvidia.com/gpu")) == "1", f"gpu: nvidia.com/gpu: 1 ({limits})")
        shm = [v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
        mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
        check(shm and mounts.get(shm[0]["name"]) == "/dev/shm", "gpu: memory-backed /dev/shm")
        check(any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])),
              "gpu: tolerates nvidia.com/gpu taints")
        check(image.endswith(":cuda"), f"gpu: the CUDA image ({image})")
        check(toml_value(config_toml(kinds), "backend") == "cuda", "gpu: backend = cuda")
    else:
        check(image.endswith(":cpu"), f"cpu: the CPU image ({image})")
        check(toml_value(config_toml(kinds), "backend") == "cpu", "cpu: backend = cpu")


def check_config_accepted(overlay, toml):
    """kvserve reads the ConfigMap's file: every key is a flag it knows (model swapped for the
    test model, ports for ephemeral ones, loopback)."""
    binary = ROOT / "build/bin/kvserve"
    if not check(binary.exists(), f"{binary} missing: build first"):
        return
    stories = ROOT / "tests/data/stories260K"
    toml = re.sub(r"^model = .*$", f'model = "{stories}/stories260K.bin"\n'
                  f'tokenizer = "{stories}/tok512.bin"', toml, flags=re.M)
    toml = re.sub(r"^(port|metrics-port) = .*$", r"\1 = 0", toml, flags=re.M)
    toml = re.sub(r"^host = .*$", 'host = "127.0.0.1"', toml, flags=re.M)
    toml = re.sub(r"^backend = .*$", 'backend = "cpu"', toml, flags=re.M)
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "kvserve.toml"
        path.write_text(toml)
        log = pathlib.Path(d) / "log"
        with open(log, "w") as out:
            proc = subprocess.Popen([str(binary), "--config", str(path)], stdout=out,
                                    stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None and "ready:" not in log.read_text():
                time.sleep(0.1)
            proc.terminate()
            proc.wait(timeout=30)
        check("ready:" in log.read_text(),
              f"{overlay}: kvserve did not accept the ConfigMap's file:\n{log.read_text()[-1500:]}")


def check_k8s():
    for overlay in ("cpu", "gpu"):
        docs, text = render(overlay)
        if not docs:
            continue
        validate(overlay, text)
        check_manifests(overlay, docs)
        check_config_accepted(overlay, config_toml(by_kind(docs)))
    base, _ = render("base")
    check(len(base) == 7, f"base renders 7 objects, got {len(base)}")


# --- Prometheus -------------------------------------------------------------------------------


def check_prometheus():
    d = ROOT / "deploy/prometheus"
    promtool = tool("promtool")
    for config in ("prometheus.yml", "prometheus-local.yml"):
        r = run([promtool, "check", "config", str(d / config)])
        check(r.returncode == 0, f"promtool check config {config}: {r.stdout}{r.stderr}")
    r = run([promtool, "check", "rules", str(d / "alerts.yml")])
    check(r.returncode == 0, f"promtool check rules: {r.stdout}{r.stderr}")
    r = run([promtool, "test", "rules", "alerts_test.yml"], cwd=d)
    check(r.returncode == 0, f"promtool test rules: {r.stdout}{r.stderr}")
    alerts = [rule["alert"] for g in yaml.safe_load((d / "alerts.yml").read_text())["groups"]
              for rule in g["rules"] if "alert" in rule]
    tests = yaml.safe_load((d / "alerts_test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c["exp_alerts"]}
    for alert in alerts:
        check(alert in fired, f"alert {alert} has no test case where it fires")
        check(alert in quiet, f"alert {alert} has no test case where it stays quiet")
    wanted = ["kvserve_time_to_first_token_seconds", "kvserve_inter_token_latency_seconds",
              "kvserve_num_requests_waiting", "kvserve_kv_cache_usage_ratio",
              "kvserve_kv_host_usage_ratio", "kvserve_num_preemptions_total",
              "kvserve_freekv_corrections_total", "up{"]
    text = (d / "alerts.yml").read_text()
    for metric in wanted:
        check(metric in text, f"no alert on {metric}")
    podmonitor = yaml.safe_load((d / "podmonitor.yaml").read_text())
    check(podmonitor["kind"] == "PodMonitor" and
          podmonitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics", "PodMonitor on metrics")


# --- Grafana ----------------------------------------------------------------------------------


def check_grafana():
    d = ROOT / "deploy/grafana"
    dash = json.loads((d / "dashboards/kvserve.json").read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    check(variables.get("datasource", {}).get("type") == "datasource", "datasource variable")
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    check(all(p["datasource"]["uid"] == "${datasource}" for p in dash["panels"]),
          "every panel uses the datasource variable")
    check(len({p["id"] for p in dash["panels"]}) == len(dash["panels"]), "panel ids unique")
    joined = "\n".join(exprs)
    for needed in ["kvserve_request_success_total", "finished_reason",
                   "kvserve_time_to_first_token_seconds_bucket",
                   "kvserve_inter_token_latency_seconds_bucket",
                   "kvserve_e2e_request_latency_seconds_bucket", "kvserve_prompt_tokens_total",
                   "kvserve_generation_tokens_total", "kvserve_num_requests_running",
                   "kvserve_num_requests_waiting", "kvserve_kv_cache_usage_ratio",
                   "kvserve_kv_host_usage_ratio", "kvserve_kv_recall_bytes_total",
                   "kvserve_freekv_corrections_total", "kvserve_kv_tokens_kept_ratio",
                   "by (policy)", "kvserve_num_preemptions_total"]:
        check(needed in joined, f"no panel uses {needed}")
    for q in ("0.5", "0.9", "0.99"):
        for h in ("time_to_first_token", "inter_token_latency", "e2e_request_latency"):
            check(f"histogram_quantile({q}, sum by (le) (rate(kvserve_{h}_seconds_bucket" in joined,
                  f"no p{q} of {h}")
    provider = yaml.safe_load((d / "provisioning/dashboards/kvserve.yml").read_text())
    check(provider["providers"][0]["type"] == "file", "dashboard provider")
    ds = yaml.safe_load((d / "provisioning/datasources/prometheus.yml").read_text())
    check(ds["datasources"][0]["type"] == "prometheus", "datasource provisioning")


# --- nginx ------------------------------------------------------------------------------------


def check_nginx():
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not check(os.path.exists(nginx), "nginx not installed: run scripts/setup.sh"):
        return
    shipped = (ROOT / "deploy/nginx/kvserve.conf").read_text()
    check("grpc_pass grpc://kvserve_grpc" in shipped, "grpc_pass to the upstream")
    with tempfile.TemporaryDirectory() as d:
        # The headless Service's name does not resolve here: the syntax check uses an address.
        conf = re.sub(r"server \S+:50051", "server 127.0.0.1:50051", shipped)
        (pathlib.Path(d) / "kvserve.conf").write_text(conf)
        (pathlib.Path(d) / "nginx.conf").write_text(
            f"pid {d}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
            f"http {{ access_log off; include {d}/kvserve.conf; }}\n")
        r = run([nginx, "-t", "-p", d, "-c", f"{d}/nginx.conf"])
        check(r.returncode == 0, f"nginx -t: {r.stderr}")


# --- Dockerfile -------------------------------------------------------------------------------


def check_dockerfile():
    r = run([tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")])
    check(r.returncode == 0, f"hadolint Dockerfile:\n{r.stdout}{r.stderr}")
    text = (ROOT / "Dockerfile").read_text()
    check("debian:bookworm-slim" in text, "CPU runtime on debian:bookworm-slim")
    check(re.search(r"nvidia/cuda:\S+-devel", text) and re.search(r"nvidia/cuda:\S+-runtime", text),
          "CUDA build and runtime images")
    check(re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD \[\"[^\"]*kvserve-cli\", \"health\"", text, re.M),
          "HEALTHCHECK runs kvserve-cli health")
    check(re.search(r"^USER \d+", text, re.M), "a non-root USER")
    check(re.search(r"^ARG BACKEND=cpu", text, re.M), "BACKEND build argument, cpu by default")
    ignore = (ROOT / ".dockerignore").read_text().split()
    for path in ("build", "models", ".git"):
        check(any(p.strip("/") == path or p.strip("/") == path + "/" for p in ignore),
              f".dockerignore leaves out {path}")


CHECKS = {"k8s": check_k8s, "prometheus": check_prometheus, "grafana": check_grafana,
          "nginx": check_nginx, "dockerfile": check_dockerfile}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(CHECKS)}")
    CHECKS[sys.argv[1]]()
    if FAILURES:
        sys.exit(f"{len(FAILURES)} check(s) failed")
    print(f"{sys.argv[1]}: all checks passed")
