// The console's words in Portuguese (default) and English, and the locale numbers and dates follow.
// Column and filter labels are not here: they come from the report's own definition
// (/console/report-fields.json, i.e. schemas/report_api_logs.json), shared with the CSV and print view.

const WORDS = {
  pt: {
    "app.title": "Trilha — Registros de API", "skip": "Ir para o conteúdo", "tab.logs": "Registros de API", "tab.dashboard": "Painel",
    "tab.schedules": "Agendamentos", "tab.events": "API de Eventos", "nav.label": "Telas",
    "token.label": "Token de acesso", "token.use": "Entrar", "token.forget": "Sair", "lang.label": "Idioma",
    "tz.label": "Fuso horário", "token.needed": "Informe um token de acesso para começar.",
    "bar.label": "Ações do relatório", "bar.filters": "Mostrar os filtros", "bar.refresh": "Atualizar",
    "bar.actions": "Exibir ações", "bar.print": "Imprimir relatório", "bar.csv": "Exportar CSV",
    "bar.schedule": "Agendar relatório", "menu.schedules": "Ver agendamentos", "menu.dashboard": "Ver painel",
    "menu.clear": "Limpar filtros", "filters.search": "Buscar", "filters.clear": "Limpar", "filters.all": "Todos",
    "yes": "Sim", "no": "Não", "date.placeholder": "DD/MM/AAAA HH:MM", "day.placeholder": "DD/MM/AAAA",
    "date.bad": "Data inválida em “{field}”: use DD/MM/AAAA HH:MM.", "status.placeholder": "200, 404, 4xx…",
    "ip.placeholder": "10.0.0.1 ou 10.0.0.0/8",
    "rows.count": "{n} registro(s) nesta página", "rows.none": "Nenhum registro encontrado.",
    "rows.loading": "Carregando…", "page.prev": "Página anterior", "page.next": "Próxima página",
    "page.label": "Página {n}", "table.caption": "Registros de API, do mais recente ao mais antigo",
    "detail.title": "Registro {id}", "detail.close": "Fechar", "detail.request": "Requisição (request)",
    "detail.result": "Resultado (result)", "detail.fields": "Campos", "detail.loading": "Carregando o registro…",
    "csv.done": "CSV exportado: {name}", "print.opened": "Relatório aberto para impressão.",
    "schedule.title": "Agendar relatório", "schedule.edit": "Editar agendamento", "schedule.name": "Nome",
    "schedule.frequency": "Recorrência", "schedule.daily": "Diária", "schedule.weekly": "Semanal",
    "schedule.monthly": "Mensal", "schedule.weekday": "Dia da semana", "schedule.day": "Dia do mês",
    "schedule.time": "Hora", "schedule.range": "Período", "schedule.previous_day": "Dia anterior",
    "schedule.previous_week": "Semana anterior", "schedule.previous_month": "Mês anterior",
    "schedule.destination": "Destino", "schedule.directory": "Diretório no servidor",
    "schedule.webhook": "Webhook (URL)", "schedule.target": "Diretório ou URL", "schedule.filters": "Filtros",
    "schedule.save": "Salvar", "schedule.cancel": "Cancelar", "schedule.saved": "Agendamento salvo.",
    "schedule.deleted": "Agendamento excluído.", "schedule.confirm": "Excluir o agendamento “{name}”?",
    "schedule.none": "Nenhum agendamento.", "schedule.new": "Novo agendamento", "schedule.next": "Próxima execução",
    "schedule.last": "Última execução", "schedule.actions": "Ações", "schedule.history": "Histórico",
    "schedule.delete": "Excluir", "schedule.editButton": "Editar", "schedule.reload": "Atualizar",
    "schedule.filtersFrom": "Os filtros atuais do relatório (exceto as datas) vão com o agendamento.",
    "runs.title": "Histórico de “{name}”", "runs.when": "Quando", "runs.period": "Período coberto",
    "runs.status": "Situação", "runs.rows": "Registros", "runs.where": "Entregue em", "runs.error": "Erro",
    "runs.file": "Arquivo", "runs.download": "Baixar", "runs.none": "Nenhuma execução ainda.",
    "run.delivered": "entregue", "run.failed": "falhou (nova tentativa)", "run.abandoned": "abandonada",
    "run.started": "em andamento",
    "weekday.0": "segunda", "weekday.1": "terça", "weekday.2": "quarta", "weekday.3": "quinta",
    "weekday.4": "sexta", "weekday.5": "sábado", "weekday.6": "domingo",
    "dash.title": "Painel", "dash.window": "Período", "dash.24h": "Últimas 24 horas", "dash.7d": "Últimos 7 dias",
    "dash.30d": "Últimos 30 dias", "dash.calls": "Chamadas", "dash.errors": "Erros", "dash.errorRate": "Taxa de erro",
    "dash.p50": "Tempo p50 (ms)", "dash.p95": "Tempo p95 (ms)", "dash.overTime": "Chamadas e erros ao longo do tempo",
    "dash.p95OverTime": "Tempo p95 (ms) ao longo do tempo", "dash.resources": "Recursos mais chamados",
    "dash.clients": "Clientes que mais chamam", "dash.updated": "Atualizado às {time}; atualiza sozinho a cada {s} s.",
    "dash.empty": "Sem dados no período.", "dash.byClass": "Por classe de status",
    "events.title": "API de Eventos", "events.queryId": "QueryId", "events.queryDate": "Data da consulta (opcional)",
    "events.q": "q (parâmetros de entrada)", "events.tags": "Tags (chave=valor, separadas por vírgula)",
    "events.pageSize": "Registros por página", "events.search": "Consultar", "events.found": "{n} registro(s)",
    "events.needOne": "Informe QueryId, q ou Tags.", "events.caption": "Registros encontrados pela API de Eventos",
    "events.tagsBad": "Tags: use chave=valor, separadas por vírgula.",
    "col.queryId": "QueryId", "col.q": "Parâmetros (q)", "col.tags": "Tags",
    "error.generic": "Erro {status}", "error.network": "Sem resposta do serviço.",
    "tab.gateways": "Completude", "gw.title": "Completude por gateway", "gw.id": "Gateway",
    "gw.watermark": "Completo até", "gw.highest": "Maior número", "gw.stored": "Armazenados", "gw.missing": "Faltando",
    "gw.gaps": "Lacunas", "gw.last": "Última chamada", "gw.none": "nenhuma",
    "gw.explain": "Cada gateway numera os registros da sua empresa (1, 2, 3…). “Completo até”: todo registro até esse número está armazenado; as lacunas são os números que faltam acima dele. Registros perdidos depois do maior número só aparecem quando chega um registro mais novo.",
    "gw.summary": "{n} gateway(s); {gaps} com lacunas.", "gw.empty": "Nenhum gateway numera os registros desta empresa.",
  },
  en: {
    "app.title": "Trilha — API logs", "skip": "Skip to content", "tab.logs": "API logs", "tab.dashboard": "Dashboard",
    "tab.schedules": "Schedules", "tab.events": "Events API", "nav.label": "Screens",
    "token.label": "Access token", "token.use": "Sign in", "token.forget": "Sign out", "lang.label": "Language",
    "tz.label": "Time zone", "token.needed": "Enter an access token to start.",
    "bar.label": "Report actions", "bar.filters": "Show the filters", "bar.refresh": "Refresh",
    "bar.actions": "Show actions", "bar.print": "Print report", "bar.csv": "Export CSV",
    "bar.schedule": "Schedule report", "menu.schedules": "See schedules", "menu.dashboard": "See dashboard",
    "menu.clear": "Clear filters", "filters.search": "Search", "filters.clear": "Clear", "filters.all": "All",
    "yes": "Yes", "no": "No", "date.placeholder": "YYYY-MM-DD HH:MM", "day.placeholder": "YYYY-MM-DD",
    "date.bad": "Invalid date in “{field}”: use YYYY-MM-DD HH:MM.", "status.placeholder": "200, 404, 4xx…",
    "ip.placeholder": "10.0.0.1 or 10.0.0.0/8",
    "rows.count": "{n} record(s) on this page", "rows.none": "No records found.",
    "rows.loading": "Loading…", "page.prev": "Previous page", "page.next": "Next page",
    "page.label": "Page {n}", "table.caption": "API logs, newest first",
    "detail.title": "Record {id}", "detail.close": "Close", "detail.request": "Request",
    "detail.result": "Result", "detail.fields": "Fields", "detail.loading": "Loading the record…",
    "csv.done": "CSV exported: {name}", "print.opened": "Report opened for printing.",
    "schedule.title": "Schedule report", "schedule.edit": "Edit schedule", "schedule.name": "Name",
    "schedule.frequency": "Recurrence", "schedule.daily": "Daily", "schedule.weekly": "Weekly",
    "schedule.monthly": "Monthly", "schedule.weekday": "Weekday", "schedule.day": "Day of month",
    "schedule.time": "Time", "schedule.range": "Period", "schedule.previous_day": "Previous day",
    "schedule.previous_week": "Previous week", "schedule.previous_month": "Previous month",
    "schedule.destination": "Destination", "schedule.directory": "Directory on the server",
    "schedule.webhook": "Webhook (URL)", "schedule.target": "Directory or URL", "schedule.filters": "Filters",
    "schedule.save": "Save", "schedule.cancel": "Cancel", "schedule.saved": "Schedule saved.",
    "schedule.deleted": "Schedule deleted.", "schedule.confirm": "Delete the schedule “{name}”?",
    "schedule.none": "No schedules.", "schedule.new": "New schedule", "schedule.next": "Next run",
    "schedule.last": "Last run", "schedule.actions": "Actions", "schedule.history": "History",
    "schedule.delete": "Delete", "schedule.editButton": "Edit", "schedule.reload": "Refresh",
    "schedule.filtersFrom": "The report's current filters (except the dates) go with the schedule.",
    "runs.title": "History of “{name}”", "runs.when": "When", "runs.period": "Period covered",
    "runs.status": "Status", "runs.rows": "Rows", "runs.where": "Delivered to", "runs.error": "Error",
    "runs.file": "File", "runs.download": "Download", "runs.none": "No runs yet.",
    "run.delivered": "delivered", "run.failed": "failed (will retry)", "run.abandoned": "abandoned",
    "run.started": "running",
    "weekday.0": "Monday", "weekday.1": "Tuesday", "weekday.2": "Wednesday", "weekday.3": "Thursday",
    "weekday.4": "Friday", "weekday.5": "Saturday", "weekday.6": "Sunday",
    "dash.title": "Dashboard", "dash.window": "Period", "dash.24h": "Last 24 hours", "dash.7d": "Last 7 days",
    "dash.30d": "Last 30 days", "dash.calls": "Calls", "dash.errors": "Errors", "dash.errorRate": "Error rate",
    "dash.p50": "Time p50 (ms)", "dash.p95": "Time p95 (ms)", "dash.overTime": "Calls and errors over time",
    "dash.p95OverTime": "Time p95 (ms) over time", "dash.resources": "Most called resources",
    "dash.clients": "Busiest clients", "dash.updated": "Updated at {time}; refreshes by itself every {s} s.",
    "dash.empty": "No data in the period.", "dash.byClass": "By status class",
    "events.title": "Events API", "events.queryId": "QueryId", "events.queryDate": "Query date (optional)",
    "events.q": "q (input parameters)", "events.tags": "Tags (key=value, comma-separated)",
    "events.pageSize": "Records per page", "events.search": "Search", "events.found": "{n} record(s)",
    "events.needOne": "Enter a QueryId, q or Tags.", "events.caption": "Records found by the Events API",
    "events.tagsBad": "Tags: use key=value, comma-separated.",
    "col.queryId": "QueryId", "col.q": "Parameters (q)", "col.tags": "Tags",
    "error.generic": "Error {status}", "error.network": "No answer from the service.",
    "tab.gateways": "Completeness", "gw.title": "Completeness per gateway", "gw.id": "Gateway",
    "gw.watermark": "Complete up to", "gw.highest": "Highest number", "gw.stored": "Stored", "gw.missing": "Missing",
    "gw.gaps": "Gaps", "gw.last": "Last call", "gw.none": "none",
    "gw.explain": "Each gateway numbers its company's records (1, 2, 3…). “Complete up to”: every record up to that number is stored; the gaps are the numbers missing above it. Records lost after the highest number show only when a newer record arrives.",
    "gw.summary": "{n} gateway(s); {gaps} with gaps.", "gw.empty": "No gateway numbers this company's records.",
  },
};

const LOCALES = { pt: "pt-BR", en: "en-US" };
let lang = WORDS[localStorage.getItem("trilha-lang")] ? localStorage.getItem("trilha-lang") : "pt";

export const getLang = () => lang;
export const locale = () => LOCALES[lang];

export function setLang(next) {
  lang = WORDS[next] ? next : "pt";
  localStorage.setItem("trilha-lang", lang);
  document.documentElement.lang = locale();
}

/** The word `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = WORDS[lang][key] ?? WORDS.pt[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Fill every element marked with data-i18n (text), data-i18n-label (title and aria-label) or
 * data-i18n-placeholder under `root`. */
export function translate(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.title = t(el.dataset.i18nLabel); el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.title = t("app.title");
}
