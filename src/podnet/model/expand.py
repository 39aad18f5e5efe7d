"""Workloads expand into the pods their controllers would create, deterministically.

Names follow the controllers' shapes (Deployment `web-<template-hash>-<5>`, ReplicaSet and
DaemonSet `name-<5>`, StatefulSet `name-0..N-1`, Job `name-<5>`), with the random parts
replaced by hashes of the owner's identity, so that the same input always gives the same pods.
"""

from __future__ import annotations

import functools
import hashlib
import warnings

from podnet.model.cluster_objects import Node
from podnet.model.meta import NameWarning, ObjectMeta, OwnerReference
from podnet.model.pod import Pod, PodSpec, PodStatus
from podnet.model.workloads import CronJob, Workload

# The alphabet of k8s.io/apimachinery/pkg/util/rand (no vowels, no confusable digits).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def short_hash(text: str, length: int) -> str:
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    out = []
    for _ in range(length):
        digest, r = divmod(digest, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(out)


def _digits(text: str, length: int) -> str:
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return f"{digest % 10**length:0{length}d}"


_GROUP = {"Job": "batch/v1", "CronJob": "batch/v1"}  # the others are apps/v1


def owner_reference(kind: str, namespace: str | None, name: str) -> OwnerReference:
    """A complete reference, as the controller writes it; the uid is derived from the owner's
    identity so that expansion stays deterministic."""
    ident = f"{kind}/{namespace}/{name}"
    uid = hashlib.sha256(ident.encode()).hexdigest()
    return OwnerReference(
        api_version=_GROUP.get(kind, "apps/v1"),
        kind=kind,
        name=name,
        uid=f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
    )


def _pod(
    w: Workload | CronJob,
    name: str,
    spec: PodSpec,
    labels: dict[str, str],
    owner: OwnerReference,
    **spec_update: object,
) -> Pod:
    # Built without validation: the template, the labels and the owner were validated with
    # the workload, and validating them again per replica was most of the expansion's time.
    # Every field is given: model_construct would otherwise compute each default per pod.
    meta = ObjectMeta.model_construct(
        name=name,
        generate_name="",
        namespace=w.metadata.namespace,
        labels=labels,
        annotations={},
        owner_references=(owner,),
    )
    return Pod.model_construct(
        kind="Pod",
        api_version="v1",
        metadata=meta,
        spec=spec.model_copy(update=spec_update) if spec_update else spec,
        status=_no_status(),
    )


@functools.cache
def _no_status() -> PodStatus:
    """One immutable value for every expanded pod, built on first use: a model instance at
    import would build PodStatus's validator when nothing may need it (start-up)."""
    return PodStatus()


def expand(w: Workload, nodes: list[Node]) -> list[Pod]:
    """The pods of one workload. DaemonSets need the nodes: one pod per matching node."""
    with warnings.catch_warnings():
        # A bad workload name was reported once, on the workload; not again per pod.
        warnings.simplefilter("ignore", NameWarning)
        return _expand(w, nodes)


def _expand(w: Workload, nodes: list[Node]) -> list[Pod]:
    tpl = w.template
    labels = dict(tpl.metadata.labels)
    name = w.metadata.name
    ident = f"{w.kind}/{w.metadata.namespace}/{name}"
    if w.kind == "Deployment":
        # Defaults are left out, so that a field podnet learns later renames no pod.
        template_hash = short_hash(ident + tpl.model_dump_json(exclude_defaults=True), 10)
        labels["pod-template-hash"] = template_hash
        rs = f"{name}-{template_hash}"
        owner = owner_reference("ReplicaSet", w.metadata.namespace, rs)
        count = 1 if w.spec.replicas is None else w.spec.replicas
        return [
            _pod(w, f"{rs}-{short_hash(f'{ident}#{i}', 5)}", tpl.spec, labels, owner)
            for i in range(count)
        ]
    owner = owner_reference(w.kind, w.metadata.namespace, name)
    if w.kind == "StatefulSet":
        count = 1 if w.spec.replicas is None else w.spec.replicas
        out = []
        for i in range(count):
            pod_labels = {
                **labels,
                "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                "apps.kubernetes.io/pod-index": str(i),
            }
            out.append(
                _pod(
                    w,
                    f"{name}-{i}",
                    tpl.spec,
                    pod_labels,
                    owner,
                    hostname=f"{name}-{i}",
                    subdomain=w.spec.service_name or tpl.spec.subdomain,
                )
            )
        return out
    if w.kind == "DaemonSet":
        selector = tpl.spec.node_selector
        return [
            _pod(
                w,
                f"{name}-{short_hash(f'{ident}@{n.metadata.name}', 5)}",
                tpl.spec,
                labels,
                owner,
                node_name=n.metadata.name,
            )
            for n in nodes
            if all(n.metadata.labels.get(k) == v for k, v in selector.items())
        ]
    if w.kind == "Job":
        labels = {**labels, "job-name": name, "batch.kubernetes.io/job-name": name}
        count = 1 if w.spec.parallelism is None else w.spec.parallelism
    else:  # ReplicaSet
        count = 1 if w.spec.replicas is None else w.spec.replicas
    return [
        _pod(w, f"{name}-{short_hash(f'{ident}#{i}', 5)}", tpl.spec, labels, owner)
        for i in range(count)
    ]


def cronjob_as_job(c: CronJob) -> Workload:
    """The Job of a CronJob's (first) run, named as the controller names it: `name-<minutes>`."""
    meta = ObjectMeta(
        name=f"{c.metadata.name}-{_digits(c.metadata.name, 8)}",
        namespace=c.metadata.namespace,
        owner_references=(owner_reference("CronJob", c.metadata.namespace, c.metadata.name),),
    )
    return Workload(
        kind="Job", api_version="batch/v1", metadata=meta, spec=c.spec.job_template.spec
    )
