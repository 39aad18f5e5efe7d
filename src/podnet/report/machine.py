"""The machine-readable outputs of `analyze`: JSON (the contract in README.md, "Using it") and CSV."""

from __future__ import annotations

import csv
import io
import json

from podnet.policy.answer_set import Answers


def to_json(a: Answers) -> str:
    """{"pods": [...], "results": [{"from","to","port","protocol","allowed"}, ...]}.

    `pods` lists every pod of the question (selected sources and destinations), sorted;
    results are ordered by source, destination and port, outside peers last. Self pairs are
    omitted (a pod always reaches itself over loopback).
    """
    keys = sorted({a.pods[i].key for i in (*a.sources, *a.destinations)})
    doc = {"pods": keys, "results": [r.to_json() for r in a.results()]}
    return json.dumps(doc, indent=1) + "\n"


def to_csv(a: Answers) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["from", "to", "port", "protocol", "allowed"])
    for r in a.results():
        w.writerow([r.source, r.destination, r.port, r.protocol, str(r.allowed).lower()])
    return buf.getvalue()
