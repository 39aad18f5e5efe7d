"""Which Ingresses podnet's controller serves, as the Ingress documentation decides it:

- `spec.ingressClassName` names an IngressClass; the Ingress is ours when that class's
  `spec.controller` is `k8s.io/ingress-nginx` (state.ingress_addon.CONTROLLER). An Ingress
  of another controller's class, or of a class that does not exist, is not served.
- Without a class name (and without the deprecated `kubernetes.io/ingress.class`
  annotation): "If the ingressClassName is omitted, a default Ingress class should be
  defined" — the class annotated `ingressclass.kubernetes.io/is-default-class: "true"`.
  With several defaults the admission controller refuses such an Ingress
  (state.ingress_checks says so at apply/up); here none of them is then chosen.
"""

from __future__ import annotations

from collections.abc import Iterable

from podnet.model.ingress import Ingress, IngressClass
from podnet.state.ingress_identity import CONTROLLER


def default_classes(classes: Iterable[IngressClass]) -> list[IngressClass]:
    return [c for c in classes if c.is_default]


def class_of(ing: Ingress, classes: Iterable[IngressClass]) -> IngressClass | None:
    """The IngressClass an Ingress belongs to, or None."""
    classes = list(classes)
    name = ing.class_name
    if name is None:
        defaults = default_classes(classes)
        return defaults[0] if len(defaults) == 1 else None
    return next((c for c in classes if c.metadata.name == name), None)


def served(ingresses: Iterable[Ingress], classes: Iterable[IngressClass]) -> list[Ingress]:
    """The Ingresses podnet's controller serves, in their given (namespace, name) order."""
    classes = list(classes)
    out = []
    for ing in ingresses:
        cls = class_of(ing, classes)
        if cls is not None and cls.spec.controller == CONTROLLER:
            out.append(ing)
    return out
