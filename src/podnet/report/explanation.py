"""Rendering a Verdict as text: the answer first, then each direction's reasons."""

from __future__ import annotations

from podnet.policy.verdict import DirectionVerdict, Verdict


def _direction(d: DirectionVerdict) -> list[str]:
    where = "at the destination" if d.direction == "ingress" else "at the source"
    head = f"  {d.direction} {where} {d.subject}: {'allowed' if d.allowed else 'DENIED'}"
    lines = [head]
    if not d.isolated:
        lines.append(f"    {d.note}")
        return lines
    lines.append(f"    isolated by: {', '.join(d.policies)}")
    for a in d.admitted_by:
        lines.append(f"    admitted by {a}")
    if not d.allowed:
        if d.note:
            lines.append(f"    {d.note}")
        if d.misses:
            lines.append("    no rule admits it; nearest misses:")
            lines += [f"      {m.rule}: {m.why}" for m in d.misses]
        elif not d.note:
            lines.append("    no rule admits it")
    return lines


def verdict_text(v: Verdict) -> str:
    lines = [
        f"{v.source} -> {v.destination} on {v.port}/{v.protocol}: {'ALLOWED' if v.allowed else 'DENIED'}"
    ]
    if v.reason:
        lines.append(f"  {v.reason}")
    for d in (v.egress, v.ingress):
        if d is not None:
            lines += _direction(d)
    return "\n".join(lines) + "\n"
