"""Which API kinds podnet reads, and the model class of each."""

from __future__ import annotations

from pydantic import BaseModel

from podnet.model.cluster_objects import Namespace, Node
from podnet.model.ingress import Ingress, IngressClass
from podnet.model.networkpolicy import NetworkPolicy
from podnet.model.pod import Pod
from podnet.model.secret import Secret
from podnet.model.service import Endpoints, EndpointSlice, Service
from podnet.model.workloads import CronJob, Workload

WORKLOAD_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"})

MODELS: dict[str, type[BaseModel]] = {
    "Namespace": Namespace,
    "Node": Node,
    "Pod": Pod,
    "Service": Service,
    "Endpoints": Endpoints,
    "EndpointSlice": EndpointSlice,
    "Ingress": Ingress,
    "IngressClass": IngressClass,
    "Secret": Secret,
    "NetworkPolicy": NetworkPolicy,
    "CronJob": CronJob,
    **dict.fromkeys(WORKLOAD_KINDS, Workload),
}

CLUSTER_SCOPED = frozenset({"Namespace", "Node", "IngressClass"})


def identity(kind: str, namespace: str | None, name: str) -> str:
    """How messages name an object: `Pod web/api-0`, `Namespace web`."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
