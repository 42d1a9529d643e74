// The reference SPA of the Hearthgate API: households, members, wardrobe, outfits, requests with
// an approvals queue, purchase intents with confirmation, the audit trail and sessions.
// Hash routes: #/login, #/ (households and invitations), #/h/<id>/<tab>, #/sessions,
// #/verify-email?token=… (the link mailed at registration).

import {
  api, all, ApiError, currentUser, finishOidcLogin, loggedIn, login, logout, oidcAvailable, startOidcLogin,
} from "./api.js";
import { el, field, form, money, table, when } from "./dom.js";

const main = document.getElementById("main");
const notice = document.getElementById("notice");
// Confirmation tokens are shown once by the API; they are kept here, per intent, until used.
const confirmations = new Map();

function say(text, ok = true) {
  notice.textContent = text;
  notice.className = ok ? "ok" : "error";
}

// Runs an action, shows its error as a sentence; a step-up challenge asks for the password again
// (a fresh login satisfies it) and retries once.
async function attempt(action, done) {
  try {
    const result = await action();
    if (done) say(done);
    return result;
  } catch (error) {
    if (error instanceof ApiError && error.body.error === "StepUpRequired") {
      const password = window.prompt("Please confirm your password to continue.");
      if (password) {
        try {
          await login(currentUser().email, password);
          const result = await action();
          if (done) say(done);
          return result;
        } catch (retryError) {
          say(retryError.message, false);
          return undefined;
        }
      }
    }
    if (error instanceof ApiError && error.status === 401 && !loggedIn()) {
      location.hash = "#/login";
    }
    say(error.message, false);
    return undefined;
  }
}

const PUBLIC_VIEWS = new Set(["Log in", "Confirm your email address"]);

function show(title, ...sections) {
  // A view whose data arrived after the session ended (a failed refresh) is not drawn.
  document.getElementById("nav").hidden = !loggedIn();
  if (!loggedIn() && !PUBLIC_VIEWS.has(title)) { loginView(); return; }
  main.replaceChildren(el("h1", {}, title), ...sections);
  document.title = `${title} · Hearthgate`;
  main.focus();
}

// ---- login and registration -------------------------------------------------------------

async function loginView() {
  const provider = await oidcAvailable();
  show("Log in",
    provider ? el("section", {}, el("h2", {}, "Your identity provider"),
      el("button", { type: "button", class: "primary", onclick: () => startOidcLogin() }, "Log in with your identity provider")) : null,
    el("section", {}, el("h2", {}, "Log in"),
      form("Log in", [
        field("Email", { name: "email", type: "email", required: true, autocomplete: "username" }),
        field("Password", { name: "password", type: "password", required: true, autocomplete: "current-password" }),
      ], async ({ email, password }) => {
        if (await attempt(() => login(email, password))) { say(""); location.hash = "#/"; route(); }
      })),
    el("section", {}, el("h2", {}, "Create an account"),
      form("Register", [
        field("Name", { name: "name", required: true, autocomplete: "name" }),
        field("Email", { name: "email", type: "email", required: true, autocomplete: "email" }),
        field("Password (10 characters or more)", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
      ], async (values) => {
        const created = await attempt(() => api("POST", "/api/auth/register", values, { retry: false }));
        if (created && await attempt(() => login(values.email, values.password))) {
          say("Welcome! Check your mail for the confirmation link.");
          location.hash = "#/"; attempt(finishOidcLogin).finally(route);
        }
      })));
}

// ---- households ---------------------------------------------------------------------------

async function householdsView() {
  const [households, invitations, me] = await Promise.all([
    attempt(() => all("/api/households")), attempt(() => all("/api/invitations")),
    attempt(() => api("GET", "/api/auth/me"))]);
  show("Your households",
    invitationsSection(invitations || [], me),
    el("section", {}, el("h2", {}, "Households"),
      table(["Name", "Your role", "Since"], (households || []).map((h) => el("tr", {},
        el("td", {}, el("a", { href: `#/h/${h.id}/requests` }, h.name)), el("td", {}, h.role), el("td", {}, when(h.createdAt)))))),
    el("section", {}, el("h2", {}, "New household"),
      form("Create", [field("Name", { name: "name", required: true, maxlength: 200 })], async ({ name }) => {
        const created = await attempt(() => api("POST", "/api/households", { name }), `Created ${name}.`);
        if (created) location.hash = `#/h/${created.id}/members`;
      })));
}

// Invitations to the person's address: accepted or declined here. They are listed only once the
// address is confirmed (the code mailed at registration).
function invitationsSection(invitations, me) {
  const answer = (invitation, verb, done) => el("button", { type: "button", onclick: async () => {
    if (await attempt(() => api("POST", `/api/invitations/${invitation.id}/${verb}`, {}), done) !== undefined) route();
  } }, `${verb === "accept" ? "Accept" : "Decline"} ${invitation.householdName}`);
  const section = el("section", {}, el("h2", {}, "Invitations for you"),
    table(["Household", "Role", "From", "Until", ""], invitations.map((i) => el("tr", {},
      el("td", {}, i.householdName), el("td", {}, i.role), el("td", {}, i.invitedByName || ""),
      el("td", {}, when(i.expiresAt)),
      el("td", {}, answer(i, "accept", `You joined ${i.householdName}.`), " ",
        answer(i, "decline", `You declined ${i.householdName}.`))))));
  if (me && !me.emailVerified) {
    section.append(el("p", { class: "muted" }, "Confirm your email address to see invitations sent to it."),
      form("Confirm", [field("Confirmation code from the mail", { name: "token", required: true })],
        async ({ token }) => { if (await confirmEmail(token)) route(); }));
  }
  return section;
}

async function confirmEmail(token) {
  return await attempt(() => api("POST", "/api/auth/verify-email", { token: token.trim() }, { retry: false }),
    "Your email address is confirmed.") !== undefined;
}

async function verifyEmailView() {
  const token = new URLSearchParams(location.hash.split("?")[1] || "").get("token") || "";
  show("Confirm your email address", el("p", {}, "Confirming…"));
  if (token) await confirmEmail(token);
  else say("The link has no code in it.", false);
  // Not a hash change (that would clear the notice just given): the next view, drawn here.
  history.replaceState(null, "", loggedIn() ? "#/" : "#/login");
  await route();
}

const TABS = [["members", "Members"], ["items", "Wardrobe"], ["outfits", "Outfits"], ["requests", "Requests"], ["audit", "Audit trail"]];

async function householdView(id, tab) {
  const base = `/api/households/${id}`;
  const household = await attempt(() => api("GET", base));
  if (!household) return;
  const nav = el("nav", { class: "tabs", "aria-label": "Household" }, TABS
    .filter(([key]) => key !== "audit" || household.role === "owner")
    .map(([key, label]) => el("a", { href: `#/h/${id}/${key}`, "aria-current": key === tab ? "page" : null }, label)));
  const views = { members: membersTab, items: itemsTab, outfits: outfitsTab, requests: requestsTab, audit: auditTab };
  const body = await (views[tab] || requestsTab)(base, household);
  show(`${household.name}`, el("p", { class: "muted" }, `You are ${household.role} here.`), nav, ...body);
}

async function membersTab(base, household) {
  const members = await attempt(() => all(`${base}/members`)) || [];
  const owner = household.role === "owner";
  const rows = members.map((m) => el("tr", {},
    el("td", {}, m.name), el("td", {}, m.email || ""),
    el("td", {}, owner ? roleSelect(base, m) : m.role),
    el("td", {}, owner ? el("button", { type: "button", onclick: async () => {
      if (await attempt(() => api("DELETE", `${base}/members/${m.userId}`), `Removed ${m.name}.`) !== undefined) attempt(finishOidcLogin).finally(route);
    } }, `Remove ${m.name}`) : "")));
  const sections = [el("section", {}, el("h2", {}, "Members"), table(["Name", "Email", "Role", ""], rows))];
  if (owner) {
    const invitations = await attempt(() => all(`${base}/invitations`)) || [];
    sections.push(el("section", {}, el("h2", {}, "Invitations"),
      table(["Email", "Role", "Status", "Until", ""], invitations.map((i) => el("tr", {},
        el("td", {}, i.email), el("td", {}, i.role), el("td", { class: "status" }, i.status),
        el("td", {}, when(i.expiresAt)),
        el("td", {}, i.status === "PENDING" ? el("button", { type: "button", onclick: async () => {
          if (await attempt(() => api("DELETE", `${base}/invitations/${i.id}`), `Revoked the invitation of ${i.email}.`) !== undefined) route();
        } }, `Revoke ${i.email}`) : ""))))));
    sections.push(el("section", {}, el("h2", {}, "Invite someone"),
      form("Invite", [
        field("Email", { name: "email", type: "email", required: true }),
        field("Role", { name: "role", options: [["adult", "adult"], ["child", "child"], ["owner", "owner"]] }),
      ], async (values) => {
        if (await attempt(() => api("POST", `${base}/members`, values), `Invited ${values.email}.`)) attempt(finishOidcLogin).finally(route);
      })));
  }
  return sections;
}

function roleSelect(base, member) {
  const select = field(`Role of ${member.name}`, { name: "role", value: member.role,
    options: [["owner", "owner"], ["adult", "adult"], ["child", "child"]] });
  select.querySelector("select").addEventListener("change", async (event) => {
    await attempt(() => api("PATCH", `${base}/members/${member.userId}`, { role: event.target.value }), `${member.name} is now ${event.target.value}.`);
    attempt(finishOidcLogin).finally(route);
  });
  return select;
}

async function itemsTab(base) {
  const filters = new URLSearchParams(location.hash.split("?")[1] || "");
  const query = ["category", "color", "size"].filter((k) => filters.get(k)).map((k) => `${k}=${encodeURIComponent(filters.get(k))}`).join("&");
  const items = await attempt(() => all(`${base}/items${query ? "?" + query : ""}`)) || [];
  return [
    el("section", {}, el("h2", {}, "Wardrobe"),
      form("Filter", [
        field("Category", { name: "category", value: filters.get("category") || "" }),
        field("Colour", { name: "color", value: filters.get("color") || "" }),
        field("Size", { name: "size", value: filters.get("size") || "" }),
      ], (values) => {
        const chosen = Object.entries(values).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
        location.hash = location.hash.split("?")[0] + (chosen ? "?" + chosen : "");
      }, { primary: false }),
      table(["Name", "Category", "Size", "Colour", "Notes", ""], items.map((item) => el("tr", {},
        el("td", {}, item.name), el("td", {}, item.category || ""), el("td", {}, item.size || ""),
        el("td", {}, item.color || ""), el("td", {}, item.notes || ""),
        el("td", {}, el("button", { type: "button", onclick: async () => {
          if (await attempt(() => api("DELETE", `${base}/items/${item.id}`), `Deleted ${item.name}.`) !== undefined) attempt(finishOidcLogin).finally(route);
        } }, `Delete ${item.name}`)))))),
    el("section", {}, el("h2", {}, "Add an item"),
      form("Add", [
        field("Name", { name: "name", required: true, maxlength: 200 }),
        field("Category", { name: "category", maxlength: 100 }),
        field("Size", { name: "size", maxlength: 50 }),
        field("Colour", { name: "color", maxlength: 50 }),
        field("Notes", { name: "notes", maxlength: 2000 }),
      ], async (values) => {
        const body = Object.fromEntries(Object.entries(values).filter(([, v]) => v));
        if (await attempt(() => api("POST", `${base}/items`, body), `Added ${values.name}.`)) attempt(finishOidcLogin).finally(route);
      })),
  ];
}

async function outfitsTab(base) {
  const [outfits, items] = await Promise.all([attempt(() => all(`${base}/outfits`)), attempt(() => all(`${base}/items`))]);
  const names = new Map((items || []).map((i) => [i.id, i.name]));
  const boxes = (items || []).map((item) => el("label", {}, el("input", { type: "checkbox", name: `item:${item.id}` }), item.name));
  return [
    el("section", {}, el("h2", {}, "Outfits"),
      table(["Name", "Items", ""], (outfits || []).map((o) => el("tr", {},
        el("td", {}, o.name), el("td", {}, o.itemIds.map((i) => names.get(i) || i).join(", ")),
        el("td", {}, el("button", { type: "button", onclick: async () => {
          if (await attempt(() => api("DELETE", `${base}/outfits/${o.id}`), `Deleted ${o.name}.`) !== undefined) attempt(finishOidcLogin).finally(route);
        } }, `Delete ${o.name}`)))))),
    el("section", {}, el("h2", {}, "Build an outfit"),
      form("Create", [field("Name", { name: "name", required: true, maxlength: 200 }), el("fieldset", {}, el("legend", {}, "Items"), boxes)],
        async (values) => {
          const itemIds = Object.keys(values).filter((k) => k.startsWith("item:")).map((k) => k.slice(5));
          if (await attempt(() => api("POST", `${base}/outfits`, { name: values.name, itemIds }), `Created ${values.name}.`)) attempt(finishOidcLogin).finally(route);
        })),
  ];
}

async function requestsTab(base, household) {
  const requests = await attempt(() => all(`${base}/requests`)) || [];
  const me = currentUser();
  const approver = household.role !== "child";
  const queue = requests.filter((r) => r.status === "SUBMITTED" && r.requestedBy !== me.id);
  const action = (label, path, body, done) => el("button", { type: "button", onclick: async () => {
    if (await attempt(() => api("POST", path, body), done) !== undefined) attempt(finishOidcLogin).finally(route);
  } }, label);
  const sections = [];
  if (approver) {
    sections.push(el("section", {}, el("h2", {}, `Approvals queue (${queue.length})`),
      table(["Title", "Amount", "Asked", ""], queue.map((r) => el("tr", {},
        el("td", {}, r.title), el("td", {}, money(r.amountMinor, r.currency)), el("td", {}, when(r.createdAt)),
        el("td", {}, action(`Approve ${r.title}`, `${base}/requests/${r.id}/approve`, {}, `Approved ${r.title}.`),
          " ", action(`Reject ${r.title}`, `${base}/requests/${r.id}/reject`, {}, `Rejected ${r.title}.`)))))));
  }
  sections.push(el("section", {}, el("h2", {}, "Requests"),
    table(["Title", "Amount", "Status", ""], requests.map((r) => el("tr", {},
      el("td", {}, r.title, r.url ? el("div", { class: "muted" }, r.url) : null),
      el("td", {}, money(r.amountMinor, r.currency)), el("td", { class: "status" }, r.status),
      el("td", {}, requestActions(base, r, approver, action)))))));
  sections.push(el("section", {}, el("h2", {}, "Ask for something"),
    form("Ask", [
      field("What", { name: "title", required: true, maxlength: 200 }),
      field("Price", { name: "amount", type: "number", min: 0, step: "0.01", required: true }),
      field("Currency", { name: "currency", value: "EUR", pattern: "[A-Z]{3}", required: true, maxlength: 3 }),
      field("Link (optional)", { name: "url", type: "url" }),
      field("Note (optional)", { name: "note", maxlength: 2000 }),
    ], async (values) => {
      const body = { title: values.title, amountMinor: Math.round(Number(values.amount) * 100), currency: values.currency };
      if (values.url) body.url = values.url;
      if (values.note) body.note = values.note;
      if (await attempt(() => api("POST", `${base}/requests`, body, { headers: { "Idempotency-Key": crypto.randomUUID() } }), `Asked for ${values.title}.`)) attempt(finishOidcLogin).finally(route);
    })));
  return sections;
}

function requestActions(base, r, approver, action) {
  const me = currentUser();
  const path = `${base}/requests/${r.id}`;
  const out = [];
  if (["SUBMITTED", "APPROVED"].includes(r.status) && r.requestedBy === me.id) {
    out.push(action(`Cancel ${r.title}`, `${path}/cancel`, {}, `Cancelled ${r.title}.`));
  }
  if (approver && ["APPROVED", "FAILED", "PURCHASING"].includes(r.status)) {
    out.push(el("button", { type: "button", onclick: async () => {
      const intent = await attempt(() => api("POST", `${path}/purchase-intents`, {}, { headers: { "Idempotency-Key": crypto.randomUUID() } }), "Checkout started.");
      if (intent) { confirmations.set(r.id, intent); route(); }
    } }, `Start purchase of ${r.title}`));
  }
  const pending = confirmations.get(r.id);
  if (pending && ["PURCHASING", "CART_READY"].includes(r.status)) {
    out.push(el("div", { class: "muted" }, `Checkout ${pending.intentId} until ${when(pending.expiresAt)}`));
    if (r.status === "PURCHASING") {
      out.push(action("Fill the cart (development orchestrator)", `/api/dev/purchase-intents/${pending.intentId}/cart-ready`, {}, "The cart is ready."));
    }
    out.push(el("button", { type: "button", class: "primary", onclick: async () => {
      const done = await attempt(() => api("POST", `${path}/confirm-checkout`,
        { intentId: pending.intentId, confirmationToken: pending.confirmationToken },
        { headers: { "Idempotency-Key": crypto.randomUUID() } }), `Purchase of ${r.title} confirmed.`);
      if (done) { confirmations.delete(r.id); route(); }
    } }, `Confirm purchase of ${r.title}`));
  }
  return out;
}

async function auditTab(base) {
  const events = await attempt(() => api("GET", `${base}/audit?limit=100`));
  const items = events ? events.items : [];
  return [el("section", {}, el("h2", {}, "Audit trail (newest first)"),
    table(["When", "Action", "Decision", "Who", ""], items.map((e) => el("tr", {},
      el("td", {}, when(e.createdAt)), el("td", {}, e.action), el("td", {}, e.decision),
      el("td", {}, e.principalId || ""),
      el("td", {}, e.id ? el("button", { type: "button", onclick: () => downloadProof(base, e.id) }, `Proof of ${e.action}`) : "")))))];
}

async function downloadProof(base, eventId) {
  const proof = await attempt(() => api("GET", `${base}/audit/${eventId}/proof`));
  if (!proof) return;
  const link = el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(proof, null, 2)], { type: "application/json" })), download: `${eventId}.proof.json` });
  link.click();
  URL.revokeObjectURL(link.href);
  say("Proof downloaded: verify it with `flask audit verify-proof FILE`.");
}

// ---- sessions ------------------------------------------------------------------------------

async function sessionsView() {
  const sessions = await attempt(() => all("/api/auth/sessions")) || [];
  show("Your sessions", el("section", {}, el("h2", {}, "Where you are logged in"),
    table(["Started", "Last used", "Device", "Address", ""], sessions.map((s) => el("tr", {},
      el("td", {}, when(s.createdAt)), el("td", {}, when(s.lastUsedAt)), el("td", {}, s.userAgent || ""),
      el("td", {}, s.ip || ""),
      el("td", {}, s.current ? "this session" : el("button", { type: "button", onclick: async () => {
        if (await attempt(() => api("DELETE", `/api/auth/sessions/${s.id}`), "Session ended.") !== undefined) attempt(finishOidcLogin).finally(route);
      } }, "End session")))))));
}

// ---- routing -------------------------------------------------------------------------------

// Routes in flight: while any is, the main region is aria-busy (assistive technology waits, and
// so can a test): a link click and a hash change may start two draws of the same view.
let routing = 0;

async function route() {
  routing += 1;
  main.setAttribute("aria-busy", "true");
  try {
    await draw();
  } finally {
    routing -= 1;
    if (routing === 0) main.removeAttribute("aria-busy");
  }
}

async function draw() {
  const nav = document.getElementById("nav");
  nav.hidden = !loggedIn();
  if (location.hash.startsWith("#/verify-email")) { await verifyEmailView(); return; }
  if (!loggedIn()) { await loginView(); return; }
  document.getElementById("who").textContent = currentUser().email || currentUser().name;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  const household = path.match(/^\/h\/([^/]+)\/?([a-z]*)$/);
  if (household) await householdView(household[1], household[2] || "requests");
  else if (path === "/sessions") await sessionsView();
  else await householdsView();
}

document.getElementById("logout").addEventListener("click", async () => {
  await logout();
  location.hash = "#/login";
  say("Logged out.");
  attempt(finishOidcLogin).finally(route);
});
window.addEventListener("hashchange", () => { if (!location.hash.startsWith("#code=")) { say(""); route(); } });
// A link to the page already shown reloads its data (the hash does not change, so no hashchange).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='#']");
  if (link && link.getAttribute("href") === location.hash) { say(""); route(); }
});
attempt(finishOidcLogin).finally(route);
