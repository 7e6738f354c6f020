// The SPARQL query page: runs a query on the endpoint of `guidelinekg serve` and shows the
// result. Written for this site; loads nothing from elsewhere.
"use strict";

const PREFIXES = `PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX fact: <https://w3id.org/guidelinekg/fact/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
`;

const EXAMPLES = {
  recommendations: PREFIXES + `
SELECT ?key ?modality ?text WHERE {
  ?statement a gkg:Recommendation ;
      skos:notation ?key ;
      gkg:sectionOrder ?order ;
      gkg:modality/skos:notation ?modality ;
      gkg:verbatimText ?text .
}
ORDER BY ?order`,
  facts: PREFIXES + `
SELECT ?key ?fact WHERE {
  ?statement a gkg:Recommendation ;
      skos:notation ?key ;
      gkg:applicability/gkg:hasMember*/gkg:onFact/skos:notation ?fact .
}
ORDER BY ?key ?fact`,
  doses: PREFIXES + `
SELECT ?regimen ?step ?amount ?unit ?period ?periodUnit WHERE {
  ?r a gkg:DoseRegimen ; rdfs:label ?regimen ; gkg:hasStep ?s .
  ?s gkg:stepOrder ?step ; gkg:doseAmount ?amount ; gkg:doseUnit ?unit .
  OPTIONAL { ?s gkg:period ?period ; gkg:periodUnit ?periodUnit }
}
ORDER BY ?regimen ?step`,
  unresolved: PREFIXES + `
SELECT ?key ?source WHERE {
  ?statement skos:notation ?key ; gkg:hasEvidenceSource ?s .
  ?s a gkg:UnresolvedCitation ; skos:notation ?source .
}
ORDER BY ?key`,
  construct: PREFIXES + `
CONSTRUCT { ?statement skos:notation ?key ; gkg:verbatimText ?text }
WHERE {
  ?statement a gkg:Recommendation ;
      gkg:modality gkg:ShouldNot ;
      skos:notation ?key ; gkg:verbatimText ?text .
}`,
};

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function termText(term) {
  if (!term) return "";
  if (term.type === "uri") return term.value;
  if (term.type === "bnode") return "_:" + term.value;
  let shown = term.value;
  if (term["xml:lang"]) shown += " @" + term["xml:lang"];
  return shown;
}

function showTable(results, data) {
  const table = element("table", undefined, "results");
  const head = table.createTHead().insertRow();
  for (const name of data.head.vars) head.appendChild(element("th", name));
  const body = table.createTBody();
  for (const binding of data.results.bindings) {
    const row = body.insertRow();
    for (const name of data.head.vars) row.insertCell().textContent = termText(binding[name]);
  }
  results.appendChild(table);
  return data.results.bindings.length + " rows";
}

async function runQuery(event) {
  if (event) event.preventDefault();
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  const query = document.getElementById("query").value;
  const accept = document.getElementById("accept").value;
  const endpoint = document.getElementById("endpoint").value || "sparql";
  results.replaceChildren();
  status.className = "";
  status.textContent = "running…";
  try {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/sparql-query", "Accept": accept },
      body: query,
    });
    const type = response.headers.get("Content-Type") || "";
    const body = await response.text();
    if (!response.ok) {
      status.className = "error";
      status.textContent = "HTTP " + response.status + ": " + body;
      return;
    }
    if (type.startsWith("application/sparql-results+json")) {
      const data = JSON.parse(body);
      if ("boolean" in data) {
        status.textContent = "ASK: " + data.boolean;
      } else {
        status.textContent = showTable(results, data);
      }
    } else {
      results.appendChild(element("pre", body, "result"));
      status.textContent = "done (" + type + ")";
    }
  } catch (error) {
    status.className = "error";
    status.textContent = "No SPARQL endpoint answered at '" + endpoint +
      "' (" + error.message + "). Run `guidelinekg serve` and open this page from it.";
  }
}

function init() {
  const select = document.getElementById("example");
  const textarea = document.getElementById("query");
  const parameters = new URLSearchParams(window.location.search);
  select.addEventListener("change", () => { textarea.value = EXAMPLES[select.value]; });
  document.getElementById("query-form").addEventListener("submit", runQuery);
  if (parameters.has("query")) {
    textarea.value = parameters.get("query");
    if (parameters.has("accept")) document.getElementById("accept").value = parameters.get("accept");
    runQuery();
  } else if (parameters.has("example") && EXAMPLES[parameters.get("example")]) {
    select.value = parameters.get("example");
    textarea.value = EXAMPLES[select.value];
    if (parameters.has("run")) runQuery();
  } else {
    textarea.value = EXAMPLES[select.value];
  }
}

document.addEventListener("DOMContentLoaded", init);
