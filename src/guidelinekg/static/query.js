// The SPARQL query page: YASGUI (vendored in static/vendor/yasgui, served by this site) on the
// endpoint of `guidelinekg serve`, with the project's prefixes, the example queries as tabs
// and a results table that shows a literal's text. Nothing is loaded from elsewhere; when
// YASGUI cannot start, the page's plain form stays.
"use strict";

// Each example names the prefixes it uses: they are declared from the page's prefix table.
const EXAMPLES = [
  {
    id: "recommendations",
    name: "Recommendations",
    title: "Recommendations with modality and verbatim text",
    prefixes: ["gkg", "skos"],
    body: `SELECT ?key ?modality ?text WHERE {
  ?statement a gkg:Recommendation ;
      skos:notation ?key ;
      gkg:sectionOrder ?order ;
      gkg:modality/skos:notation ?modality ;
      gkg:verbatimText ?text .
}
ORDER BY ?order`,
  },
  {
    id: "facts",
    name: "Facts tested",
    title: "Facts a statement's criteria test",
    prefixes: ["gkg", "skos"],
    body: `SELECT ?key ?fact WHERE {
  ?statement a gkg:Recommendation ;
      skos:notation ?key ;
      gkg:applicability/gkg:hasMember*/gkg:onFact/skos:notation ?fact .
}
ORDER BY ?key ?fact`,
  },
  {
    id: "doses",
    name: "Dose steps",
    title: "Dose steps of every regimen",
    prefixes: ["gkg", "rdfs"],
    body: `SELECT ?regimen ?step ?amount ?unit ?period ?periodUnit WHERE {
  ?r a gkg:DoseRegimen ; rdfs:label ?regimen ; gkg:hasStep ?s .
  ?s gkg:stepOrder ?step ; gkg:doseAmount ?amount ; gkg:doseUnit ?unit .
  OPTIONAL { ?s gkg:period ?period ; gkg:periodUnit ?periodUnit }
}
ORDER BY ?regimen ?step`,
  },
  {
    id: "unresolved",
    name: "Unresolved sources",
    title: "Statements citing an unresolved source",
    prefixes: ["gkg", "skos"],
    body: `SELECT ?key ?source WHERE {
  ?statement skos:notation ?key ; gkg:hasEvidenceSource ?s .
  ?s a gkg:UnresolvedCitation ; skos:notation ?source .
}
ORDER BY ?key`,
  },
  {
    id: "construct",
    name: "Should-not (CONSTRUCT)",
    title: "CONSTRUCT: the should-not statements with their text",
    prefixes: ["gkg", "skos"],
    body: `CONSTRUCT { ?statement skos:notation ?key ; gkg:verbatimText ?text }
WHERE {
  ?statement a gkg:Recommendation ;
      gkg:modality gkg:ShouldNot ;
      skos:notation ?key ; gkg:verbatimText ?text .
}`,
  },
];

function projectPrefixes() {
  const table = document.getElementById("query-prefixes");
  try {
    return JSON.parse(table ? table.textContent : "{}");
  } catch (error) {
    return {};
  }
}

function exampleText(example, prefixes) {
  const declarations = example.prefixes.filter((name) => name in prefixes)
    .map((name) => "PREFIX " + name + ": <" + prefixes[name] + ">");
  return declarations.join("\n") + "\n\n" + example.body;
}

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]);
}

function compactIri(iri, prefixes) {
  for (const [name, namespace] of Object.entries(prefixes)) {
    if (iri.startsWith(namespace)) return name + ":" + iri.slice(namespace.length);
  }
  return iri;
}

// YASR writes "text"@en or "120"^^xsd:decimal in every cell. A reader wants the text; the
// language (as the lang attribute) and the datatype stay in the cell's tooltip.
function showLiteralText(Table, prefixes) {
  Table.prototype.formatLiteral = function formatLiteral(binding) {
    const text = escapeHtml(binding.value);
    const language = binding["xml:lang"];
    if (language) {
      return "<span lang=\"" + escapeHtml(language) + "\" title=\"language: " +
        escapeHtml(language) + "\">" + text + "</span>";
    }
    if (binding.datatype) {
      return "<span title=\"" + escapeHtml(compactIri(binding.datatype, prefixes)) + "\">" +
        text + "</span>";
    }
    return text;
  };
}

function showOutcome(tab, status) {
  const results = tab.getYasr() ? tab.getYasr().results : undefined;
  if (results && results.hasError()) {
    status.className = "error";
    status.textContent = "the endpoint did not run the query (its message is below)";
    return;
  }
  const bindings = results ? results.getBindings() : undefined;
  status.textContent = bindings ? bindings.length + (bindings.length === 1 ? " row" : " rows")
    : "done";
}

function configureYasgui(Yasgui, prefixes) {
  // Only completers that work offline: YASQE's class and property completers ask Linked
  // Open Vocabularies over the network. The prefix completer offers the project's prefixes
  // (typing gkg: adds its PREFIX line) instead of its bundled list of other vocabularies.
  const completers = ["prefixes", "variables"];
  Yasgui.Yasqe.defaults.autocompleters = completers;
  Yasgui.defaults.yasqe.autocompleters = completers;
  Yasgui.Yasqe.Autocompleters.prefixes.get = Object.entries(prefixes)
    .map(([name, namespace]) => name + ": <" + namespace + ">");
  showLiteralText(Yasgui.Yasr.plugins.table, prefixes);
}

function addExampleTabs(yasgui, prefixes, requested, activateFirst) {
  const tabs = {};
  let first;
  for (const example of EXAMPLES) {
    const tab = yasgui.addTab(activateFirst && first === undefined, {
      name: example.name,
      yasqe: { value: exampleText(example, prefixes) },
    });
    if (first === undefined) first = tab;
    tabs[example.id] = tab;
  }
  return tabs[requested] || first;
}

function startYasgui(Yasgui, root, status) {
  const prefixes = projectPrefixes();
  configureYasgui(Yasgui, prefixes);
  const endpoint = new URL("sparql", document.baseURI).href;
  const parameters = new URLSearchParams(window.location.search);
  const yasgui = new Yasgui(root, {
    requestConfig: { endpoint: endpoint, method: "POST" },
    endpointCatalogueOptions: { getData: () => [{ endpoint: endpoint }] },
    // The examples as shipped on every visit, not tabs stored by an older version.
    persistenceId: null,
    // A link may open a query (YASGUI's share links), never send it elsewhere: what its URL
    // says of the endpoint, method, headers or graphs is replaced by the page's own.
    populateFromUrl: (config) => {
      config.requestConfig = Object.assign({}, config.requestConfig, {
        endpoint: endpoint, method: "POST", headers: {}, namedGraphs: [], defaultGraphs: [],
      });
      return config;
    },
    autoAddOnInit: false,
    yasr: { prefixes: prefixes },
  });
  yasgui.on("queryBefore", () => {
    status.className = "";
    status.textContent = "running…";
  });
  // YASGUI tells of the response before its results view has read it.
  yasgui.on("queryResponse", (instance, tab) => setTimeout(() => showOutcome(tab, status), 0));
  // ?query=... opens that query in a tab of its own (YASGUI's share links do the same).
  const fromLink = yasgui.persistentConfig.getTabs().length > 0;
  const chosen = addExampleTabs(yasgui, prefixes, parameters.get("example"), !fromLink);
  if (!fromLink) {
    yasgui.selectTabId(chosen.getId());
    yasgui.tabElements.selectTab(chosen.getId());
    if (parameters.has("run")) chosen.query().catch(() => {});
  }
  return yasgui;
}

function init() {
  const root = document.getElementById("yasgui");
  const form = document.getElementById("query-form");
  const status = document.getElementById("status");
  if (typeof window.Yasgui !== "function") {
    root.hidden = true;
    status.className = "error";
    status.textContent = "The query editor (YASGUI) did not load: the form below sends the " +
      "query to the endpoint, which answers in SPARQL JSON.";
    return;
  }
  form.hidden = true;
  try {
    window.guidelinekgYasgui = startYasgui(window.Yasgui, root, status);
  } catch (error) {
    form.hidden = false;
    root.hidden = true;
    status.className = "error";
    status.textContent = "The query editor (YASGUI) failed to start (" + error.message +
      "): the form below sends the query to the endpoint.";
  }
}

document.addEventListener("DOMContentLoaded", init);
