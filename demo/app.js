// Hearthgate demo SPA: plain JavaScript, no build step.
// Every token (access tokens, the confirmation token) is held in the `session` object below and
// nowhere else: never localStorage, sessionStorage, cookies or the URL.
"use strict";

const params = new URLSearchParams(window.location.search);
const apiInput = document.getElementById("api");
apiInput.value = params.get("api") || "http://127.0.0.1:8000";

const session = {
  a: null,          // {token, user}
  b: null,
  aConfirmed: false,  // the requester's address is confirmed (invitations need it)
  householdId: null,
  requestId: null,
  intentId: null,
  confirmationToken: null,
};

function $(id) { return document.getElementById(id); }

function log(line) {
  const li = document.createElement("li");
  li.textContent = line;
  $("log").appendChild(li);
}

function status(id, text, ok = true) {
  const el = $(id);
  el.textContent = text;
  el.className = "status " + (ok ? "ok" : "err");
}

async function api(method, path, { token, body } = {}) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(apiInput.value.replace(/\/$/, "") + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;  // not JSON (a proxy's error page): report the status alone
  }
  log(`${method} ${path.replace(/\/(hh|req|pi|inv)_[a-z0-9]+/g, "/$1_…")} → ${response.status}`);
  if (!response.ok) {
    const message = data && data.message ? data.message : response.statusText;
    throw new Error(`${response.status} ${message}`);
  }
  return data;
}

async function registerAndLogin(who) {
  const email = $(`${who}-email`).value;
  const password = $(`${who}-password`).value;
  const name = who === "a" ? "Alex" : "Blair";
  try {
    await api("POST", "/api/auth/register", { body: { email, password, name } });
  } catch (error) {
    if (!String(error.message).startsWith("409")) throw error;  // already registered: log in
  }
  const login = await api("POST", "/api/auth/login", { body: { email, password } });
  session[who] = { token: login.token, user: login.user };
  status(`${who}-status`, `logged in as ${login.user.email}`);
  if (who === "a") { $("a-code").disabled = false; $("a-confirm").disabled = false; }
  ready();
}

function ready() {
  $("create-household").disabled = !(session.a && session.b && session.aConfirmed);
}

// The code mailed at registration (development: a file in the service's instance/mail folder).
async function confirmAddress() {
  await api("POST", "/api/auth/verify-email", { body: { token: $("a-code").value.trim() } });
  session.aConfirmed = true;
  status("a-status", `logged in as ${session.a.user.email}, address confirmed`);
  ready();
}

async function step(id, run) {
  const button = $(id);
  button.disabled = true;
  try {
    await run();
  } catch (error) {
    // A response the browser may not read (CORS) rejects with a TypeError and no status.
    const message = error instanceof TypeError ? `API unreachable from this page (${error.message})`
                                               : error.message;
    status("flow-status", message, false);
    log(`error: ${message}`);
    button.disabled = false;
  }
}

$("a-login").addEventListener("click", () => step("a-login", () => registerAndLogin("a")));
$("b-login").addEventListener("click", () => step("b-login", () => registerAndLogin("b")));
$("a-confirm").addEventListener("click", () => step("a-confirm", confirmAddress));

$("create-household").addEventListener("click", () => step("create-household", async () => {
  const household = await api("POST", "/api/households", { token: session.b.token, body: { name: "Home" } });
  session.householdId = household.id;
  const invitation = await api("POST", `/api/households/${household.id}/members`,
            { token: session.b.token, body: { email: session.a.user.email, role: "adult" } });
  await api("POST", `/api/invitations/${invitation.id}/accept`, { token: session.a.token, body: {} });
  status("household-status", "Home: approver is owner, requester is adult (invited, accepted)");
  $("create-request").disabled = false;
}));

$("create-request").addEventListener("click", () => step("create-request", async () => {
  const request = await api("POST", `/api/households/${session.householdId}/requests`, {
    token: session.a.token,
    body: { title: "Winter boots", amountMinor: 8900, currency: "EUR", note: "size 42" },
  });
  session.requestId = request.id;
  status("flow-status", `request ${request.status}`);
  $("approve").disabled = false;
}));

$("approve").addEventListener("click", () => step("approve", async () => {
  const request = await api("POST",
    `/api/households/${session.householdId}/requests/${session.requestId}/approve`,
    { token: session.b.token, body: {} });
  status("flow-status", `request ${request.status}`);
  $("intent").disabled = false;
}));

$("intent").addEventListener("click", () => step("intent", async () => {
  const intent = await api("POST",
    `/api/households/${session.householdId}/requests/${session.requestId}/purchase-intents`,
    { token: session.b.token, body: {} });
  session.intentId = intent.intentId;
  session.confirmationToken = intent.confirmationToken;  // shown once, kept in memory only
  status("flow-status", `checkout started, token valid until ${intent.expiresAt}`);
  $("cart-ready").disabled = false;
}));

$("cart-ready").addEventListener("click", () => step("cart-ready", async () => {
  await api("POST", `/api/dev/purchase-intents/${session.intentId}/cart-ready`,
            { token: session.b.token, body: {} });
  status("flow-status", "cart ready: waiting for your confirmation");
  $("confirm").disabled = false;
}));

$("confirm").addEventListener("click", () => step("confirm", async () => {
  const result = await api("POST",
    `/api/households/${session.householdId}/requests/${session.requestId}/confirm-checkout`,
    { token: session.b.token,
      body: { intentId: session.intentId, confirmationToken: session.confirmationToken } });
  session.confirmationToken = null;  // spent: forget it
  // What the server now says about the request, not only the confirmation's answer.
  const request = await api("GET",
    `/api/households/${session.householdId}/requests/${session.requestId}`,
    { token: session.a.token });
  const el = $("flow-status");
  el.textContent = `Checkout ${result.status}: “${request.title}” is ${request.status}`;
  el.className = "status ok done";
  el.dataset.state = request.status;
}));
