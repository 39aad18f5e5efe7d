/* podnet: draws the analyzer's matrix document (podnet.report.matrix_doc) in a page.
   One script for the self-contained HTML report and for the dashboard's matrix tab.
   PodnetMatrix.render(root, doc, {explain: function (k, r, c) -> Promise<verdict|string>}) */
(function (global) {
  "use strict";
  var SYMBOL = { a: "\u2713", d: "\u2717", m: "\u00b1", ".": "\u00b7" };
  var WORD = { a: "allowed", d: "denied", m: "some pairs allowed", ".": "not asked" };

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch];
    });
  }

  // The text `podnet explain` prints (podnet.report.explanation.verdict_text), line for line.
  function directionText(d, subject) {
    var where = d.direction === "ingress" ? "at the destination" : "at the source";
    var lines = ["  " + d.direction + " " + where + " " + subject + ": " + (d.allowed ? "allowed" : "DENIED")];
    if (!d.isolated) {
      lines.push("    " + d.note);
      return lines;
    }
    lines.push("    isolated by: " + d.policies.join(", "));
    d.admitted_by.forEach(function (a) { lines.push("    admitted by " + a); });
    if (!d.allowed) {
      if (d.note) lines.push("    " + d.note);
      if (d.misses.length) {
        lines.push("    no rule admits it; nearest misses:");
        d.misses.forEach(function (m) {
          var rule = Array.isArray(m) ? m[0] : m.rule, why = Array.isArray(m) ? m[1] : m.why;
          lines.push("      " + rule + ": " + why);
        });
      } else if (!d.note) {
        lines.push("    no rule admits it");
      }
    }
    return lines;
  }

  function verdictText(v) {
    var lines = [v.source + " -> " + v.destination + " on " + v.port + "/" + v.protocol + ": " + (v.allowed ? "ALLOWED" : "DENIED")];
    if (v.reason) lines.push("  " + v.reason);
    if (v.egress) lines = lines.concat(directionText(v.egress, v.egress.subject || v.source));
    if (v.ingress) lines = lines.concat(directionText(v.ingress, v.ingress.subject || v.destination));
    return lines.join("\n") + "\n";
  }

  // An explanation stored in the document: [src, dst, allowed, reason, egress, ingress].
  function storedDirection(doc, n) {
    if (n < 0) return null;
    var d = doc.directions[n], str = doc.strings, misses = [];
    for (var i = 0; i < d[6].length; i += 2) misses.push([str[d[6][i]], str[d[6][i + 1]]]);
    return {
      direction: d[0] ? "ingress" : "egress", allowed: !!d[1], isolated: !!d[2], note: str[d[3]],
      policies: d[4].map(function (x) { return str[x]; }),
      admitted_by: d[5].map(function (x) { return str[x]; }), misses: misses
    };
  }

  function storedVerdict(doc, k, e) {
    var pp = doc.ports[k], str = doc.strings;
    return {
      source: doc.pods[e[0]].key, destination: doc.pods[e[1]].key,
      port: pp.port, protocol: pp.protocol, allowed: !!e[2],
      reason: e[3] >= 0 ? str[e[3]] : "",
      egress: storedDirection(doc, e[4]),
      ingress: storedDirection(doc, e[5])
    };
  }

  function firstPair(doc, r, c) {
    var rows = doc.rows[r].members, cols = doc.cols[c].members;
    for (var i = 0; i < rows.length; i++)
      for (var j = 0; j < cols.length; j++)
        if (rows[i] !== cols[j]) return [doc.pods[rows[i]].key, doc.pods[cols[j]].key];
    return null;
  }

  // The report's own answers; cells past its explain limit name the question to ask.
  function inlineExplain(doc) {
    return function (k, r, c) {
      var stored = doc.ports[k].explain[r + "," + c];
      if (stored) return stored.map(function (e) { return verdictText(storedVerdict(doc, k, e)); }).join("\n");
      var pair = firstPair(doc, r, c), pp = doc.ports[k];
      return "This report explains " + doc.explained + " of its " + doc.cells +
        " cells (denied and mixed first). Ask podnet:\n  podnet explain -f ... --from " +
        pair[0] + " --to " + pair[1] + " --port " + pp.port + "/" + pp.protocol + "\n";
    };
  }

  function matches(label, text) { return !text || label.toLowerCase().indexOf(text) >= 0; }

  // Beyond VIRTUAL_ROWS rows, only the rows in view (and a margin) are in the page: a
  // 238 x 238 group matrix is 57,000 cells per port, which took seconds to lay out.
  var VIRTUAL_ROWS = 120, ROW_H = 19, MARGIN = 15;

  function headHtml(doc, k, colIdx) {
    var pp = doc.ports[k], out = [];
    out.push('<table class="pn-grid" data-port="' + pp.port + "/" + pp.protocol + '"><thead><tr><th class="pn-row">from \\ to</th>');
    colIdx.forEach(function (c) {
      out.push('<th title="' + esc(doc.cols[c].label) + '" data-label="' + esc(doc.cols[c].label) + '">' + (c + 1) + "</th>");
    });
    out.push("</tr></thead><tbody></tbody></table>");
    return out.join("");
  }

  function rowsHtml(doc, k, rowIdx, colIdx, from, to, number) {
    var pp = doc.ports[k], out = [];
    for (var n = from; n < to; n++) {
      var r = rowIdx[n], line = pp.cells[r], label = doc.rows[r].label;
      out.push('<tr data-r="' + r + '"><th class="pn-row" data-label="' + esc(label) + '">' +
        (number[label] ? '<span class="pn-muted">' + number[label] + "</span> " : "") + esc(label) + "</th>");
      for (var i = 0; i < colIdx.length; i++) {
        var c = colIdx[i], code = line.charAt(c);
        out.push('<td class="' + (code === "." ? "n" : code) + '" data-c="' + c + '">' + SYMBOL[code] + "</td>");
      }
      out.push("</tr>");
    }
    return out.join("");
  }

  function spacer(height, span) {
    return height > 0 ? '<tr class="pn-spacer" style="height:' + height + 'px"><td colspan="' + span + '"></td></tr>' : "";
  }

  // Draws the grid into `wrap`; returns a function that redraws the rows in view.
  function drawGrid(wrap, doc, k, rowIdx, colIdx) {
    var number = {}, shown = { from: -1, to: -1 };
    doc.cols.forEach(function (g, c) { number[g.label] = c + 1; });
    wrap.innerHTML = headHtml(doc, k, colIdx);
    var body = wrap.querySelector("tbody");
    if (rowIdx.length <= VIRTUAL_ROWS) {
      body.innerHTML = rowsHtml(doc, k, rowIdx, colIdx, 0, rowIdx.length, number);
      return function () {};
    }
    function inView() {
      var top = wrap.scrollTop, h = wrap.clientHeight || 800;
      var from = Math.max(0, Math.floor(top / ROW_H) - MARGIN);
      var to = Math.min(rowIdx.length, Math.ceil((top + h) / ROW_H) + MARGIN);
      if (from === shown.from && to === shown.to) return;
      shown = { from: from, to: to };
      body.innerHTML = spacer(from * ROW_H, colIdx.length + 1) + rowsHtml(doc, k, rowIdx, colIdx, from, to, number) +
        spacer((rowIdx.length - to) * ROW_H, colIdx.length + 1);
    }
    inView();
    return inView;
  }

  function policiesHtml(doc) {
    if (!doc.policies.length) return '<p class="pn-muted">No NetworkPolicy: every pod is non-isolated.</p>';
    return doc.policies.map(function (p) {
      return '<details class="pn-policy"><summary>' + esc(p.key) + ' <span class="pn-muted">' +
        esc(p.types.join(", ")) + "</span></summary><pre>" + esc(JSON.stringify(p.spec, null, 2)) + "</pre></details>";
    }).join("");
  }

  function groupsHtml(doc) {
    var grouped = doc.rows.concat(doc.cols).filter(function (g, i, all) {
      return g.members.length > 1 && all.findIndex(function (h) { return h.label === g.label; }) === i;
    });
    if (!grouped.length) return '<p class="pn-muted">Every pod has its own row and column.</p>';
    return "<ul>" + grouped.map(function (g) {
      return "<li><b>" + esc(g.label) + "</b>: " + g.members.map(function (m) { return esc(doc.pods[m].key); }).join(", ") + "</li>";
    }).join("") + "</ul>";
  }

  function outsideHtml(doc) {
    if (!doc.outside.length) return "";
    return '<h2>Outside peers</h2><table class="pn-grid"><thead><tr><th>from</th><th>to</th><th>port</th><th>verdict</th></tr></thead><tbody>' +
      doc.outside.map(function (o) {
        return "<tr><td>" + esc(o.from) + "</td><td>" + esc(o.to) + "</td><td>" + o.port + "/" + o.protocol +
          '</td><td class="' + (o.allowed ? "a" : "d") + '">' + (o.allowed ? "allowed" : "denied") + "</td></tr>";
      }).join("") + "</tbody></table>";
  }

  function render(root, doc, opts) {
    opts = opts || {};
    var explain = opts.explain || inlineExplain(doc);
    var state = { k: 0, filter: "" };
    root.classList.add("pn-matrix");
    root.innerHTML =
      '<div class="pn-tabs"></div>' +
      '<p><input class="pn-filter" placeholder="filter rows and columns (ns/name)"> <span class="pn-count pn-muted"></span></p>' +
      '<p class="pn-legend"><span>\u2713 allowed</span><span>\u2717 denied</span><span>\u00b1 some pairs of the groups allowed</span><span>\u00b7 not asked (the destination does not declare the port, or a pod to itself)</span></p>' +
      '<div class="pn-grid-wrap"></div><h2>Explanation</h2><div class="pn-explain pn-muted">Click a cell.</div>' +
      (opts.noGroups ? "" : "<h2>Groups</h2>" + groupsHtml(doc)) +
      (opts.noPolicies ? "" : "<h2>Policies</h2>" + policiesHtml(doc)) + outsideHtml(doc);
    var tabs = root.querySelector(".pn-tabs"), wrap = root.querySelector(".pn-grid-wrap");
    var panel = root.querySelector(".pn-explain"), count = root.querySelector(".pn-count");
    if (!doc.ports.length) {
      wrap.innerHTML = '<p class="pn-muted">No ports to ask about: the destinations declare no container ports.</p>';
    }
    doc.ports.forEach(function (pp, k) {
      var b = document.createElement("button");
      b.textContent = pp.port + "/" + pp.protocol;
      b.title = pp.allowed + " of " + pp.asked + " pod pairs allowed";
      b.addEventListener("click", function () { state.k = k; draw(); });
      tabs.appendChild(b);
    });
    function draw() {
      if (!doc.ports.length) return;
      var text = state.filter.toLowerCase();
      var rows = [], cols = [];
      doc.rows.forEach(function (g, r) { if (matches(g.label, text)) rows.push(r); });
      doc.cols.forEach(function (g, c) { if (matches(g.label, text)) cols.push(c); });
      Array.prototype.forEach.call(tabs.children, function (b, i) { b.classList.toggle("on", i === state.k); });
      var pp = doc.ports[state.k];
      count.textContent = "port " + pp.port + "/" + pp.protocol + ": " + pp.allowed + " of " + pp.asked +
        " pod pairs allowed; " + rows.length + " rows \u00d7 " + cols.length + " columns shown";
      state.inView = drawGrid(wrap, doc, state.k, rows, cols);
    }
    var scheduled = false;
    wrap.addEventListener("scroll", function () {
      if (scheduled || !state.inView) return;
      scheduled = true;
      requestAnimationFrame(function () { scheduled = false; state.inView(); });
    });
    root.querySelector(".pn-filter").addEventListener("input", function (ev) { state.filter = ev.target.value; draw(); });
    wrap.addEventListener("click", function (ev) {
      var td = ev.target.closest("td");
      if (!td || td.classList.contains("n") || !td.hasAttribute("data-c")) return;
      var r = +td.parentNode.getAttribute("data-r"), c = +td.getAttribute("data-c");
      var old = wrap.querySelector("td.sel");
      if (old) old.classList.remove("sel");
      td.classList.add("sel");
      panel.classList.remove("pn-muted");
      panel.textContent = "\u2026";
      Promise.resolve(explain(state.k, r, c)).then(function (answer) {
        panel.textContent = typeof answer === "string" ? answer : answer.map(verdictText).join("\n");
      }, function (err) { panel.textContent = "error: " + err; });
    });
    draw();
    return { draw: draw, state: state };
  }

  global.PodnetMatrix = { render: render, verdictText: verdictText, WORD: WORD };
})(window);
