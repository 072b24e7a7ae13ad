#!/usr/bin/env python3
"""Checks deploy/kubernetes/ beyond each object's schema (that is
kubernetes-validate's job, run by scripts/check-deploy.sh): the ServiceMonitor
against the Prometheus Operator's own types, and that the objects fit together
and fit amldns (labels, port names, probes, the config folder mount, the
config inside the ConfigMap). Prints one line per check; exits 1 on a failure.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib

import pydantic
import yaml

FAILED = []


def report(ok, check, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", flush=True)
    if not ok:
        FAILED.append(check)


def load(folder):
    objects = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith((".yaml", ".yml")):
            for doc in yaml.safe_load_all(open(os.path.join(folder, name))):
                if doc:
                    objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def strict_service_monitor(doc):
    """Validates with the models generated from the Prometheus Operator's CRD
    (cloudcoil-models-prometheus-operator), made to reject unknown fields as
    the API server does for a structural schema."""
    from cloudcoil import apimachinery
    from cloudcoil.models.prometheus_operator import v1

    classes = [c for m in (v1, apimachinery) for c in vars(m).values()
               if isinstance(c, type) and issubclass(c, pydantic.BaseModel)
               and not c.__name__.endswith("Builder")]
    for c in classes:
        c.model_config["extra"] = "forbid"
    for c in classes:
        c.model_rebuild(force=True)
    v1.ServiceMonitor.model_validate(doc)


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--amldns", help="an amldns binary, to check the ConfigMap's config")
    args = p.parse_args()
    objs = load(args.folder)

    dep = objs[("Deployment", "amldns")]
    cm = objs[("ConfigMap", "amldns")]
    dns_svc = objs[("Service", "amldns")]
    metrics_svc = objs[("Service", "amldns-metrics")]
    pdb = objs[("PodDisruptionBudget", "amldns")]
    sm = objs[("ServiceMonitor", "amldns")]

    try:
        strict_service_monitor(sm)
        report(True, "kubernetes: ServiceMonitor", "valid against the Prometheus Operator's types")
    except pydantic.ValidationError as e:
        report(False, "kubernetes: ServiceMonitor", str(e).replace("\n", " "))

    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    (c,) = pod["containers"]
    ports = {p["name"]: p for p in c["ports"]}

    problems = []
    if not selects(spec["selector"], pod_labels):
        problems.append("the Deployment's selector misses its pods")
    for svc in (dns_svc, metrics_svc):
        if not selects({"matchLabels": svc["spec"]["selector"]}, pod_labels):
            problems.append(f"Service {svc['metadata']['name']} selects no pod")
        for sp in svc["spec"]["ports"]:
            tp = ports.get(sp["targetPort"])
            if not tp or tp.get("protocol", "TCP") != sp.get("protocol", "TCP"):
                problems.append(f"Service {svc['metadata']['name']} port {sp['name']} has no "
                                "matching container port")
    dns_protocols = {p.get("protocol", "TCP") for p in dns_svc["spec"]["ports"] if p["port"] == 53}
    if dns_protocols != {"UDP", "TCP"}:
        problems.append("the DNS Service does not carry both UDP and TCP 53")
    if not selects(pdb["spec"]["selector"], pod_labels):
        problems.append("the PodDisruptionBudget selects no pod")
    if not selects(sm["spec"]["selector"], metrics_svc["metadata"]["labels"]) \
            or selects(sm["spec"]["selector"], dns_svc["metadata"]["labels"]):
        problems.append("the ServiceMonitor must select amldns-metrics and only it")
    job = metrics_svc["metadata"]["labels"].get(sm["spec"].get("jobLabel", ""),
                                                metrics_svc["metadata"]["name"])
    if job != "amldns":
        problems.append(f'Prometheus would name the job {job!r}; deploy/monitoring/alerts.yml '
                        'expects job="amldns"')
    sm_ports = {e["port"] for e in sm["spec"]["endpoints"]}
    if not sm_ports <= {p["name"] for p in metrics_svc["spec"]["ports"]}:
        problems.append("the ServiceMonitor names a port amldns-metrics lacks")
    report(not problems, "kubernetes: objects fit together",
           "selectors, port names, protocols and the job name match" if not problems else "; ".join(problems))

    problems = []
    if spec["replicas"] < 2:
        problems.append("fewer than 2 replicas")
    if pdb["spec"].get("minAvailable", 0) < 1 or pdb["spec"]["minAvailable"] >= spec["replicas"]:
        problems.append("the PodDisruptionBudget must keep one pod and allow one disruption")
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(t["topologyKey"] == "kubernetes.io/hostname" and selects(t["labelSelector"], pod_labels)
               for t in terms):
        problems.append("no required anti-affinity across nodes")
    probes = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in probes.items():
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "metrics":
            problems.append(f"{probe} must GET {path} on the metrics port")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
        problems.append("not forced to a non-root user")
    if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False:
        problems.append("root file system writable or privilege escalation allowed")
    if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
        problems.append("capabilities must be drop ALL, add none")
    sysctls = {s["name"]: s["value"] for s in psc.get("sysctls", [])}
    if int(sysctls.get("net.ipv4.ip_unprivileged_port_start", "1024")) > 53:
        problems.append("a non-root pod cannot bind 53 without net.ipv4.ip_unprivileged_port_start")
    report(not problems, "kubernetes: Deployment",
           f"{spec['replicas']} replicas on different nodes, probes on /readyz and /healthz, "
           "non-root, read-only root, no capabilities" if not problems else "; ".join(problems))

    # The config: mounted as a folder (a subPath mount never sees updates),
    # the folder amldns is told to read, and what amldns itself accepts.
    problems = []
    mounts = [m for m in c.get("volumeMounts", []) if m["name"] in
              {v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "amldns"}]
    args_ = c.get("args", [])
    config_path = args_[args_.index("--config") + 1] if "--config" in args_ else None
    if len(mounts) != 1 or "subPath" in mounts[0] or "subPathExpr" in mounts[0]:
        problems.append("the ConfigMap must be mounted once, as a folder (no subPath)")
    elif config_path is None or os.path.dirname(config_path) != mounts[0]["mountPath"].rstrip("/"):
        problems.append("--config does not point into the ConfigMap's folder")
    elif os.path.basename(config_path) not in cm["data"]:
        problems.append(f"the ConfigMap has no key {os.path.basename(config_path)}")
    if not problems:
        toml = tomllib.loads(cm["data"][os.path.basename(config_path)])
        listen = toml.get("server", {}).get("listen", ["0.0.0.0:53"])
        metrics = toml.get("metrics", {}).get("listen")
        if metrics != f"0.0.0.0:{ports['metrics']['containerPort']}":
            problems.append(f"[metrics] listen is {metrics!r}: probes need 0.0.0.0 on the metrics port")
        if f"0.0.0.0:{ports['dns-udp']['containerPort']}" not in listen:
            problems.append(f"[server] listen {listen} misses the container's DNS port")
    report(not problems, "kubernetes: ConfigMap mount",
           f"a folder at {mounts[0]['mountPath']} (reloads on ..data swaps), listen and metrics "
           "match the ports" if not problems else "; ".join(problems))

    if args.amldns and not problems:
        with tempfile.TemporaryDirectory() as d:
            for key, value in cm["data"].items():
                with open(os.path.join(d, key), "w") as f:
                    f.write(value)
            r = subprocess.run([args.amldns, "check", "--config",
                                os.path.join(d, os.path.basename(config_path))],
                               capture_output=True, text=True, timeout=30)
        report(r.returncode == 0, "kubernetes: ConfigMap config",
               "amldns check accepts it" if r.returncode == 0 else r.stderr.strip())
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
