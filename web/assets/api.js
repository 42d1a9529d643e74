// The API client of the reference SPA. The access and refresh tokens live in this module's
// memory only: never localStorage, sessionStorage, cookies or the URL. A reload logs out.

const state = { token: null, refreshToken: null, user: null };
let refreshing = null;

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(sentence(status, body, headers));
    this.status = status;
    this.body = body || {};
    this.headers = headers;
  }
}

// Every error status as a plain sentence (API.md's error table).
export function sentence(status, body, headers) {
  const message = body && body.message ? body.message : "";
  switch (status) {
    case 400: return "Please check the form: " + (details(body) || message || "the input was not accepted.");
    case 401: return "Please log in again.";
    case 403: return "You are not allowed to do that" + (message ? ": " + message : ".");
    case 404: return "Not found, or you are not a member of that household.";
    case 409: return "That is not possible right now" + (message ? ": " + message : ".");
    case 410: return "This has expired" + (message ? ": " + message : ".");
    case 413: return "That is too large to send.";
    case 422: return "That does not add up" + (message ? ": " + message : ".");
    case 429: {
      const wait = (headers && headers.get("Retry-After")) || (body && body.retryAfter) || "a few";
      return `Too many requests: please try again in ${wait} seconds.`;
    }
    case 503: return "The service is unavailable for a moment: please try again.";
    default: return `Something went wrong (${status}).` + (body && body.correlationId ? ` Reference: ${body.correlationId}.` : "");
  }
}

function details(body) {
  if (!body || !Array.isArray(body.details)) return "";
  return body.details.map((d) => `${(d.loc || d.field || []).toString() || "field"}: ${d.msg || d.message || "invalid"}`).join("; ");
}

export function currentUser() { return state.user; }
export function loggedIn() { return state.token !== null; }

export function remember(login) {
  state.token = login.token;
  state.refreshToken = login.refreshToken;
  if (login.user) state.user = login.user;
}

export function forget() {
  state.token = null;
  state.refreshToken = null;
  state.user = null;
}

async function send(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin", cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  return { response, data };
}

// One refresh at a time: concurrent 401s wait for the same new pair.
async function refresh() {
  if (!state.refreshToken) return false;
  if (!refreshing) {
    refreshing = (async () => {
      const presented = state.refreshToken;
      const { response, data } = await send("POST", "/api/auth/refresh", { refreshToken: presented });
      if (response.ok) { remember(data); return true; }
      // 409: another tab or call rotated this token a moment ago; the pair we now hold is current.
      if (response.status === 409 && state.refreshToken !== presented) return true;
      forget();
      return false;
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function api(method, path, body, { headers = {}, retry = true } = {}) {
  let { response, data } = await send(method, path, body, headers);
  if (response.status === 401 && retry && !(data && data.error === "StepUpRequired")
      && state.refreshToken && await refresh()) {
    ({ response, data } = await send(method, path, body, headers));
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return data;
}

export async function login(email, password) {
  const data = await api("POST", "/api/auth/login", { email, password }, { retry: false });
  remember(data);
  return data;
}

// ---- the authorization-code login at the identity provider ---------------------------------
// The SPA binds the one-time code to itself (PKCE between this page and the service): it keeps a
// random verifier and sends its S256 challenge. The verifier must outlive the round trip through
// the provider, a full page load, so it is the one thing kept in sessionStorage (this tab only),
// and removed as soon as the page is back. It is not a credential on its own: the code needs it.
const VERIFIER_KEY = "hearthgate.oidc.verifier";

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Whether the service offers the authorization-code login: its OpenAPI document says so. Asked
// once per page load (the document does not change while the page lives).
let oidcOffered = null;

export function oidcAvailable() {
  if (oidcOffered === null) {
    oidcOffered = fetch("/api/openapi.json", { cache: "no-store" })
      .then((response) => response.json())
      .then((document) => Boolean(document.paths && document.paths["/api/auth/oidc/authorize"]))
      .catch(() => { oidcOffered = null; return false; });
  }
  return oidcOffered;
}

export async function startOidcLogin() {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  const query = new URLSearchParams({ redirect_uri: location.origin + "/", code_challenge: challenge, code_challenge_method: "S256" });
  location.assign("/api/auth/oidc/authorize?" + query.toString());
}

// Back from the provider: "#code=…" (or "#error=…") in the URL. The code leaves the URL at once.
export async function finishOidcLogin() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (!fragment.has("code") && !fragment.has("error")) return null;
  const verifier = sessionStorage.getItem(VERIFIER_KEY);
  sessionStorage.removeItem(VERIFIER_KEY);
  history.replaceState(null, "", location.pathname + "#/");
  if (fragment.has("error") || !verifier) throw new ApiError(401, { message: "the identity provider did not log you in" });
  const data = await api("POST", "/api/auth/oidc/exchange", { code: fragment.get("code"), codeVerifier: verifier }, { retry: false });
  remember(data);
  return data;
}

export async function logout() {
  try { if (state.token) await api("POST", "/api/auth/logout", {}, { retry: false }); } finally { forget(); }
}

// Every page of a list, following nextCursor.
export async function all(path, limit = 100) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}
