"""ownerReferences change no policy semantics: every required subfield that is missing is one
warning naming the file, the object and the field, never an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from podnet.model.cluster import load_cluster
from podnet.model.load import load

FULL = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u-1"}


def dump(tmp_path: Path, refs: list[dict[str, object]]) -> Path:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1-abcde", "namespace": "x", "ownerReferences": refs},
        "spec": {"containers": [{"name": "c"}]},
    }
    f = tmp_path / "dump.yaml"
    f.write_text(yaml.safe_dump(pod))
    return f


@pytest.mark.parametrize("field", ["apiVersion", "kind", "name", "uid"])
def test_each_missing_subfield_is_one_warning(tmp_path: Path, field: str) -> None:
    ref = {k: v for k, v in FULL.items() if k != field}
    result = load([str(dump(tmp_path, [FULL, ref]))])
    assert len(result.objects) == 1
    (w,) = [str(w) for w in result.warnings]
    assert w.startswith(f"{tmp_path / 'dump.yaml'}")
    assert "Pod x/web-1-abcde" in w
    assert f"metadata.ownerReferences[1].{field}: Required value" in w


def test_all_missing_and_null_alike(tmp_path: Path) -> None:
    result = load([str(dump(tmp_path, [{"kind": None, "name": "web-1"}]))])
    fields = sorted(str(w).split("ownerReferences[0].")[1].split(":")[0] for w in result.warnings)
    assert fields == ["apiVersion", "kind", "uid"]


def test_complete_references_warn_nothing_and_expanded_pods_carry_complete_ones(
    tmp_path: Path,
) -> None:
    assert not load([str(dump(tmp_path, [FULL]))]).warnings
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "x"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        },
    }
    f = tmp_path / "dep.yaml"
    f.write_text(yaml.safe_dump(dep))
    c = load_cluster([str(f)])
    refs = [r for p in c.pods for r in p.metadata.owner_references]
    assert len(refs) == 2 and all(not r.missing() for r in refs)
    assert refs[0].api_version == "apps/v1" and refs[0].kind == "ReplicaSet"
