"""test_packaging.py - the install artefacts: manifests/, charts/keyrotator, Dockerfile.

Plain YAML (manifests, crds, Chart.yaml, values.yaml) is read with the project's own parser
through the yaml2json test tool. Helm templates are not YAML: they are checked as text (every
.Values reference exists, every value is used, actions balance) and as a "skeleton" (each
action replaced by a placeholder, both branches of every if kept) that must parse as YAML.

Environment: KR_YAML2JSON (the yaml2json tool), KR_BINARY (keyrotator, for `run --help` and
ldd), KR_ROOT (the repository; default: two levels up).
"""
import json
import os
import re
import subprocess
import unittest
from pathlib import Path

import helmlite

ROOT = Path(os.environ.get("KR_ROOT", Path(__file__).resolve().parents[2]))
YAML2JSON = os.environ.get("KR_YAML2JSON", "")
BINARY = os.environ.get("KR_BINARY", "")
CHART = ROOT / "charts" / "keyrotator"

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
NAMESPACE = "keyrotator-system"
SECRET_VERBS = {"get", "create", "update", "patch"}
READ_VERBS = {"get", "list", "watch"}
ALL_VERBS = READ_VERBS | {"create", "update", "patch", "delete", "deletecollection"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
# The controller's rules on the key store API (issue 17): read the stores, write their status.
KEYSTORE_RULES = {
    ("keyrotator.io", "keystores"): READ_VERBS,
    ("keyrotator.io", "keystores/status"): {"update", "patch"},
    ("keyrotator.io", "clusterkeystores"): READ_VERBS,
    ("keyrotator.io", "clusterkeystores/status"): {"update", "patch"},
    ("", "namespaces"): {"get"},
}
# What no Role can grant, in namespaced mode's small ClusterRole.
CLUSTER_ONLY = {"clusterkeystores", "clusterkeystores/status", "namespaces"}


def load_yaml(path):
    """Every document of a YAML file, through the project's parser."""
    if not YAML2JSON:
        raise AssertionError("KR_YAML2JSON not set (CTest sets it)")
    out = subprocess.run([YAML2JSON, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"{path}: does not parse: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def load_text_yaml(text, name):
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"kr-packaging-{os.getpid()}-{name}"
    tmp.write_text(text)
    try:
        return load_yaml(tmp)
    finally:
        tmp.unlink()


def project_version():
    m = re.search(r"project\(keyrotator VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text())
    return m.group(1)


def manifest_docs():
    docs = []
    for path in sorted((ROOT / "manifests").glob("*.yaml")):
        docs += [(path.name, d) for d in load_yaml(path)]
    for path in sorted((ROOT / "manifests" / "namespaced").glob("*.yaml")):
        docs += [("namespaced/" + path.name, d) for d in load_yaml(path)]
    return docs


def pod_spec(deploy):
    return deploy["spec"]["template"]["spec"]


class SecurityChecks:
    """The restricted pod security profile, shared by the manifest and chart tests."""

    def check_security(self, deploy, where):
        spec = pod_spec(deploy)
        psc = spec["securityContext"]
        self.assertIs(psc.get("runAsNonRoot"), True, where)
        self.assertEqual(psc.get("runAsUser"), 65532, where)
        self.assertEqual(psc.get("seccompProfile", {}).get("type"), "RuntimeDefault", where)
        self.assertEqual(len(spec["containers"]), 1, where)
        c = spec["containers"][0]
        sc = c["securityContext"]
        self.assertIs(sc.get("runAsNonRoot"), True, where)
        self.assertEqual(sc.get("runAsUser"), 65532, where)
        self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)
        self.assertIs(sc.get("allowPrivilegeEscalation"), False, where)
        self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], where)
        self.assertNotIn("add", sc.get("capabilities", {}), where)
        self.assertEqual(sc.get("seccompProfile", {}).get("type"), "RuntimeDefault", where)
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz", where)
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz", where)
        self.assertEqual(c["livenessProbe"]["httpGet"]["port"], "health", where)
        self.assertEqual(c["readinessProbe"]["httpGet"]["port"], "health", where)
        res = c["resources"]
        if not any(k.startswith("tpl") for k in res):  # in the chart: values.resources
            self.assertIn("requests", res, where)
            self.assertIn("limits", res, where)

    def check_rules(self, rules, where, cluster_wide):
        for r in rules:
            for field in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", r[field], f"{where}: wildcard {field}")
            if "" in r["apiGroups"] and "secrets" in r["resources"]:
                # Never list or watch: the controller reads Secrets by name only.
                self.assertLessEqual(set(r["verbs"]), SECRET_VERBS, f"{where}: Secret verbs")
            if "leases" in r["resources"]:
                self.assertFalse(cluster_wide, f"{where}: leases belong in a namespaced Role")
        granted = {(g, res): set(r["verbs"]) for r in rules for g in r["apiGroups"]
                   for res in r["resources"]}
        return granted


class TestManifests(unittest.TestCase, SecurityChecks):
    def setUp(self):
        self.docs = manifest_docs()
        self.by_kind = {}
        for name, d in self.docs:
            self.by_kind.setdefault(d["kind"], []).append((name, d))

    def test_every_file_parses_with_identity(self):
        self.assertGreaterEqual(len(self.docs), 8)
        for name, d in self.docs:
            for field in ("apiVersion", "kind", "metadata"):
                self.assertIn(field, d, name)
            self.assertTrue(d["metadata"].get("name"), name)

    def test_install_order_namespace_first(self):
        # kubectl apply -f manifests/ goes in file-name order: the namespace must come first.
        files = sorted(p.name for p in (ROOT / "manifests").glob("*.yaml"))
        first = load_yaml(ROOT / "manifests" / files[0])
        self.assertEqual([d["kind"] for d in first], ["Namespace"])
        self.assertEqual(first[0]["metadata"]["name"], NAMESPACE)

    def test_standard_labels(self):
        version = project_version()
        for name, d in self.docs:
            labels = d["metadata"].get("labels", {})
            for key in STANDARD_LABELS:
                self.assertIn(key, labels, f"{name} {d['kind']} {d['metadata']['name']}")
            self.assertEqual(labels["app.kubernetes.io/name"], "keyrotator", name)
            self.assertEqual(labels["app.kubernetes.io/part-of"], "keyrotator", name)
            self.assertEqual(labels["app.kubernetes.io/component"], "controller", name)
            self.assertEqual(labels["app.kubernetes.io/version"], version, name)

    def test_namespaced_objects_in_keyrotator_system(self):
        for name, d in self.docs:
            if d["kind"] in ("ServiceAccount", "Deployment", "Service"):
                self.assertEqual(d["metadata"].get("namespace"), NAMESPACE, name)

    def test_deployment(self):
        [(name, dep)] = self.by_kind["Deployment"]
        self.assertEqual(dep["spec"]["replicas"], 2)
        self.check_security(dep, name)
        sel = dep["spec"]["selector"]["matchLabels"]
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(sel.items(), pod_labels.items())
        self.assertEqual(pod_spec(dep)["serviceAccountName"], "keyrotator")
        c = pod_spec(dep)["containers"][0]
        self.assertEqual(c["image"], f"keyrotator/keyrotator:{project_version()}")
        self.assertEqual(c["args"][0], "run")
        self.assertIn("--leader-elect", c["args"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertIn("--metrics-addr=:%d" % ports["metrics"], c["args"])
        self.assertIn("--health-addr=:%d" % ports["health"], c["args"])

    def test_deployment_flags_exist_in_run_help(self):
        if not BINARY:
            self.fail("KR_BINARY not set (CTest sets it)")
        help_text = subprocess.run([BINARY, "run", "--help"], capture_output=True,
                                   text=True, check=True).stdout
        [(_, dep)] = self.by_kind["Deployment"]
        for arg in pod_spec(dep)["containers"][0]["args"][1:]:
            flag = arg.split("=")[0]
            self.assertRegex(help_text, r"\s%s[\s\[=]" % re.escape(flag), flag)

    def test_service_selects_the_pods(self):
        [(_, svc)] = self.by_kind["Service"]
        [(_, dep)] = self.by_kind["Deployment"]
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(svc["spec"]["selector"].items(), pod_labels.items())
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "metrics")

    def role(self, kind, name, file_prefix=""):
        [doc] = [d for n, d in self.by_kind.get(kind, []) if d["metadata"]["name"] == name
                 and n.startswith(file_prefix)]
        return doc

    def test_rbac_least_privilege(self):
        for kind in ("ClusterRole", "Role"):
            for name, role in self.by_kind.get(kind, []):
                granted = self.check_rules(role["rules"], name, kind == "ClusterRole")
                self.assertFalse({"list", "watch"} & granted.get(("", "secrets"), set()), name)
        cr = self.role("ClusterRole", "keyrotator-controller", "20-")
        granted = self.check_rules(cr["rules"], "ClusterRole", True)
        self.assertEqual(granted[("apps", "deployments")], {"get", "list", "watch", "patch"})
        self.assertEqual(granted[("keyrotator.io", "keyrotations/status")],
                         {"get", "update", "patch"})
        self.assertEqual(granted[("events.k8s.io", "events")], {"create", "patch"})
        self.assertEqual(granted[("", "secrets")], SECRET_VERBS)
        for key, verbs in KEYSTORE_RULES.items():
            self.assertEqual(granted.get(key), verbs, key)
        # The controller never writes a key store's spec: that is an administrator's.
        for res in ("keystores", "clusterkeystores"):
            self.assertFalse(granted[("keyrotator.io", res)] - READ_VERBS, res)

    def test_namespaced_variant(self):
        docs = [(n, d) for n, d in self.docs if n.startswith("namespaced/")]
        kinds = [d["kind"] for _, d in docs]
        self.assertEqual(kinds.count("Role"), 3)  # controller, key store Secrets, leases
        self.assertEqual(kinds.count("ClusterRole"), 1)
        self.assertEqual(kinds.count("ClusterRoleBinding"), 1)
        # Its one ClusterRole holds only what no Role can grant: ClusterKeyStores and the
        # watched namespace's labels (by resourceNames), nothing on Secrets or workloads.
        [cr] = [d for _, d in docs if d["kind"] == "ClusterRole"]
        self.assertEqual(cr["metadata"]["name"], "keyrotator-controller-sirius")
        self.check_rules(cr["rules"], "namespaced ClusterRole", True)
        for r in cr["rules"]:
            self.assertLessEqual(set(r["resources"]), CLUSTER_ONLY, r)
            if "namespaces" in r["resources"]:
                self.assertEqual((r["verbs"], r.get("resourceNames")), (["get"], ["sirius"]))
        [crb] = [d for _, d in docs if d["kind"] == "ClusterRoleBinding"]
        self.assertEqual(crb["roleRef"]["name"], cr["metadata"]["name"])
        # The namespaced Role's rules are the ClusterRole's, less the cluster-only ones.
        main = self.role("Role", "keyrotator-controller", "namespaced/")
        self.assertEqual(main["metadata"]["namespace"], "sirius")
        cluster = self.role("ClusterRole", "keyrotator-controller", "20-")
        self.assertEqual(main["rules"], [r for r in cluster["rules"]
                                         if not set(r["resources"]) & CLUSTER_ONLY])
        self.assertEqual([{k: v for k, v in r.items() if k != "resourceNames"}
                          for r in cr["rules"]],
                         [r for r in cluster["rules"] if set(r["resources"]) & CLUSTER_ONLY])
        # ClusterKeyStores' password Secrets, in the controller's namespace: get only.
        secrets = self.role("Role", "keyrotator-keystore-secrets", "namespaced/")
        self.assertEqual(secrets["metadata"]["namespace"], NAMESPACE)
        self.assertEqual(secrets["rules"], [{"apiGroups": [""], "resources": ["secrets"],
                                             "verbs": ["get"]}])

    def test_people_roles(self):
        roles = {d["metadata"]["name"]: d for n, d in self.docs
                 if n == "25-roles.yaml" and d["kind"] == "ClusterRole"}
        self.assertEqual(set(roles), {"keyrotator-view", "keyrotator-edit",
                                      "keyrotator-keystore-admin"})
        self.assertEqual([d["kind"] for n, d in self.docs if n == "25-roles.yaml"],
                         ["ClusterRole"] * 3, "roles only: bindings are the user's")
        check_people_roles(self, {n[len("keyrotator"):]: r for n, r in roles.items()},
                           "25-roles.yaml")

    def test_bindings_name_the_service_account(self):
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            for name, b in self.by_kind.get(kind, []):
                self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "keyrotator",
                                                  "namespace": NAMESPACE}], name)


def check_people_roles(test, roles, where):
    """roles: {"-view": ClusterRole, "-edit": ..., "-keystore-admin": ...}."""
    def labels(role):
        return {k: v for k, v in role["metadata"].get("labels", {}).items()
                if k.startswith(AGGREGATE)}

    def granted(role):
        test.check_rules(role["rules"], where, True)
        out = {}
        for r in role["rules"]:
            test.assertEqual(r["apiGroups"], ["keyrotator.io"], f"{where}: {r}")
            for res in r["resources"]:
                out.setdefault(res, set()).update(r["verbs"])
        return out

    view, edit, admin = roles["-view"], roles["-edit"], roles["-keystore-admin"]
    test.assertEqual(labels(view), {AGGREGATE + "view": "true"}, where)
    test.assertEqual(granted(view), {"keyrotations": READ_VERBS, "keystores": READ_VERBS,
                                     "clusterkeystores": READ_VERBS}, where)
    test.assertEqual(labels(edit), {AGGREGATE + "edit": "true", AGGREGATE + "admin": "true"},
                     where)
    # edit writes KeyRotations and nothing else: no key store, no status subresource.
    test.assertEqual(granted(edit), {"keyrotations": ALL_VERBS}, where)
    test.assertEqual(labels(admin), {}, f"{where}: keystore-admin must not be aggregated")
    test.assertEqual(granted(admin), {
        "keystores": ALL_VERBS, "clusterkeystores": ALL_VERBS,
        "keystores/status": {"get", "update", "patch"},
        "clusterkeystores/status": {"get", "update", "patch"}}, where)


# ---- the Helm chart ----

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
BLOCK_OPEN = re.compile(r"^(if|range|with|define|block)\b")


def templates():
    return sorted(p for p in (CHART / "templates").iterdir() if p.is_file())


def skeleton(text):
    """The template as YAML: comment and control actions dropped (both branches kept),
    `include`/`toYaml` lines replaced by a placeholder key (or list item), inline actions by
    a word. Placeholder keys name the helper they stand for."""
    out, n = [], 0
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}\n?", "", text, flags=re.S)
    for line in text.splitlines():
        stripped = line.strip()
        m = ACTION.fullmatch(stripped)
        if m:
            body = m.group(1)
            if BLOCK_OPEN.match(body) or body.startswith(("else", "end", "$")):
                continue
            n += 1
            indent = line[: len(line) - len(line.lstrip())]
            inc = re.match(r'include "([^"]+)"', body)
            key = f"tpl{n}_{inc.group(1)}" if inc else f"tpl{n}"
            # A list item when the nearest line at this indentation or less is one.
            prev = next((l for l in reversed(out) if l.strip() and
                         len(l) - len(l.lstrip()) <= len(indent)), "")
            if prev.startswith(indent + "- "):
                out.append(f"{indent}- {key}")
            else:
                out.append(f"{indent}{key}: x")
            continue
        out.append(ACTION.sub("X", line))
    return "\n".join(out) + "\n"


class TestChart(unittest.TestCase, SecurityChecks):
    def setUp(self):
        [self.chart] = load_yaml(CHART / "Chart.yaml")
        [self.values] = load_yaml(CHART / "values.yaml")

    def test_chart_yaml(self):
        self.assertEqual(self.chart["apiVersion"], "v2")
        self.assertEqual(self.chart["name"], "keyrotator")
        self.assertEqual(self.chart["appVersion"], project_version())
        self.assertRegex(self.chart["version"], r"^\d+\.\d+\.\d+")

    def test_chart_crds_equal_top_level_crds(self):
        top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
        chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
        self.assertEqual(sorted(top), ["keyrotator.io_clusterkeystores.yaml",
                                       "keyrotator.io_keyrotations.yaml",
                                       "keyrotator.io_keystores.yaml"])
        self.assertEqual(sorted(chart), sorted(top), "charts/keyrotator/crds/ file set")
        for name in top:
            self.assertEqual(chart[name], top[name],
                             f"charts/keyrotator/crds/{name} differs from crds/{name}: "
                             f"cp crds/*.yaml charts/keyrotator/crds/")
        for name in chart:
            [crd] = load_yaml(CHART / "crds" / name)
            self.assertEqual(crd["kind"], "CustomResourceDefinition", name)
            self.assertEqual(crd["spec"]["group"], "keyrotator.io", name)
            self.assertEqual(crd["metadata"]["name"],
                             crd["spec"]["names"]["plural"] + ".keyrotator.io", name)
            self.assertEqual(name, "keyrotator.io_" + crd["spec"]["names"]["plural"] + ".yaml")
            self.assertEqual([v["name"] for v in crd["spec"]["versions"]], ["v1alpha1"], name)

    def test_values_are_camel_case_and_documented(self):
        lines = (CHART / "values.yaml").read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^([A-Za-z0-9_]+):", line)
            if not m:
                continue
            self.assertRegex(m.group(1), r"^[a-z][a-zA-Z0-9]*$", "camelCase")
            self.assertTrue(i > 0 and lines[i - 1].startswith("#"),
                            f"values.yaml: {m.group(1)} has no comment above it")

    def test_every_value_reference_exists_and_every_value_is_used(self):
        used = set()
        for path in templates():
            for ref in VALUES_REF.findall(path.read_text()):
                parts = ref.strip(".").split(".")
                node = self.values
                for p in parts:
                    self.assertIsInstance(node, dict, f"{path.name}: .Values{ref}")
                    self.assertIn(p, node, f"{path.name}: .Values{ref} is not in values.yaml")
                    node = node[p]
                used.add(parts[0])
        self.assertEqual(set(self.values) - used, set(), "values no template uses")

    def test_actions_balance(self):
        for path in templates():
            text = path.read_text()
            self.assertEqual(text.count("{{"), text.count("}}"), path.name)
            depth = 0
            for body in ACTION.findall(text):
                if body.startswith("/*"):
                    continue
                if BLOCK_OPEN.match(body):
                    depth += 1
                elif body == "end":
                    depth -= 1
                    self.assertGreaterEqual(depth, 0, f"{path.name}: stray end")
            self.assertEqual(depth, 0, f"{path.name}: unclosed if/range/with/define")

    def test_helpers_define_standard_labels(self):
        text = (CHART / "templates" / "_helpers.tpl").read_text()
        labels = text.split('define "keyrotator.labels"')[1].split("{{- end }}")[0]
        selector = text.split('define "keyrotator.selectorLabels"')[1].split("{{- end }}")[0]
        for key in STANDARD_LABELS + ("helm.sh/chart",):
            self.assertIn(key + ":", labels + selector, key)
        self.assertIn('include "keyrotator.selectorLabels"', labels)
        self.assertNotIn("version", selector, "selector labels must not change on upgrade")

    def test_templates_parse_as_yaml_skeletons_with_labels(self):
        kinds = []
        for path in templates():
            if path.suffix != ".yaml":
                continue
            docs = load_text_yaml(skeleton(path.read_text()), path.name)
            for d in docs:
                kinds.append(d["kind"])
                labels = d["metadata"]["labels"]
                self.assertTrue(any(k.endswith("_keyrotator.labels") for k in labels),
                                f"{path.name}: {d['kind']} lacks keyrotator.labels")
        for kind in ("ServiceAccount", "X", "XBinding", "Role", "RoleBinding", "Deployment",
                     "Service", "ServiceMonitor", "PodDisruptionBudget"):
            self.assertIn(kind, kinds)

    def test_deployment_template_security(self):
        [dep] = load_text_yaml(skeleton((CHART / "templates" / "deployment.yaml").read_text()),
                               "deployment.yaml")
        self.check_security(dep, "templates/deployment.yaml")
        self.assertIn("requests", self.values["resources"])
        self.assertIn("limits", self.values["resources"])
        self.assertEqual(self.values["replicaCount"], 2)
        self.assertIs(self.values["leaderElect"], True)

    def test_rbac_template_rules(self):
        docs = load_text_yaml(skeleton((CHART / "templates" / "rbac.yaml").read_text()),
                              "rbac.yaml")
        roles = [d for d in docs if d["kind"] in ("X", "Role", "ClusterRole")]
        self.assertEqual([d["kind"] for d in roles], ["X", "ClusterRole", "Role", "Role"])
        main, cluster_only, secrets, lease = roles
        granted = self.check_rules(main["rules"], "rbac.yaml controller role", True)
        self.assertEqual(granted[("", "secrets")], SECRET_VERBS)
        self.check_rules(lease["rules"], "rbac.yaml leader election", False)
        # The same rules as the plain manifests (the skeleton keeps both branches of the
        # watchNamespace conditions: the cluster-wide rules).
        docs = manifest_docs()
        [cr] = [d for n, d in docs if d["kind"] == "ClusterRole" and n == "20-rbac.yaml"]
        self.assertEqual(main["rules"], cr["rules"])
        # With watchNamespace, the small ClusterRole and the Secrets Role of
        # manifests/namespaced/ (resourceNames is the value there, a placeholder here).
        [ns_cr] = [d for n, d in docs if d["kind"] == "ClusterRole" and n.startswith("namespaced/")]
        self.assertEqual([{k: v for k, v in r.items() if k != "resourceNames"}
                          for r in cluster_only["rules"]],
                         [{k: v for k, v in r.items() if k != "resourceNames"}
                          for r in ns_cr["rules"]])
        self.assertEqual([r.get("resourceNames") for r in cluster_only["rules"]],
                         [None, None, ["X"]])
        [ns_secrets] = [d for n, d in docs if n.startswith("namespaced/")
                        and d["metadata"]["name"] == "keyrotator-keystore-secrets"
                        and d["kind"] == "Role"]
        self.assertEqual(secrets["rules"], ns_secrets["rules"])
        text = (CHART / "templates" / "rbac.yaml").read_text()
        self.assertIn('ternary "Role" "ClusterRole" (ne .Values.watchNamespace "")', text)
        # The cluster-only rules of the main role, and the extra objects, are conditional.
        main_text = text.split("\n---\n")[0]
        block = main_text.split("{{- if not .Values.watchNamespace }}")[1].split("{{- end }}")[0]
        for res in CLUSTER_ONLY:
            self.assertIn(f'"{res}"', block, res)
        self.assertIn("{{- if .Values.watchNamespace }}\n---\n"
                      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n", text)

    def test_roles_template(self):
        self.assertIs(self.values["roles"]["create"], True)
        text = (CHART / "templates" / "roles.yaml").read_text()
        body = re.sub(r"\{\{/\*.*?\*/\}\}\n?", "", text, flags=re.S)
        self.assertTrue(body.startswith("{{- if .Values.roles.create }}"), body[:80])
        self.assertTrue(body.rstrip().endswith("{{- end }}"))
        docs = load_text_yaml(skeleton(text), "roles.yaml")
        self.assertEqual([d["kind"] for d in docs], ["ClusterRole"] * 3)
        roles = {}
        for d in docs:
            name = d["metadata"]["name"]
            self.assertTrue(name.startswith("X-"), name)  # {{ include "keyrotator.fullname" }}
            roles[name[1:]] = d
        check_people_roles(self, roles, "templates/roles.yaml")
        # The same rules as manifests/25-roles.yaml.
        manifests = {d["metadata"]["name"][len("keyrotator"):]: d for n, d in manifest_docs()
                     if n == "25-roles.yaml"}
        for suffix, role in roles.items():
            self.assertEqual(role["rules"], manifests[suffix]["rules"], suffix)

    def test_notes_and_readme(self):
        notes = (CHART / "templates" / "NOTES.txt").read_text()
        self.assertIn("rollout status", notes)
        self.assertIn("crds/", notes)
        readme = (CHART / "README.md").read_text()
        self.assertIn("never upgrades", readme)
        for word in ("roles.create", "keyrotator-keystore-admin", "KeyStore", "ClusterKeyStore"):
            self.assertIn(word, readme)


# ---- the chart rendered (helmlite: no helm binary needed) ----

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Every option on, so that every template renders objects.
EVERYTHING = {"serviceMonitorEnabled": True, "prometheusRuleEnabled": True,
              "grafanaDashboardEnabled": True, "podDisruptionBudgetEnabled": True}
# Release names Helm accepts: DNS-1123 subdomains of at most 53 characters.
RELEASES = ["a", "1", "9lives", "kr", "keyrotator", "my.team.release", "a" * 53,
            "x" * 45, "x" * 52, "team-payments-keyrotator-" + "z" * 28,
            "a" * 30 + "." + "b" * 22, "z" * 43 + "." + "q" * 9]
# Values the schema refuses, each with what the message must say. The first four are the
# issue's: each installed "successfully" and then crash-looped.
BAD_VALUES = [
    ({"workers": 0}, "workers: Must be greater than or equal to 1"),
    ({"workers": 65}, "workers: Must be less than or equal to 64"),
    ({"logLevel": "verbose"}, 'logLevel: must be one of the following: "debug", "info"'),
    ({"replicaCount": 0}, "replicaCount: Must be greater than or equal to 1"),
    ({"replicaCount": 2, "leaderElect": False}, 'leaderElect: Does not match: true'),
    ({"workers": "4"}, "workers: Invalid type. Expected: integer, given: string"),
    ({"worker": 4}, "Additional property worker is not allowed"),
    ({"imagePullPolicy": "Sometimes"}, "imagePullPolicy: must be one of the following"),
    ({"metricsPort": 0}, "metricsPort: Must be greater than or equal to 1"),
    ({"healthPort": 65536}, "healthPort: Must be less than or equal to 65535"),
    ({"watchNamespace": "Team_A"}, "watchNamespace: Does not match pattern"),
    ({"grafanaDashboardNamespace": "Monitoring"},
     "grafanaDashboardNamespace: Does not match pattern"),
    ({"fullnameOverride": "123"}, "fullnameOverride: Does not match pattern"),
    ({"leaderElectionId": "Bad Lease"}, "leaderElectionId: Does not match pattern"),
    ({"serviceMonitorInterval": "30 seconds"}, "serviceMonitorInterval: Does not match pattern"),
    ({"podDisruptionBudgetMaxUnavailable": "half"},
     "podDisruptionBudgetMaxUnavailable: Must validate at least one schema"),
    ({"alertKeyAgeSeconds": 60}, "alertKeyAgeSeconds: Must be greater than or equal to 3600"),
    ({"roles": {"create": "yes"}}, "roles.create: Invalid type. Expected: boolean"),
    ({"extraEnv": [{"value": "x"}]}, "extraEnv.0: name is required"),
    ({"resources": {"limit": {}}}, "resources: Additional property limit is not allowed"),
    ({"podAnnotations": {"a": 1}}, "podAnnotations.a: Invalid type. Expected: string"),
    ({"imageTag": 1.5}, "imageTag: Invalid type. Expected: string, given: number"),
]


def schema():
    return json.loads((CHART / "values.schema.json").read_text())


def render(overrides=None, **kw):
    if not YAML2JSON:
        raise AssertionError("KR_YAML2JSON not set (CTest sets it)")
    return helmlite.render(CHART, YAML2JSON, overrides, **kw)


def rendered_docs(out):
    """(template name, object) for every object rendered: one parse for all templates (as
    helm prints them, "# Source:" lines and all), each document traced to its template."""
    names, parts = [], []
    for name, text in sorted(out.items()):
        if name.endswith(".yaml") and text.strip():
            for doc in re.split(r"^---\s*$", text, flags=re.M):
                if doc.strip():
                    names.append(name)
                    parts.append(f"# Source: keyrotator/templates/{name}\n{doc.strip()}\n")
    docs = load_text_yaml("---\n".join(parts), "rendered.yaml")
    if len(docs) != len(names):
        raise AssertionError(f"{len(parts)} documents rendered, {len(docs)} parsed")
    return [(n, d) for n, d in zip(names, docs) if d]


class TestChartSchema(unittest.TestCase):
    def setUp(self):
        [self.values] = load_yaml(CHART / "values.yaml")
        self.schema = schema()

    def test_defaults_pass(self):
        self.assertEqual(helmlite.validate(self.schema, self.values), [])

    def test_schema_covers_every_value(self):
        props = self.schema["properties"]
        self.assertEqual(set(props) - {"global"}, set(self.values),
                         "values.schema.json properties vs values.yaml")
        self.assertEqual(set(self.schema["required"]), set(self.values))
        self.assertIs(self.schema["additionalProperties"], False)
        for name, prop in props.items():
            self.assertGreater(len(prop.get("description", "")), 5, f"{name}: no description")

    def test_bad_values_are_refused_with_a_message(self):
        for overrides, want in BAD_VALUES:
            values = helmlite.merge(self.values, overrides)
            errors = "\n".join(helmlite.validate(self.schema, values))
            self.assertIn(want, errors, overrides)
            with self.assertRaises(helmlite.Fail, msg=overrides) as ctx:
                render(overrides)
            self.assertIn("values don't meet the specifications of the schema", str(ctx.exception))
            self.assertIn(want, str(ctx.exception))

    def test_good_values_pass(self):
        for overrides in ({"workers": 1}, {"workers": 64}, {"logLevel": "warning"},
                          {"replicaCount": 1, "leaderElect": False}, {"replicaCount": 3},
                          {"podDisruptionBudgetMaxUnavailable": "50%"},
                          {"resources": {"requests": {"cpu": 1, "memory": "64Mi"}}},
                          {"imageTag": "0.1.0-rc1"}, {"watchNamespace": "sirius"},
                          {"global": {"imageRegistry": "x"}}):
            values = helmlite.merge(self.values, overrides)
            self.assertEqual(helmlite.validate(self.schema, values), [], overrides)

    def test_the_schema_accepts_what_the_binary_accepts(self):
        # The chart's rendered args run through the binary's own flag parser: exit 2 (bad
        # flags) exactly for the values the schema refuses. The kubeconfig does not exist,
        # so accepted flags end in exit 1 at once.
        if not BINARY:
            self.fail("KR_BINARY not set (CTest sets it)")
        cases = [({"workers": w}, 1 <= w <= 64) for w in (0, 1, 2, 64, 65)]
        cases += [({"logLevel": lv}, lv in self.schema["properties"]["logLevel"]["enum"])
                  for lv in ("debug", "info", "warn", "warning", "error", "verbose", "trace")]
        for overrides, accepted in cases:
            values = helmlite.merge(self.values, overrides)
            self.assertEqual(helmlite.validate(self.schema, values) == [], accepted, overrides)
            [dep] = [d for n, d in rendered_docs(render(overrides, schema=False))
                     if d["kind"] == "Deployment"]
            args = pod_spec(dep)["containers"][0]["args"]
            out = subprocess.run([BINARY, *args, "--kubeconfig=/nonexistent/kubeconfig"],
                                 capture_output=True, text=True, timeout=30,
                                 env={"PATH": os.environ.get("PATH", "")})
            self.assertEqual(out.returncode != 2, accepted, (overrides, out.stderr))


def values_table(values, schema):
    """The chart README's values table, from values.yaml (order, defaults) and the schema
    (types, ranges, meaning)."""
    def kind(p):
        if "enum" in p:
            return " \\| ".join(f"`{v}`" for v in p["enum"])
        if "anyOf" in p:
            return " or ".join(kind(x) for x in p["anyOf"])
        t = p["type"] if isinstance(p["type"], str) else "/".join(p["type"])
        if "minimum" in p or "maximum" in p:
            t += f" {p.get('minimum', '')}..{p.get('maximum', '')}"
        return t
    rows = ["| value | type | default | meaning |", "| --- | --- | --- | --- |"]
    for k, v in values.items():
        p = schema["properties"][k]
        rows.append(f"| `{k}` | {kind(p)} | `{json.dumps(v)}` | {p['description']} |")
    return "\n".join(rows)


class TestChartValuesReference(unittest.TestCase):
    def test_readme_values_table_is_the_schema(self):
        [values] = load_yaml(CHART / "values.yaml")
        want = values_table(values, schema())
        readme = (CHART / "README.md").read_text()
        m = re.search(r"<!-- values:begin -->\n(.*?)\n<!-- values:end -->", readme, re.S)
        self.assertIsNotNone(m, "charts/keyrotator/README.md: no values table markers")
        self.assertEqual(m.group(1), want, "charts/keyrotator/README.md's values table differs "
                         "from values.yaml + values.schema.json; the table should read:\n" + want)


class TestChartRendering(unittest.TestCase):
    def test_every_template_renders_and_parses(self):
        docs = rendered_docs(render(EVERYTHING))
        kinds = sorted(d["kind"] for _, d in docs)
        for kind in ("ConfigMap", "Deployment", "PodDisruptionBudget", "PrometheusRule",
                     "Service", "ServiceAccount", "ServiceMonitor"):
            self.assertIn(kind, kinds)
        for name, d in docs:
            labels = d["metadata"]["labels"]
            for key in STANDARD_LABELS:
                self.assertIn(key, labels, f"{name} {d['kind']}")
        [sm] = [d for _, d in docs if d["kind"] == "ServiceMonitor"]
        self.assertIs(sm["spec"]["endpoints"][0]["honorLabels"], True)
        # Off by default: no monitoring objects (their CRDs may not exist).
        kinds = {d["kind"] for _, d in rendered_docs(render())}
        self.assertFalse(kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}, kinds)

    def test_dashboard_configmap(self):
        [cm] = [d for _, d in rendered_docs(render(EVERYTHING)) if d["kind"] == "ConfigMap"]
        self.assertEqual(cm["metadata"]["labels"]["grafana_dashboard"], "1")
        text = (CHART / "files" / "keyrotator-dashboard.json").read_text()
        self.assertEqual(cm["data"]["keyrotator.json"], text.rstrip("\n"))
        self.assertEqual(json.loads(cm["data"]["keyrotator.json"])["uid"], "keyrotator")
        plain = ROOT / "manifests" / "monitoring" / "keyrotator-dashboard.json"
        self.assertEqual(plain.read_text(), text,
                         "manifests/monitoring/keyrotator-dashboard.json differs from "
                         "charts/keyrotator/files/keyrotator-dashboard.json: copy it")
        cm = [d for _, d in rendered_docs(render(dict(EVERYTHING, grafanaDashboardLabels={
            "dash": "yes"}, grafanaDashboardAnnotations={"grafana_folder": "Security"})))
            if d["kind"] == "ConfigMap"][0]
        self.assertEqual(cm["metadata"]["labels"]["dash"], "yes")
        self.assertEqual(cm["metadata"]["annotations"], {"grafana_folder": "Security"})
        self.assertEqual(cm["metadata"]["namespace"], NAMESPACE)
        cm = [d for _, d in rendered_docs(render(dict(
            EVERYTHING, grafanaDashboardNamespace="monitoring"))) if d["kind"] == "ConfigMap"][0]
        self.assertEqual(cm["metadata"]["namespace"], "monitoring")

    def test_every_name_is_valid_for_any_release_name(self):
        for release in RELEASES:
            self.assertRegex(release, DNS_SUBDOMAIN)
            self.assertLessEqual(len(release), 53)
            for ns in ("", "n" * 63):
                out = render(dict(EVERYTHING, watchNamespace=ns), release=release)
                for name, d in rendered_docs(out):
                    where = f"release {release!r} watchNamespace {ns!r}: {name} {d['kind']}"
                    obj = d["metadata"]["name"]
                    self.assertRegex(obj, DNS_SUBDOMAIN, where)
                    self.assertLessEqual(len(obj), 253, where)
                    if d["kind"] in ("Service", "ServiceAccount", "Deployment"):
                        # Services are DNS-1035 labels; a ServiceAccount's and a Deployment's
                        # name end up in label values and pod names, so keep them short too.
                        self.assertLessEqual(len(obj), 63, where)
                    if d["kind"] == "Service":
                        self.assertRegex(obj, DNS_1035_LABEL, where)
                        self.assertTrue(obj.endswith("-metrics"), where)
                    for k, v in d["metadata"].get("labels", {}).items():
                        self.assertLessEqual(len(v), 63, f"{where}: label {k}")
                        self.assertRegex(v, LABEL_VALUE, f"{where}: label {k}")

    def test_the_long_name_case_of_the_issue(self):
        # 45-53 characters without "keyrotator": "<release>-keyrotator" is cut to 63, and
        # "-metrics" used to be appended after the cut (71 characters).
        for n in range(45, 54):
            release = "r" * n
            [svc] = [d for _, d in rendered_docs(render(release=release))
                     if d["kind"] == "Service"]
            name = svc["metadata"]["name"]
            self.assertLessEqual(len(name), 63, name)
            self.assertTrue(name.startswith("r" * 40) and name.endswith("-metrics"), name)
        # Short names are unchanged.
        [svc] = [d for _, d in rendered_docs(render()) if d["kind"] == "Service"]
        self.assertEqual(svc["metadata"]["name"], "keyrotator-metrics")
        [svc] = [d for _, d in rendered_docs(render(release="prod"))
                 if d["kind"] == "Service"]
        self.assertEqual(svc["metadata"]["name"], "prod-keyrotator-metrics")

    def test_template_guards(self):
        # What the schema says is also what the templates say on their own (helm versions
        # or tools that skip the schema).
        with self.assertRaises(helmlite.Fail) as ctx:
            render({"replicaCount": 3, "leaderElect": False}, schema=False)
        self.assertIn("replicaCount=3 with leaderElect=false: 3 controllers would reconcile",
                      str(ctx.exception))
        self.assertIn("templates/deployment.yaml", str(ctx.exception))
        with self.assertRaises(helmlite.Fail) as ctx:
            render({"metricsPort": 9000, "healthPort": 9000})
        self.assertIn("metricsPort and healthPort are both 9000", str(ctx.exception))
        render({"replicaCount": 1, "leaderElect": False})  # one replica needs no election

    def test_notes_say_what_is_true(self):
        cases = [
            ({}, "all 2 replicas Ready; one holds the Lease, the others are warm standbys",
             True),
            ({"replicaCount": 3},
             "all 3 replicas Ready; one holds the Lease, the others are warm standbys", True),
            ({"replicaCount": 1}, "its one replica Ready, holding the Lease", True),
            ({"replicaCount": 1, "leaderElect": False},
             "its one replica Ready; no leader election", False),
        ]
        for overrides, want, lease in cases:
            notes = render(overrides)["NOTES.txt"]
            self.assertIn(f"Check the controller is up ({want}):", notes, overrides)
            self.assertEqual("get lease keyrotator" in notes, lease, overrides)
            if overrides.get("replicaCount", 2) == 1:
                self.assertNotIn("both replicas", notes)
                self.assertNotIn("replicas Ready", notes)
        notes = render(EVERYTHING)["NOTES.txt"]
        for word in ("ServiceMonitor keyrotator scrapes it every 30s",
                     "PrometheusRule keyrotator", "ConfigMap keyrotator-dashboard"):
            self.assertIn(word, notes)
        notes = render()["NOTES.txt"]
        for word in ("serviceMonitorEnabled=true", "prometheusRuleEnabled=true",
                     "grafanaDashboardEnabled=true"):
            self.assertIn(word, notes)
        # The Service NOTES names is the one rendered, long release names included.
        release = "r" * 53
        out = render(release=release)
        [svc] = [d for _, d in rendered_docs(out) if d["kind"] == "Service"]
        self.assertIn(f"Service {svc['metadata']['name']}, port 8080", out["NOTES.txt"])


# ---- the container image ----

def dockerfile():
    return (ROOT / "Dockerfile").read_text()


def runtime_packages():
    m = re.search(r'^ARG RUNTIME_PACKAGES="([^"]+)"', dockerfile(), re.M)
    return set(m.group(1).split())


def dpkg_owner(path):
    """The Debian package that ships a library file (following /lib -> /usr/lib)."""
    for candidate in (path, os.path.realpath(path)):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    raise AssertionError(f"dpkg -S: no package ships {path}")


def dpkg_depends_closure(packages):
    """Every package the given ones depend on, recursively, from the local dpkg database."""
    seen, todo = set(), list(packages)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        out = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg],
                             capture_output=True, text=True)
        for alt in re.split(r"[,|]", out.stdout):
            name = alt.strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    return seen


class TestDockerfile(unittest.TestCase):
    def libraries(self):
        if not BINARY:
            self.fail("KR_BINARY not set (CTest sets it)")
        out = subprocess.run(["ldd", BINARY], capture_output=True, text=True, check=True).stdout
        self.assertNotIn("not found", out)
        libs = re.findall(r"=> (/\S+)", out)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", BINARY], capture_output=True,
                                           text=True, check=True).stdout)
        # Sanitizer runtimes bring libraries (libstdc++) the image never has: the image is
        # built without them, and check.sh's release pass runs these tests on such a build.
        if any(re.match(r"lib(asan|ubsan|lsan|tsan)\.so", n) for n in needed):
            self.skipTest("sanitizer build: ldd differs from the image's build")
        by_name = {os.path.basename(l): l for l in libs}
        return libs, [by_name[n] for n in needed]

    def test_runtime_packages_are_exactly_the_direct_libraries(self):
        _, direct = self.libraries()
        owners = {dpkg_owner(l) for l in direct} - {"libc6"}
        self.assertEqual(runtime_packages(), owners,
                         "Dockerfile RUNTIME_PACKAGES vs packages of the binary's NEEDED libs")

    def test_runtime_packages_bring_every_ldd_library(self):
        libs, _ = self.libraries()
        closure = dpkg_depends_closure(runtime_packages() | {"libc6"})
        for lib in libs:
            self.assertIn(dpkg_owner(lib), closure, lib)

    def test_build_stage_has_the_dev_packages_of_setup_sh(self):
        setup = (ROOT / "tests" / "setup.sh").read_text()
        # The product's build dependencies: KR_PACKAGES only (the fuzz smoke's clang
        # runtime in KR_FUZZ_PACKAGES is a test tool, like cmocka).
        packages = re.search(r"^KR_PACKAGES=\((.*?)\)", setup, re.M | re.S).group(1)
        dev = set(re.findall(r"\b(lib[a-z0-9.+-]+-dev)\b", packages)) - {"libcmocka-dev"}
        build = dockerfile().split("AS build")[1].split("FROM ")[0]
        for pkg in dev | {"build-essential", "cmake", "pkg-config"}:
            self.assertIn(pkg, build.split(), pkg)

    def test_stages_and_runtime_user(self):
        text = dockerfile()
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        # One ARG names the base of every Debian stage, so that a digest pins all of them
        # (BASE=debian:bookworm-slim@sha256:...; a suffix such as "${BASE}-slim" would break).
        self.assertEqual(froms, ["${BASE}", "${BASE}", "scratch"])
        self.assertRegex(text, re.compile(r"^ARG BASE=debian:bookworm-slim$", re.M))
        self.assertEqual(text.index("ARG BASE="), text.index("ARG "), "ARG BASE is first")
        final = text.split("FROM scratch")[1]
        self.assertNotIn("RUN ", final, "the runtime image has no shell to RUN with")
        self.assertRegex(final, re.compile(r"^USER 65532:65532$", re.M))
        self.assertIn('ENTRYPOINT ["/usr/local/bin/keyrotator"]', final)
        self.assertIn("-DKR_BUILD_TESTS=OFF", text)

    def test_apt_is_noninteractive(self):
        # Each stage that runs apt-get declares DEBIAN_FRONTEND=noninteractive before it (an
        # ARG: build-time only, never in an image's environment).
        stages = re.split(r"^FROM ", dockerfile(), flags=re.M)[1:]
        with_apt = [s for s in stages if re.search(r"^RUN apt-get", s, re.M)]
        self.assertEqual(len(with_apt), 2, "the build and rootfs stages")
        for stage in with_apt:
            name = stage.split("\n")[0]
            m = re.search(r"^ARG DEBIAN_FRONTEND=noninteractive$", stage, re.M)
            self.assertIsNotNone(m, f"stage {name}: no ARG DEBIAN_FRONTEND=noninteractive")
            run = re.search(r"^RUN apt-get", stage, re.M).start()
            self.assertLess(m.start(), run, f"stage {name}: ARG after apt-get")
        self.assertNotRegex(dockerfile(), r"ENV\s+DEBIAN_FRONTEND")

    def test_dockerignore_admits_the_build_inputs(self):
        lines = (ROOT / ".dockerignore").read_text().split()
        for needed in ("!CMakeLists.txt", "!controller/"):
            self.assertIn(needed, lines)


if __name__ == "__main__":
    unittest.main()
