// Completeness per gateway: for each gateway that numbers its records, the number below which every
// record is stored (the watermark) and the missing ranges above it, from GET /gateways/completeness.
import { getJson } from "./api.js";
import { $, h, say } from "./dom.js";
import { dateTime, number } from "./format.js";
import { t } from "./i18n.js";

const COLUMNS = ["gw.id", "gw.watermark", "gw.highest", "gw.stored", "gw.missing", "gw.gaps", "gw.last"];
const MAX_GAPS = 20;

/** "5–7, 12" (a gap of one number is the number alone); "…" when the API listed only the first ones. */
function gapText(gateway) {
  const parts = gateway.gaps.map((g) => (g.from === g.to ? number(g.from, 0) : `${number(g.from, 0)}–${number(g.to, 0)}`));
  return parts.join(", ") + (gateway.gaps_truncated ? ", …" : "");
}

function row(gateway) {
  const complete = gateway.missing === 0;
  return h("tr", { className: complete ? "gw-complete" : "gw-gaps", dataset: { gateway: gateway.gateway_id } },
    h("td", {}, gateway.gateway_id),
    h("td", { className: "num" }, number(gateway.watermark, 0)),
    h("td", { className: "num" }, number(gateway.highest, 0)),
    h("td", { className: "num" }, number(gateway.stored, 0)),
    h("td", { className: "num" }, number(gateway.missing, 0)),
    h("td", { title: gapText(gateway) }, complete ? t("gw.none") : gapText(gateway)),
    h("td", {}, dateTime(gateway.last_call)));
}

/** Load every gateway of the token's company and draw the table. */
export async function refresh() {
  const table = $("#gw-table");
  table.querySelector("thead").replaceChildren(h("tr", {}, COLUMNS.map((key) => h("th", { scope: "col" }, t(key)))));
  try {
    const body = await getJson(`/gateways/completeness?max_gaps=${MAX_GAPS}`);
    table.querySelector("tbody").replaceChildren(...body.gateways.map(row));
    const withGaps = body.gateways.filter((g) => g.missing > 0).length;
    say($("#gw-msg"), body.gateways.length ? t("gw.summary", { n: body.gateways.length, gaps: withGaps }) : t("gw.empty"),
      withGaps > 0);
  } catch (e) {
    say($("#gw-msg"), e.message, true);
  }
  table.dataset.loads = String(Number(table.dataset.loads || 0) + 1);
}

export function setup() {
  $("#gw-refresh").addEventListener("click", refresh);
}
