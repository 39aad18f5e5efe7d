/* podnet dashboard: the map (Cytoscape.js), the policy matrix (PodnetMatrix, shared with
   `analyze -o html`), policy counters and status over one server-sent event stream, the
   live flows over a second one, and the quarantine action. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = {
    graphRevision: null, storeRevision: null, matrixRevision: null, graph: null,
    features: {}, counters: null, tab: "map", loadingGraph: false, graphFailed: false
  };
  window.podnet = state; // for tests and curious admins

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch];
    });
  }
  // `pending`: a request already under way for url (early.js)
  function getJSON(url, pending) {
    return (pending || fetch(url, { cache: "no-store" })).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { var e = new Error(body.error || r.statusText); e.status = r.status; throw e; }
        return body;
      });
    });
  }

  /* ---------------- map ---------------- */
  var cy = cytoscape({
    container: $("cy"),
    minZoom: 0.05,
    maxZoom: 4,
    textureOnViewport: true,
    hideEdgesOnViewport: true,
    style: [
      // Names of pods, Services, Ingresses and nodes only where they can be read (.named:
      // zoom >= NAMES_ZOOM, where 10 px text is 7 px on screen, the smallest drawn);
      // below it Cytoscape would still measure 1,000 labels and apply their properties.
      { selector: "node.named", style: { "label": "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 2, "min-zoomed-font-size": 7 } },
      { selector: "node[kind='namespace'], node[kind='nodes']", style: {
        "label": "data(label)", "shape": "round-rectangle", "width": "data(w)", "height": "data(h)", "z-compound-depth": "bottom",
        "background-color": "#eef2ff", "background-opacity": 0.6, "border-color": "#a5b4fc",
        "border-width": 1, "text-valign": "top", "text-halign": "center", "text-margin-y": -2, "font-size": 13, "font-weight": "bold" } },
      { selector: "node[kind='nodes']", style: { "background-color": "#f1f5f9", "border-color": "#cbd5e1" } },
      { selector: "node[kind='pod']", style: { "width": 22, "height": 22, "background-color": "#3b82f6" } },
      { selector: "node[kind='pod'][?ingressController]", style: { "shape": "round-diamond", "width": 28, "height": 28, "background-color": "#f59e0b" } },
      { selector: "node[kind='pod'][?hostNetwork]", style: { "background-color": "#64748b" } },
      { selector: "node[kind='pod'][readiness = 'not ready']", style: { "border-width": 3, "border-color": "#dc2626" } },
      { selector: "node[kind='service']", style: { "shape": "round-hexagon", "width": 26, "height": 22, "background-color": "#a855f7" } },
      { selector: "node[kind='ingress']", style: { "shape": "diamond", "width": 26, "height": 26, "background-color": "#f59e0b" } },
      { selector: "node[kind='node']", style: { "shape": "rectangle", "width": 34, "height": 20, "background-color": "#94a3b8" } },
      { selector: "edge", style: { "width": 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.7, "opacity": 0.8 } },
      { selector: "edge.allowed", style: { "line-color": "#16a34a", "target-arrow-color": "#16a34a" } },
      { selector: "edge.denied", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626", "line-style": "solid", "width": 2 } },
      { selector: "edge.mixed", style: { "line-color": "#d97706", "target-arrow-color": "#d97706" } },
      { selector: "edge[port = '*'], edge[source ^= 'ns:']", style: { "curve-style": "straight" } },
      { selector: "edge:loop", style: { "curve-style": "bezier", "loop-direction": "0deg", "loop-sweep": "-60deg" } },
      { selector: "edge.endpoint, edge.backend", style: { "line-color": "#64748b", "target-arrow-color": "#64748b", "line-style": "dashed", "width": 1 } },
      { selector: "edge.notready", style: { "line-color": "#cbd5e1" } },
      { selector: ".hidden", style: { "display": "none" } },
      { selector: ":selected", style: { "overlay-color": "#1d4ed8", "overlay-opacity": 0.25, "overlay-padding": 4 } }
    ]
  });
  state.cy = cy;
  var NAMES_ZOOM = 0.7;
  state.named = false;
  function isMember(n) { var k = n.data("kind"); return k !== "namespace" && k !== "nodes"; }
  function updateNames() {
    var want = cy.zoom() >= NAMES_ZOOM;
    if (want === state.named) return;
    state.named = want;
    cy.batch(function () { cy.nodes().filter(isMember).toggleClass("named", want); });
  }
  cy.on("zoom", updateNames);

  // Namespaces side by side (wrapping), each holding its Services and Ingresses, then its
  // pods, in a square grid; the cluster's nodes in a row on top. Positions are computed
  // here and given to elements as they are added: no layout pass (a preset layout of 1,000
  // children recomputes compound bounds per child, seconds), no force layout either, so
  // that an update does not move what the admin looks at.
  // The groups (namespaces, nodes) are drawn as plain boxes sized from these positions
  // (data w, h), under their members, not as Cytoscape compound nodes: a compound graph
  // makes every style property applied to every element collect the element's
  // descendants, parents and edges (Cytoscape's dirtyStyleCache), 0.4-0.7 s of the first
  // paint at 1,000 pods, and recomputes the parents' bounds as children are measured.
  var STEP = 90, PAD = 30;
  function positions(nodes) {
    var x0 = 0, y0 = 0, rowH = 0, pos = {}, boxes = {}, children = {}, order = { ingress: 0, service: 1, pod: 2 };
    var maxW = Math.max(1200, Math.sqrt(nodes.length) * STEP * 2.2);
    nodes.forEach(function (el) {
      var p = el.data.box;
      if (p) (children[p] = children[p] || []).push(el.data);
      else if (el.data.kind === "namespace" || el.data.kind === "nodes") children[el.data.id] = children[el.data.id] || [];
    });
    function box(id, x1, y1, x2, y2) {
      boxes[id] = { x: (x1 + x2) / 2, y: (y1 + y2) / 2, w: x2 - x1, h: y2 - y1 };
    }
    var hosts = children.nodes || [];
    hosts.forEach(function (d, i) { pos[d.id] = { x: i * STEP * 1.4, y: 0 }; });
    if (hosts.length) { box("nodes", -PAD, -PAD, (hosts.length - 1) * STEP * 1.4 + PAD, PAD + 14); y0 = 120; }
    Object.keys(children).filter(function (p) { return p !== "nodes"; }).sort().forEach(function (ns) {
      var kids = children[ns].sort(function (a, b) {
        return (order[a.kind] - order[b.kind]) || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
      });
      var cols = Math.max(1, Math.ceil(Math.sqrt(kids.length))), rows = Math.max(1, Math.ceil(kids.length / cols));
      var w = cols * STEP + 40, h = rows * STEP + 40;
      if (x0 > 0 && x0 + w > maxW) { x0 = 0; y0 += rowH + 60; rowH = 0; }
      kids.forEach(function (d, i) {
        pos[d.id] = { x: x0 + 20 + (i % cols) * STEP, y: y0 + 30 + Math.floor(i / cols) * STEP };
      });
      box(ns, x0 + 20 - PAD, y0 + 30 - PAD, x0 + 20 + (cols - 1) * STEP + PAD, y0 + 30 + (rows - 1) * STEP + PAD + 14);
      x0 += w + 90; rowH = Math.max(rowH, h);
    });
    Object.keys(boxes).forEach(function (id) { pos[id] = { x: boxes[id].x, y: boxes[id].y }; });
    return { pos: pos, boxes: boxes };
  }

  // The viewport that shows every position: cy.fit() would measure every element's
  // bounding box (its style and label) first, seconds at 1,000 pods.
  function fitTo(pos) {
    var x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
    Object.keys(pos).forEach(function (id) {
      var p = pos[id];
      if (p.x < x1) x1 = p.x; if (p.x > x2) x2 = p.x; if (p.y < y1) y1 = p.y; if (p.y > y2) y2 = p.y;
    });
    if (x1 === Infinity) return;
    x1 -= 60; x2 += 60; y1 -= 60; y2 += 60;
    var w = cy.width(), h = cy.height(), zoom = Math.min(w / (x2 - x1), h / (y2 - y1), 2);
    cy.viewport({ zoom: zoom, pan: { x: (w - zoom * (x1 + x2)) / 2, y: (h - zoom * (y1 + y2)) / 2 } });
  }

  // Label selectors as kubectl reads them: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b).
  function parseSelector(text) {
    var terms = [], re = /\s*(!?)([\w.\/-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*(?:,|$)/y;
    text = text.trim();
    if (!text) return terms;
    re.lastIndex = 0;
    while (re.lastIndex < text.length) {
      var m = re.exec(text);
      if (!m || m[0] === "") return null;
      var values = m[6] !== undefined ? m[6].split(",").map(function (v) { return v.trim(); }) : null;
      terms.push({ not: m[1] === "!", key: m[2], op: m[3] || m[5] || "exists", value: m[4], values: values });
    }
    return terms;
  }
  function matchSelector(terms, labels) {
    return terms.every(function (t) {
      var has = Object.prototype.hasOwnProperty.call(labels, t.key), v = labels[t.key];
      if (t.op === "exists") return t.not ? !has : has;
      if (t.op === "=" || t.op === "==") return has && v === t.value;
      if (t.op === "!=") return !has || v !== t.value;
      if (t.op === "in") return has && t.values.indexOf(v) >= 0;
      return !has || t.values.indexOf(v) < 0; // notin
    });
  }

  // Namespace-level maps draw one edge per namespace pair for all ports; a chosen port's
  // own edges replace them (the document sends them apart: portEdges).
  function showPortEdges(port) {
    if (!state.graph || state.graph.edgeLevel !== "namespace" || state.edgePort === port) return;
    cy.batch(function () {
      cy.edges(".policy").remove();
      var els = port ? state.graph.portEdges[port] || [] : state.graph.elements.filter(function (el) {
        return el.group === "edges" && (el.classes || "").indexOf("policy") === 0;
      });
      cy.add(els);
    });
    state.edgePort = port;
  }

  function applyFilters() {
    var ns = $("f-ns").value, port = $("f-port").value, terms = parseSelector($("f-labels").value);
    showPortEdges(port);
    $("f-note").textContent = terms === null ? "not a label selector" : "";
    if (terms === null) terms = [];
    cy.batch(function () {
      cy.nodes().forEach(function (n) {
        var kind = n.data("kind"), show = true;
        if (kind === "namespace") show = !ns || n.data("label") === ns;
        else if (kind === "pod" || kind === "service" || kind === "ingress") show = !ns || n.data("ns") === ns;
        if (show && kind === "pod" && terms.length) show = matchSelector(terms, n.data("labels"));
        if (show && kind === "service" && terms.length) show = false; // selectors pick pods
        if (show && kind === "ingress" && terms.length) show = false;
        if (n.hasClass("hidden") === show) n.toggleClass("hidden", !show);
      });
      var level = state.graph ? state.graph.edgeLevel : "pod";
      cy.edges().forEach(function (e) {
        var show = !e.source().hasClass("hidden") && !e.target().hasClass("hidden"), p = e.data("port");
        if (show && p && level === "pod") show = !port || p === port;
        if (e.hasClass("hidden") === show) e.toggleClass("hidden", !show);
      });
    });
    state.filtered = Date.now();
  }
  ["f-ns", "f-port"].forEach(function (id) { $(id).addEventListener("change", applyFilters); });
  $("f-labels").addEventListener("input", applyFilters);

  function fillSelect(sel, values) {
    var keep = sel.value;
    sel.innerHTML = '<option value="">all</option>' + values.map(function (v) { return "<option>" + esc(v) + "</option>"; }).join("");
    sel.value = values.indexOf(keep) >= 0 ? keep : "";
  }

  // The document's element as this page draws it: a member's group ("parent") becomes
  // data.box, and a group gets its box's size (see positions).
  function drawn(el, layout) {
    var d = el.data, out = { group: el.group, data: d };
    if (el.classes) out.classes = el.classes;
    if (el.group !== "nodes") return out;
    if (d.parent !== undefined) {
      d = {}; Object.keys(el.data).forEach(function (k) { if (k !== "parent") d[k] = el.data[k]; });
      d.box = el.data.parent;
      out.data = d;
    }
    var b = layout.boxes[d.id];
    if (b) {
      d = Object.assign({}, d, { w: b.w, h: b.h });
      out.data = d;
      out.selectable = false; out.grabbable = false;
    }
    if (layout.pos[d.id]) out.position = layout.pos[d.id];
    return out;
  }

  function applyGraph(doc) {
    var t0 = performance.now(), timings = {};
    var fresh = {}, moved = 0, first = state.graph === null;
    var nodes = [], edges = [];
    doc.elements.forEach(function (el) {
      fresh[el.data.id] = true;
      (el.group === "nodes" ? nodes : edges).push(el);
    });
    var layout = positions(nodes.map(function (el) {
      return { data: { id: el.data.id, box: el.data.parent, kind: el.data.kind, label: el.data.label } };
    }));
    state.positions = layout.pos;
    if (first) fitTo(layout.pos); // the zoom first: names are added with the elements, or not
    state.named = cy.zoom() >= NAMES_ZOOM;
    var named = function (el) {
      if (el.group !== "nodes" || !state.named || layout.boxes[el.data.id]) return el.classes || "";
      return el.classes ? el.classes + " named" : "named";
    };
    cy.batch(function () {
      cy.elements().forEach(function (el) {
        if (!fresh[el.id()]) { if (el.isNode()) moved++; el.remove(); }
      });
      var adding = [];
      nodes.concat(edges).forEach(function (source) {
        var el = drawn(source, layout), have = first ? null : cy.getElementById(el.data.id);
        if (have && have.nonempty()) {
          // touch only what changed: every touched element is styled and drawn again
          var changed = Object.keys(el.data).some(function (k) {
            return JSON.stringify(have.data(k)) !== JSON.stringify(el.data[k]);
          });
          if (changed) have.data(el.data);
          var was = have.classes().filter(function (c) { return c !== "hidden"; }).join(" ");
          if (was !== named(el)) have.classes(named(el));
        } else {
          el.classes = named(el);
          adding.push(el);
          if (el.group === "nodes") moved++;
        }
      });
      cy.add(adding);
      // a pod, Service or node came or went: existing ones move to their new places
      if (moved && !first) cy.nodes().forEach(function (n) { if (layout.pos[n.id()]) n.position(layout.pos[n.id()]); });
    });
    timings.elements = performance.now() - t0;
    state.graph = doc;
    state.graphRevision = doc.revision;
    state.edgePort = ""; // the document's elements hold the all-ports edges
    fillSelect($("f-ns"), doc.namespaces);
    fillSelect($("f-port"), doc.ports);
    fillSelect($("flows-ns"), doc.namespaces);
    $("flows-ns").options[0].textContent = "all namespaces";
    if (!first && moved) { fitTo(state.positions); updateNames(); }
    timings.layout = performance.now() - t0 - timings.elements;
    applyFilters();
    timings.total = performance.now() - t0;
    state.timings = timings;
    state.updated = Date.now();
    if (first) { state.firstGraphMs = performance.now(); state.firstTimings = timings; }
    document.body.setAttribute("data-graph-revision", String(doc.revision));
  }

  // One read of the map at a time; when it returns, the store may have moved on (a
  // "status" event said so meanwhile): read again. A status event that names the
  // revision being read does not start a second read.
  function loadGraph() {
    if (state.loadingGraph) return;
    state.loadingGraph = true;
    var early = window.podnetEarly && window.podnetEarly.graph;
    if (early) window.podnetEarly.graph = null;
    getJSON("/api/graph", early).then(applyGraph).catch(function (e) {
      $("details").textContent = "could not read the cluster: " + e.message;
      state.graphFailed = true;
    }).then(function () {
      state.loadingGraph = false;
      if (!state.graphFailed && state.storeRevision !== null && state.storeRevision !== state.graphRevision) loadGraph();
      state.graphFailed = false;
    });
  }

  /* ---------------- details and actions ---------------- */
  function kv(rows) {
    return '<table class="kv">' + rows.map(function (r) {
      return "<tr><td class=\"muted\">" + esc(r[0]) + "</td><td>" + r[1] + "</td></tr>";
    }).join("") + "</table>";
  }
  function showDetails(el) {
    var d = el.data(), html;
    if (el.isEdge() && d.verdict) {
      var text = d.source.replace(/^(pod|ns):/, "") + " \u2192 " + d.target.replace(/^(pod|ns):/, "") + " on " + d.port;
      html = kv([["edge", esc(text)], ["verdict", esc(d.verdict) + (d.asked ? " (" + d.allowed + " of " + d.asked + " pod pairs)" : "")]]) +
        '<p class="muted">The policy matrix tab explains each pair.</p>';
    } else if (d.kind === "pod") {
      var labels = Object.keys(d.labels).map(function (k) { return esc(k + "=" + d.labels[k]); }).join("<br>");
      html = kv([["pod", esc(d.key)], ["node", esc(d.node)], ["IP", esc(d.ip)], ["ports", esc(d.ports.join(", ") || "-")],
        ["ready", esc(d.readiness === "unknown" ? "unknown (the daemon does not run)" : d.readiness)], ["labels", labels || "-"]]);
    } else if (d.kind === "service") {
      var eps = el.outgoers("edge.endpoint").map(function (e) { return esc(e.target().data("key")) + (e.data("ready") ? "" : " (not ready)"); });
      html = kv([["Service", esc(d.key)], ["type", esc(d.type)], ["ClusterIP", esc(d.clusterIP)], ["ports", esc(d.ports.join(", "))], ["endpoints", eps.join("<br>") || "none ready"]]);
    } else if (d.kind === "node") {
      html = kv([["node", esc(d.label)], ["address", esc(d.ip)], ["podCIDR", esc(d.podCIDR)]]);
    } else {
      html = kv([[d.kind, esc(d.label)]]);
    }
    $("details").className = "";
    $("details").innerHTML = html;
    renderActions(d.kind === "pod" ? d : null);
  }
  cy.on("tap", "node, edge", function (ev) {
    var el = ev.target;
    if (el.isNode() && (el.data("kind") === "namespace" || el.data("kind") === "nodes")) return;
    showDetails(el);
  });

  // Quarantine and its undo: behind a confirmation dialog, run by the server as
  // `podnet quarantine NS/POD [--undo]` (POST, loopback only, with the page's CSRF token);
  // the answer comes once the command returned, with the proof it printed.
  var CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  function renderActions(pod) {
    var box = $("actions"), f = state.features.quarantine;
    if (!pod) { box.innerHTML = ""; return; }
    var ok = f && f.available, undo = Object.prototype.hasOwnProperty.call(pod.labels, "podnet.io/quarantine");
    if (state.acted && state.acted.pod === pod.key) undo = !state.acted.undo;
    var label = (undo ? "Undo quarantine of " : "Quarantine ") + pod.key + "\u2026";
    box.innerHTML = '<button class="danger" id="quarantine" data-undo="' + (undo ? "1" : "") + '"' + (ok ? "" : " disabled") + ">" + esc(label) + "</button>" +
      (ok ? "" : '<p class="note">' + esc(f ? f.note : "not available") + "</p>") + '<pre id="action-output"></pre>';
    if (!ok) return;
    $("quarantine").addEventListener("click", function () { confirmAction(pod.key, undo); });
  }
  function confirmAction(key, undo) {
    var dialog = $("confirm");
    $("confirm-text").textContent = undo
      ? "Lift the quarantine of " + key + "? Its label and quarantine policy go; it is reachable as the other policies say."
      : "Quarantine " + key + "? Every connection to and from it is denied at once (open ones cut), it leaves its Services' endpoints, and a probe proves it.";
    dialog.returnValue = "";
    dialog.onclose = function () { if (dialog.returnValue === "ok") act(key, undo); };
    dialog.showModal();
  }
  function act(key, undo) {
    var out = $("action-output"), button = $("quarantine");
    if (button) button.disabled = true;
    out.className = "";
    out.textContent = (undo ? "podnet quarantine --undo " : "podnet quarantine ") + key + " \u2026";
    fetch("/api/quarantine", {
      method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify({ pod: key, undo: undo })
    }).then(function (r) { return r.json(); }).then(function (doc) {
      if (doc.error) { out.className = "failed"; out.textContent = doc.error; return; }
      state.acted = { pod: key, undo: undo, exit: doc.exit };
      out.className = doc.exit === 0 ? "done" : "failed";
      out.textContent = "$ podnet quarantine " + (undo ? "--undo " : "") + key + "   (exit " + doc.exit + ", " + doc.seconds + " s)\n" + doc.output;
      document.body.setAttribute("data-action-exit", String(doc.exit));
    }).catch(function (e) {
      out.className = "failed"; out.textContent = "the dashboard server did not answer: " + e.message;
    }).then(function () {
      var b = $("quarantine");
      if (!b) return;
      b.disabled = false;
      if (state.acted && state.acted.pod === key && state.acted.exit !== 2) {
        var now = !state.acted.undo;
        b.setAttribute("data-undo", now ? "1" : "");
        b.textContent = (now ? "Undo quarantine of " : "Quarantine ") + key + "\u2026";
        var fresh = b.cloneNode(true); b.parentNode.replaceChild(fresh, b);
        fresh.addEventListener("click", function () { confirmAction(key, now); });
      }
    });
  }

  /* ---------------- counters ---------------- */
  function renderCounters(msg) {
    var box = $("counters");
    if (msg.counts === null) {
      box.className = "muted";
      box.textContent = msg.why;
      return;
    }
    var old = state.counters || {}, names = Object.keys(msg.counts).sort();
    if (!names.length) { box.className = "muted"; box.textContent = "No NetworkPolicy."; return; }
    box.className = "";
    box.innerHTML = '<table class="counters"><thead><tr><th>policy</th><th>accepted</th><th>dropped</th></tr></thead><tbody>' +
      names.map(function (n) {
        var c = msg.counts[n], o = old[n], bump = o && (o[0] !== c[0] || o[1] !== c[1]);
        return '<tr data-policy="' + esc(n) + '"' + (bump ? ' class="bump"' : "") + "><td>" + esc(n) + '</td><td class="num">' + c[0] + '</td><td class="num">' + c[1] + "</td></tr>";
      }).join("") + "</tbody></table>";
    state.counters = msg.counts;
  }

  /* ---------------- flows ---------------- */
  // The flow log as `podnet flows -f` reads it (history, then new records), one
  // "flows" event of rows at most every 0.2 s. The panel keeps FLOW_KEEP rows and draws
  // the newest FLOW_SHOWN that pass the filters; paused, rows still arrive (counted) and
  // the table stands still.
  var FLOW_KEEP = 500, FLOW_SHOWN = 150;
  var flows = { rows: [], paused: false, held: 0, received: 0, skipped: 0, latencies: [], draws: 0 };
  state.flows = flows;
  function flowPasses(r, ns, pod, verdict) {
    if (r.type !== "flow") return !pod && !verdict && (!ns);
    if (verdict && r.verdict !== verdict) return false;
    if (ns && r.src.indexOf(ns + "/") !== 0 && r.dst.indexOf(ns + "/") !== 0) return false;
    if (pod) {
      var match = function (name) { return pod.indexOf("/") >= 0 ? name === pod : name.split("/").pop().indexOf(pod) === 0; };
      if (!match(r.src) && !match(r.dst)) return false;
    }
    return true;
  }
  function hhmmss(t) { var d = new Date(t * 1000); return d.toTimeString().slice(0, 8); }
  function drawFlows() {
    var t0 = performance.now(), ns = $("flows-ns").value, pod = $("flows-pod").value.trim(), verdict = $("flows-verdict").value;
    var shown = [];
    for (var i = flows.rows.length - 1; i >= 0 && shown.length < FLOW_SHOWN; i--) {
      var r = flows.rows[i];
      if (flowPasses(r, ns, pod, verdict)) shown.push(r);
    }
    $("flows-table").tBodies[0].innerHTML = shown.map(function (r) {
      if (r.type !== "flow") return '<tr class="lost"><td>' + hhmmss(r.time) + '</td><td colspan="2">' + esc(r.text) + "</td></tr>";
      return '<tr class="' + r.verdict + '" data-src="' + esc(r.src) + '" data-dst="' + esc(r.dst) + '" data-port="' + r.port + '" data-verdict="' + r.verdict + '" data-time="' + r.time + '">' +
        "<td>" + hhmmss(r.time) + '</td><td><span class="v">' + (r.verdict === "blocked" ? "\u2716" : "\u2714") + "</span> " +
        esc(r.src) + " \u2192 " + esc(r.dst) + ":" + r.port + "/" + esc(r.proto) + (r.service ? ' <span class="muted">via ' + esc(r.service) + "</span>" : "") +
        '<div class="policy">' + esc(r.policy) + "</div></td></tr>";
    }).join("");
    flows.drawMs = performance.now() - t0;
    flows.draws++;
    var note = flows.received + " records" + (flows.skipped ? " (" + flows.skipped + " skipped: too many to show)" : "");
    if (flows.paused) note = "paused \u00b7 " + flows.held + " new since \u00b7 " + note;
    $("flows-note").textContent = note;
  }
  function onFlows(batch) {
    var now = Date.now() / 1000;
    flows.received += batch.rows.length;
    flows.skipped += batch.skipped;
    Array.prototype.push.apply(flows.rows, batch.rows);
    if (flows.rows.length > FLOW_KEEP) flows.rows.splice(0, flows.rows.length - FLOW_KEEP);
    if (flows.paused) { flows.held += batch.rows.length; $("flows-note").textContent = "paused \u00b7 " + flows.held + " new since"; return; }
    drawFlows();
    // the panel's update latency: from the newest record's time to the frame that shows it
    var newest = batch.rows.length ? batch.rows[batch.rows.length - 1].time : null;
    requestAnimationFrame(function () {
      if (newest !== null) flows.latencies.push(Date.now() / 1000 - newest);
      if (flows.latencies.length > 2000) flows.latencies.shift();
      flows.shownAt = now;
    });
  }
  $("flows-pause").addEventListener("click", function () {
    flows.paused = !flows.paused;
    $("flows-pause").textContent = flows.paused ? "Resume" : "Pause";
    $("flows-pause").classList.toggle("on", flows.paused);
    if (!flows.paused) { flows.held = 0; drawFlows(); }
  });
  ["flows-ns", "flows-verdict"].forEach(function (id) { $(id).addEventListener("change", drawFlows); });
  $("flows-pod").addEventListener("input", drawFlows);
  function startFlows() {
    var f = state.features.flows;
    if (!f || !f.available) {
      $("flows-note").textContent = f ? f.note : "not available";
      $("flows-pause").disabled = true;
      return;
    }
    $("flows-note").textContent = "reading the flow log\u2026";
    var source = new EventSource("/api/flows");
    source.addEventListener("flows", function (ev) { onFlows(JSON.parse(ev.data)); });
  }

  /* ---------------- matrix ---------------- */
  function loadMatrix() {
    if (state.matrixRevision === state.storeRevision && state.matrixRevision !== null) return;
    getJSON("/api/matrix").then(function (doc) {
      state.matrixRevision = doc.revision;
      var root = $("matrix");
      root.className = "";
      PodnetMatrix.render(root, doc, {
        explain: function (k, r, c) {
          return getJSON("/api/explain?rev=" + doc.revision + "&k=" + k + "&r=" + r + "&c=" + c).catch(function (e) {
            if (e.status === 409) { loadMatrix(); return "The cluster changed: the matrix is being read again."; }
            throw e;
          });
        }
      });
      document.body.setAttribute("data-matrix-revision", String(doc.revision));
    });
  }

  /* ---------------- tabs, status, events ---------------- */
  Array.prototype.forEach.call(document.querySelectorAll("header nav button"), function (b) {
    b.addEventListener("click", function () {
      state.tab = b.getAttribute("data-tab");
      Array.prototype.forEach.call(document.querySelectorAll("header nav button"), function (o) { o.classList.toggle("on", o === b); });
      Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (t) { t.classList.toggle("on", t.id === "tab-" + state.tab); });
      if (state.tab === "matrix") loadMatrix(); else cy.resize();
    });
  });

  function onStatus(s) {
    $("cluster").textContent = s.cluster;
    var badge = $("sync"), d = s.daemon;
    state.storeRevision = s.revision;
    if (!d.running) { badge.className = "badge down"; badge.textContent = "daemon not running \u00b7 store revision " + s.revision; }
    else if (d.synced !== null && d.synced >= s.revision) { badge.className = "badge ok"; badge.textContent = "in force \u00b7 revision " + s.revision; }
    else { badge.className = "badge busy"; badge.textContent = "syncing revision " + s.revision + (d.error ? " \u00b7 " + d.error : ""); }
    if (s.revision !== state.graphRevision) loadGraph();
    if (state.tab === "matrix") loadMatrix();
  }

  loadGraph(); // the map first: it does not wait for the status (early.js asked already)
  getJSON("/api/status").then(function (s) {
    state.features = s.features;
    startFlows();
    onStatus(s);
    var events = new EventSource("/api/events");
    events.addEventListener("status", function (ev) { onStatus(JSON.parse(ev.data)); });
    events.addEventListener("counters", function (ev) { renderCounters(JSON.parse(ev.data)); });
    events.onerror = function () { $("sync").className = "badge down"; $("sync").textContent = "dashboard server unreachable"; };
  });
})();
