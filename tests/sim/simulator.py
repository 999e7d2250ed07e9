#!/usr/bin/env python3
"""simulator.py - the simulated cluster's workloads: runs the kubelet stand-in
(kubelet_standin.py: a Node of its own whose pods are local processes) and, unless the cluster
has real workload controllers (--no-controllers), the workload-controller stand-in
(controllers_standin.py: Deployments, ReplicaSets, StatefulSets, DaemonSets) in one loop.
Both talk to the API server only through the API, so this works against a real cluster too.

    tests/py tests/sim/simulator.py --kubeconfig K --namespace NS --state-dir D \
        [--node NAME] [--no-controllers] [--rollout-delay 0.2] [--service sirius-api=0 ...]

See README.md in this folder for the pod model, the "image" mapping, the Services, the
failure annotations and the files written in the state dir. Python 3 standard library only.
"""
import argparse
import os
import secrets
import sys
import threading

import kyaml  # noqa: F401 (simulator.kyaml: for the suite's readers of YAML)
from simkube import Kube, serve, write_json  # noqa: F401 (simulator.Kube: the API client)
from controllers_standin import Controllers
from kubelet_standin import Kubelet, add_args


class Simulator:
    """Both stand-ins in one loop: a pass is one of each, counted in passes.json."""

    def __init__(self, kube, args):
        self.stopping = threading.Event()
        node = args.node or "keyrotator-e2e-" + secrets.token_hex(4)
        self.kubelet = Kubelet(kube, node, args.state_dir, args.rollout_delay, args.service,
                               self.stopping)
        self.ctl = None if args.no_controllers else Controllers(kube, args.namespace, node,
                                                                self.stopping)

    def run(self):
        if self.ctl:
            self.ctl.start()
        self.kubelet.start()
        passes = 0
        while not self.stopping.is_set():
            if self.ctl:
                self.ctl.step()
            self.kubelet.step()
            passes += 1
            if passes % 10 == 0:  # lets tests wait for "N more passes" when proving absence
                write_json(os.path.join(self.kubelet.state_dir, "passes.json"),
                           {"passes": passes})
            self.stopping.wait(0.05)
        self.kubelet.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_args(ap, node_required=False)
    ap.add_argument("--namespace", default="default",
                    help="the workload-controller stand-in acts in this namespace")
    ap.add_argument("--no-controllers", action="store_true",
                    help="the cluster runs its own workload controllers: kubelet stand-in only")
    args = ap.parse_args()
    if not args.kubeconfig:
        ap.error("--kubeconfig or $KUBECONFIG is required")
    os.makedirs(args.state_dir, exist_ok=True)
    return serve(args.kubeconfig, lambda kube: Simulator(kube, args), args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
