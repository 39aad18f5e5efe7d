"""`analyze -o html`: one self-contained page (script, styles and data inlined; it opens
with no network) for people who review policies in a pull request: the matrix per port,
grouped as `analyze` groups pods, the policies, and `explain`'s answer per cell."""

from __future__ import annotations

import json
from importlib import resources

from podnet.policy.analysis import Analysis
from podnet.report.matrix_doc import document

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>body {{ margin: 16px 24px; font: 14px/1.4 system-ui, sans-serif; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
{css}</style></head>
<body><h1>{title}</h1><p class="pn-muted" id="summary"></p><div id="matrix"></div>
<script id="podnet-data" type="application/json">{data}</script>
<script>{js}</script>
<script>
(function () {{
  var doc = JSON.parse(document.getElementById("podnet-data").textContent);
  var ns = {{}};
  doc.pods.forEach(function (p) {{ ns[p.key.split("/")[0]] = 1; }});
  document.getElementById("summary").textContent = doc.pods.length + " pods in " +
    Object.keys(ns).length + " namespaces, " + doc.policies.length + " NetworkPolicies, " +
    doc.ports.length + " ports; " + doc.explained + " of " + doc.cells + " cells explained.";
  PodnetMatrix.render(document.getElementById("matrix"), doc);
  document.body.setAttribute("data-ready", "1");
}})();
</script></body></html>
"""
# The Content-Security-Policy forbids every fetch: the page works offline, and a hostile
# label or annotation in a manifest cannot make a reviewer's browser load anything.


def asset(name: str) -> str:
    """A file of podnet/report/assets (the matrix script and styles, shared with the
    dashboard)."""
    return resources.files("podnet.report").joinpath("assets", name).read_text("utf-8")


def to_html(a: Analysis, title: str = "podnet analyze") -> str:
    data = json.dumps(document(a, explain=True, title=title), separators=(",", ":"))
    # inside <script>, "</script>" or "<!--" in a label must not end the element
    data = data.replace("<", "\\u003c")
    esc_title = title.replace("&", "&amp;").replace("<", "&lt;")
    return PAGE.format(title=esc_title, css=asset("matrix.css"), js=asset("matrix.js"), data=data)
