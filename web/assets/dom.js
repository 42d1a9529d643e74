// Small DOM helpers: elements are built from text nodes only, never parsed from markup, so nothing
// the API returns can become markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCount = 0;

// A labelled control: <div class="field"><label for=…>text</label><input id=…></div>.
export function field(text, attrs = {}) {
  const id = attrs.id || `f${++fieldCount}`;
  const control = attrs.options
    ? el("select", { id, name: attrs.name, required: attrs.required },
        attrs.options.map(([value, label]) => el("option", { value, selected: value === attrs.value }, label)))
    : el("input", { id, type: "text", ...attrs });
  return el("div", { class: "field" }, el("label", { for: id }, text), control);
}

// A form whose submit handler gets its values as an object; the button is disabled meanwhile.
export function form(label, controls, onsubmit, { primary = true } = {}) {
  const node = el("form", {}, controls, el("button", { type: "submit", class: primary ? "primary" : "" }, label));
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = node.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await onsubmit(Object.fromEntries(new FormData(node).entries()), node);
    } finally {
      button.disabled = false;
    }
  });
  return node;
}

export function table(headings, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headings.length, class: "muted" }, "Nothing yet."))));
}

export function money(minor, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
}

export function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : "";
}
