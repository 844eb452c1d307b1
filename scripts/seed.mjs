// Seeds the demo on first start: the seed's scenario of likes, orders and
// comments feeding boards through routes. Does nothing when boards exist.
// Usage: node scripts/seed.mjs [baseUrl]
import { readFileSync } from "node:fs";

const base = process.argv[2] ?? "http://127.0.0.1:8787";
function devVars() {
  try {
    return readFileSync(new URL("../.dev.vars", import.meta.url), "utf8");
  } catch {
    return ""; // deployed use: PODIUM_ADMIN_KEY instead
  }
}
const vars = Object.fromEntries(
  devVars()
    .split("\n")
    .filter((l) => /^\w+=/.test(l))
    .map((l) => {
      const [k, ...v] = l.split("=");
      return [k, v.join("=").replace(/^"|"$/g, "")];
    }),
);
const admin = process.env.PODIUM_ADMIN_KEY ?? vars.ADMIN_KEY;

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

async function waitForHealth(deadlineMs = 90_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      if ((await fetch(base + "/v1/health")).ok) return;
    } catch {}
    if (Date.now() > end) throw new Error(`${base} did not become healthy`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

await waitForHealth();
const { boards } = await call("GET", "/v1/boards");
if (boards.length > 0) {
  console.log(`==> ${boards.length} boards already exist; not seeding`);
  process.exit(0);
}
console.log("==> seeding demo boards, routes and events");
await call("PUT", "/v1/boards/likes", { title: "Most liked", windows: ["all", "day", "week", "month"] });
await call("PUT", "/v1/boards/sales", { title: "Top sellers", windows: ["all", "day", "month"], min: 0 });
await call("PUT", "/v1/boards/orders", { title: "Most orders", windows: ["all", "week"] });
await call("PUT", "/v1/boards/comments", { title: "Most discussed", windows: ["all", "day"] });
await call("PUT", "/v1/routes/like", { targets: [{ board: "likes" }] });
await call("PUT", "/v1/routes/order", { targets: [{ board: "sales", value: "value" }, { board: "orders", value: 1 }] });
await call("PUT", "/v1/routes/comment", { targets: [{ board: "comments", value: 1 }] });

const people = [
  ["alice", "Alice"], ["bob", "Bob"], ["carol", "Carol"], ["dave", "Dave"],
  ["erin", "Erin"], ["frank", "Frank"], ["grace", "Grace"], ["heidi", "Heidi"],
];
const events = [];
people.forEach(([member, name], i) => {
  for (let k = 0; k < 8 - i; k++) events.push({ type: "like", member, meta: { name } });
  for (let k = 0; k < (i % 3) + 1; k++) events.push({ type: "order", member, meta: { name }, value: 20 + 15 * ((i * 7) % 5) });
  for (let k = 0; k < (i * 5) % 4; k++) events.push({ type: "comment", member, meta: { name } });
});
const res = await call("POST", "/v1/events", events);
console.log(`==> seeded ${res.accepted} events`);
