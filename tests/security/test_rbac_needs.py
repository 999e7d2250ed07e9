"""test_rbac_needs.py - RBAC least privilege, from the code's side.

tests/packaging checks the RBAC manifests and chart as written (no wildcards, Secret verbs
exactly get/create/update/patch, never list/watch, the chart's rules equal the manifests').
This test reads what `keyrotator run` actually calls - every kr_kube_<verb>(..., &kr_kube_<r>)
outside the client library and the CLI's user-side tools, plus the informers' list+watch -
and checks, for both install modes (cluster-wide and manifests/namespaced/):
  - everything the controller does is granted (else it fails in a real cluster with 403);
  - everything granted is used, or listed in GRANTED_UNUSED with the reason it is kept.

Environment: KR_YAML2JSON (the yaml2json tool), KR_ROOT (the repository).
"""
import re
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
import test_packaging as packaging
from test_source_audit import ROOT, calls, strip_comments

SRC = ROOT / "controller"
# User-side tools: they run with the user's credentials, not the controller's account.
NOT_THE_CONTROLLER = ("kube/", "cli/plugin", "cli/doctor", "cli/keys", "cli/plan",
                      "cli/schedule", "cli/version")
VERBS = {"kr_kube_get": "get", "kr_kube_list": "list", "kr_kube_list_all": "list",
         "kr_kube_create": "create", "kr_kube_update": "update",
         "kr_kube_update_status": "update", "kr_kube_patch": "patch",
         "kr_kube_delete": "delete"}
GROUPS = {"secrets": "", "events": "", "deployments": "apps", "statefulsets": "apps",
          "daemonsets": "apps", "cronjobs": "batch", "leases": "coordination.k8s.io",
          "keyrotations": "keyrotator.io", "keystores": "keyrotator.io",
          "clusterkeystores": "keyrotator.io", "namespaces": ""}
WORKLOADS = ("deployments", "statefulsets", "daemonsets")
# (group, resource, verb) granted although no call needs it today, and why.
GRANTED_UNUSED = {
    ("", "secrets", "patch"): "documented grant (README, RBAC table); kept for patch-based "
                              "writes of the consumers' Secret",
    ("keyrotator.io", "keyrotations", "update"): "the controller's writes to its own objects",
    ("keyrotator.io", "keyrotations", "patch"): "the controller's writes to its own objects",
    ("keyrotator.io", "keyrotations/status", "get"): "read-your-write of status",
    ("keyrotator.io", "keyrotations/status", "patch"): "status writes by merge patch",
    ("keyrotator.io", "keyrotations/finalizers", "update"):
        "blockOwnerDeletion on the <name>-rotation Secret (OwnerReferencesPermissionEnforcement)",
    ("", "events", "patch"): "event aggregation (count bumps)",
    ("events.k8s.io", "events", "create"): "events.k8s.io/v1 recorder",
    ("events.k8s.io", "events", "patch"): "events.k8s.io/v1 recorder",
    ("apps", "deployments", "get"): "direct reads of a stage's workload",
    ("apps", "statefulsets", "get"): "direct reads of a stage's workload",
    ("apps", "daemonsets", "get"): "direct reads of a stage's workload",
    ("keyrotator.io", "keystores", "get"): "the stores are read from the informer cache; get "
                                           "kept for direct reads of a store",
    ("keyrotator.io", "clusterkeystores", "get"): "as keystores get",
    ("keyrotator.io", "keystores/status", "update"): "status writes by update or merge patch",
    ("keyrotator.io", "clusterkeystores/status", "update"):
        "status writes by update or merge patch",
}
# People's roles (manifests/25-roles.yaml) are bound to users, not to the controller.
PEOPLE_ROLES = ("keyrotator-view", "keyrotator-edit", "keyrotator-keystore-admin")


def resource_of(arg, text, pos):
    """The resources an argument can be: &kr_kube_X, a workload helper, or a parameter of
    the enclosing file-local wrapper (then whatever its callers in the file pass)."""
    m = re.fullmatch(r"\s*&kr_kube_(\w+)\s*", arg)
    if m:
        return [m.group(1)]
    if "workload" in arg:
        return list(WORKLOADS)
    heads = list(re.finditer(r"^[a-z][\w \t*]*?\b(\w+)\(", text[:pos], re.M))
    if heads:
        wrapper = heads[-1].group(1)
        found = set()
        for _, args, _ in calls(text, (wrapper,)):
            found |= set(re.findall(r"&kr_kube_(\w+)", args))
        if found:
            return sorted(found)
    raise AssertionError(f"cannot tell which resource {arg.strip()!r} is")


def split_args(args):
    out, depth, cur = [], 0, ""
    for c in args:
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        cur += c
    return out + [cur]


def controller_needs():
    """{(group, resource, verb): [where...]} for the `run` process."""
    needs = {}
    for f in sorted(SRC.rglob("*.c")):
        rel = f.relative_to(SRC).as_posix()
        if rel.startswith(NOT_THE_CONTROLLER):
            continue
        text = strip_comments(f.read_text(), keep_literals=True)
        for name, args, line in calls(text, tuple(VERBS)):
            a, pos = split_args(args), sum(len(x) + 1 for x in text.split("\n")[:line - 1])
            sub = ""
            if name == "kr_kube_update_status" or (name == "kr_kube_patch" and
                                                   '"status"' in a[4]):
                sub = "/status"
            for r in resource_of(a[1], text, pos):
                needs.setdefault((GROUPS[r], r + sub, VERBS[name]), []).append(f"{rel}:{line}")
        # the informers (reconciler/sources.c's table of kr_controller_source): list + watch
        block = re.search(r"struct kr_controller_source\s+\w+\[[^]]*\]\s*=\s*\{(.*?)\};",
                          text, re.S)
        if block:
            for r in re.findall(r"&kr_kube_(\w+)", block.group(1)):
                for verb in ("list", "watch"):
                    needs.setdefault((GROUPS[r], r, verb), []).append(f"{rel} (informer)")
    return needs


def granted(docs):
    out = set()
    for _, d in docs:
        if d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"] not in PEOPLE_ROLES:
            for r in d["rules"]:
                out |= {(g, res, v) for g in r["apiGroups"] for res in r["resources"]
                        for v in r["verbs"]}
    return out


class TestRbacNeeds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.needs = controller_needs()
        docs = packaging.manifest_docs()
        cls.modes = {
            "manifests/ (cluster-wide)": granted([x for x in docs if "/" not in x[0]]),
            "manifests/namespaced/": granted([x for x in docs if x[0].startswith("namespaced/")]),
        }

    def test_the_code_was_read(self):
        self.assertIn(("", "secrets", "get"), self.needs)
        self.assertIn(("keyrotator.io", "keyrotations", "watch"), self.needs)
        self.assertIn(("coordination.k8s.io", "leases", "update"), self.needs)

    def test_secrets_never_listed_watched_or_deleted_by_the_controller(self):
        for verb in ("list", "watch", "deletecollection"):
            self.assertNotIn(("", "secrets", verb), self.needs, self.needs.get(("", "secrets", verb)))
        # The <name>-rotation Secret is emptied by update when a rotation ends, not deleted.
        self.assertNotIn(("", "secrets", "delete"), self.needs,
                         "the controller deletes Secrets: RBAC grants no delete (see README RBAC)")

    def test_everything_the_controller_does_is_granted(self):
        for mode, grant in self.modes.items():
            missing = {k: v for k, v in self.needs.items() if k not in grant}
            self.assertEqual(missing, {}, f"{mode}: calls without RBAC (403 in a cluster)")

    def test_everything_granted_is_needed_or_explained(self):
        for mode, grant in self.modes.items():
            extra = sorted(k for k in grant if k not in self.needs and k not in GRANTED_UNUSED)
            self.assertEqual(extra, [], f"{mode}: granted but never used")


if __name__ == "__main__":
    unittest.main()
