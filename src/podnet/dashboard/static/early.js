/* podnet dashboard: read the map's document while the page's scripts (Cytoscape.js, 400 KB)
   load and compile; dashboard.js takes this answer for its first map. */
window.podnetEarly = { graph: fetch("/api/graph", { cache: "no-store" }) };
