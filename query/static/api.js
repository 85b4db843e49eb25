// Every request the console makes goes through here, with the token the user typed: the console
// sees exactly what the API lets that token see. The token lives in this tab's sessionStorage only.
import { t } from "./i18n.js";

let token = sessionStorage.getItem("trilha-token") || "";

export const hasToken = () => Boolean(token);
export function setToken(value) {
  token = (value || "").trim();
  if (token) sessionStorage.setItem("trilha-token", token); else sessionStorage.removeItem("trilha-token");
}

/** fetch with the token; resolves to the Response, or throws an Error carrying the API's message. */
export async function call(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { ...options, headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) } });
  } catch (e) {
    throw new Error(t("error.network"));
  }
  if (!response.ok) {
    let message = t("error.generic", { status: response.status });
    try {
      const body = await response.json();
      message = body?.error?.message || body?.Status?.message || message;
    } catch (e) { /* not JSON: keep the status line */ }
    const error = new Error(message); error.status = response.status; throw error;
  }
  return response;
}

export const getJson = async (url) => (await call(url)).json();

export async function sendJson(url, method, body) {
  return (await call(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();
}

/** The file name a Content-Disposition header gives, or `fallback`. */
export function fileName(response, fallback) {
  const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : fallback;
}

/** Fetch with the token and hand the body to the browser as a download; returns the file name. */
export async function download(url, fallback) {
  const response = await call(url);
  const name = fileName(response, fallback);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  return name;
}
