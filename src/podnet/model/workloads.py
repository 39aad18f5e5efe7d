"""Workload controllers, reduced to what shapes their pods: a template and a count."""

from __future__ import annotations

from pydantic import Field

from podnet.model.base import ApiModel, Int
from podnet.model.meta import ObjectMeta
from podnet.model.pod import PodTemplate


class WorkloadSpec(ApiModel):
    replicas: Int | None = None
    parallelism: Int | None = None
    service_name: str | None = None
    template: PodTemplate | None = None


class JobTemplate(ApiModel):
    spec: WorkloadSpec = Field(default_factory=WorkloadSpec)


class CronJobSpec(ApiModel):
    job_template: JobTemplate = Field(default_factory=JobTemplate)


class Workload(ApiModel):
    """Deployment, ReplicaSet, StatefulSet, DaemonSet or Job."""

    kind: str
    api_version: str = "apps/v1"
    metadata: ObjectMeta
    spec: WorkloadSpec = Field(default_factory=WorkloadSpec)

    @property
    def template(self) -> PodTemplate:
        return self.spec.template or PodTemplate()


class CronJob(ApiModel):
    kind: str = "CronJob"
    api_version: str = "batch/v1"
    metadata: ObjectMeta
    spec: CronJobSpec = Field(default_factory=CronJobSpec)
