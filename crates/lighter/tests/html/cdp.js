// Drives a headless Chromium that tests/html.rs started, through the DevTools protocol: loads a
// lighter HTML report, clicks a treemap cell, goes back (Escape, the Up button, the breadcrumb),
// searches, clicks a result, takes a screenshot, and prints what it saw as one JSON line.
// Launches nothing; needs Node's WebSocket (`node --experimental-websocket cdp.js PLAN_JSON`).
//
// PLAN: { ws: browser endpoint, url: page, shot: PNG path, map: treemap selector,
//         click: data-path of a directory cell to click (optional), search: text to type (optional) }
"use strict";
const fs = require("fs");

const plan = JSON.parse(process.argv[2]);
const out = { errors: [], requests: [] };
// Exits once the report is written: a pipe may take it in several writes.
const finish = (code) => process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
const fail = (msg) => {
  out.error = msg;
  finish(1);
};
setTimeout(() => fail("driver timed out after 50 s"), 50000);

const ws = new WebSocket(plan.ws);
let next = 0;
const pending = new Map();
const listeners = [];
ws.addEventListener("message", (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id !== undefined && pending.has(m.id)) {
    const p = pending.get(m.id);
    pending.delete(m.id);
    m.error ? p.reject(new Error(p.method + ": " + JSON.stringify(m.error))) : p.resolve(m.result);
  } else if (m.method) {
    for (const l of listeners) l(m);
  }
});
ws.addEventListener("error", () => fail("websocket error"));

let session;
function send(method, params = {}, sid = session) {
  const id = ++next;
  ws.send(JSON.stringify({ id, method, params, sessionId: sid }));
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, method });
    setTimeout(() => reject(new Error(method + ": no answer in 10 s")), 10000);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function evaluate(expr) {
  const r = await send("Runtime.evaluate", { expression: expr, returnByValue: true });
  if (r.exceptionDetails) throw new Error("evaluate " + expr + ": " + JSON.stringify(r.exceptionDetails));
  return r.result.value;
}
async function waitFor(what, expr, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await evaluate(expr);
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await sleep(50);
  }
}

// What the page shows now.
const STATE = `(() => {
  const m = document.querySelector(${JSON.stringify(plan.map)});
  const tip = document.getElementById("tip");
  const note = document.getElementById("folded");
  return {
    zoom: document.body.getAttribute("data-zoom"),
    rendered: document.body.getAttribute("data-rendered"),
    renderedB: document.body.getAttribute("data-rendered-b"),
    dirsB: [...document.querySelectorAll("#tmB .cell.dir")].map(c => c.dataset.path),
    crumbs: document.getElementById("crumbs").textContent,
    cells: [...m.querySelectorAll(".cell")].map(c => c.dataset.path || c.textContent),
    dirs: [...m.querySelectorAll(".cell.dir")].map(c => c.dataset.path),
    matches: [...m.querySelectorAll(".cell.match")].map(c => c.dataset.path),
    focus: [...m.querySelectorAll(".cell.focus")].map(c => c.dataset.path),
    found: document.getElementById("found").textContent,
    results: [...document.querySelectorAll("#results li")].map(l => l.textContent),
    tip: tip.hidden ? null : tip.textContent,
    folded: note.hidden ? null : note.textContent,
    text: document.body.innerText.slice(0, 20000),
  };
})()`;
const state = () => evaluate(STATE);

// The centre of the first element matching `selector` (in the viewport, scrolled into it).
async function centre(selector) {
  const r = await evaluate(`(() => {
    const e = document.querySelector(${JSON.stringify(selector)});
    if (!e) return null;
    e.scrollIntoView({ block: "center" });
    const r = e.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  })()`);
  if (!r) throw new Error("nothing matches " + selector);
  return r;
}
async function click(selector) {
  const { x, y } = await centre(selector);
  await send("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
  await send("Input.dispatchMouseEvent", { type: "mousePressed", x, y, button: "left", buttons: 1, clickCount: 1 });
  await send("Input.dispatchMouseEvent", { type: "mouseReleased", x, y, button: "left", buttons: 0, clickCount: 1 });
}
async function key(k, code, vk) {
  for (const type of ["keyDown", "keyUp"])
    await send("Input.dispatchKeyEvent", { type, key: k, code, windowsVirtualKeyCode: vk, nativeVirtualKeyCode: vk });
}
const zoomIs = (p) => `document.body.getAttribute("data-zoom") === ${JSON.stringify(p)}`;
const cellSel = (p) => `${plan.map} .cell.dir[data-path=${JSON.stringify(p)}]`;

ws.addEventListener("open", async () => {
  try {
    // The page target Chromium opened (about:blank), attached in flat mode.
    let page;
    const end = Date.now() + 10000;
    while (!page) {
      const { targetInfos } = await send("Target.getTargets", {}, undefined);
      page = targetInfos.find((t) => t.type === "page");
      if (!page) {
        if (Date.now() > end) throw new Error("no page target");
        await sleep(100);
      }
    }
    ({ sessionId: session } = await send("Target.attachToTarget", { targetId: page.targetId, flatten: true }, undefined));
    listeners.push((m) => {
      if (m.sessionId !== session) return;
      if (m.method === "Runtime.exceptionThrown") out.errors.push(JSON.stringify(m.params.exceptionDetails));
      if (m.method === "Runtime.consoleAPICalled" && m.params.type === "error")
        out.errors.push(m.params.args.map((a) => a.value).join(" "));
      if (m.method === "Network.requestWillBeSent") out.requests.push(m.params.request.url);
    });
    await send("Page.enable");
    await send("Runtime.enable");
    await send("Network.enable");
    await send("Emulation.setDeviceMetricsOverride", { width: 1200, height: 1000, deviceScaleFactor: 1, mobile: false });
    await send("Page.navigate", { url: plan.url });
    await waitFor("the page to render", `location.href === ${JSON.stringify(plan.url)} && document.readyState === "complete" && document.body.hasAttribute("data-rendered")`, 15000);
    out.before = await state();

    if (plan.click) {
      // Hover first: the tooltip names the path and its sizes.
      const { x, y } = await centre(cellSel(plan.click));
      await send("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
      await waitFor("the tooltip", `!document.getElementById("tip").hidden`);
      out.hover = (await state()).tip;
      // Click: zoom in; Escape: back.
      await click(cellSel(plan.click));
      await waitFor("the zoom into " + plan.click, zoomIs(plan.click));
      out.zoomed = await state();
      await key("Escape", "Escape", 27);
      await waitFor("Escape to go back", zoomIs("/"));
      out.escaped = await state();
      // In again; the Up button goes back.
      await click(cellSel(plan.click));
      await waitFor("the second zoom", zoomIs(plan.click));
      await click("#up");
      await waitFor("Up to go back", zoomIs("/"));
      out.upped = await state();
      // In again; the breadcrumb's root goes back.
      await click(cellSel(plan.click));
      await waitFor("the third zoom", zoomIs(plan.click));
      await click("#crumbs .crumb");
      await waitFor("the breadcrumb to go back", zoomIs("/"));
      out.crumbed = await state();
    }

    if (plan.search) {
      await click("#search");
      await send("Input.insertText", { text: plan.search });
      await waitFor("search results", `document.querySelectorAll("#results li").length > 0`);
      out.searched = await state();
      const before = out.searched.zoom;
      await click("#results li button");
      await waitFor("the zoom to the first result", `document.body.getAttribute("data-zoom") !== ${JSON.stringify(before)}`);
      out.result = await state();
    }

    await evaluate("window.scrollTo(0, 0)");
    const shot = await send("Page.captureScreenshot", { format: "png" });
    fs.writeFileSync(plan.shot, Buffer.from(shot.data, "base64"));
    out.ok = true;
    finish(0);
  } catch (e) {
    fail(String(e && e.stack ? e.stack : e));
  }
});
