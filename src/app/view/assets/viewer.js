// virl view: the page. Plain browser JavaScript, no build step. Everything a model or a dataset
// wrote is put on the page as text (textContent), never as HTML.
"use strict"
;(function () {
  const index = window.VIRL_INDEX
  const $ = (id) => document.getElementById(id)
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v)
      else node.setAttribute(k, v)
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)))
    return node
  }
  const svg = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag)
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
    return node
  }

  if (index === undefined) {
    $("problems").hidden = false
    $("problem-list").append(el("li", {}, "data.js did not load: open this page through `virl view RUN_DIR`, or from a folder written by `virl view RUN_DIR --out DIR`."))
    return
  }

  // ---- header, problems, results --------------------------------------------------------
  $("title").textContent = `virl view — ${index.name}`
  $("subtitle").textContent = `${index.dir} · ${index.logs.length} evaluation logs · ${index.episodes.length} episodes`
  if (index.problems.length > 0) {
    $("problems").hidden = false
    for (const p of index.problems) $("problem-list").append(el("li", {}, p))
  }
  for (const block of index.results) {
    if (block.table !== undefined) {
      const [head, ...rows] = block.table
      $("tables").append(el("table", {}, el("thead", {}, el("tr", {}, head.map((c) => el("th", {}, c)))), el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))))
    } else if (block.heading !== undefined) $("tables").append(el("h3", {}, block.heading))
    else $("tables").append(el("p", {}, block.text))
  }
  if (index.results.length === 0) $("tables").append(el("p", {}, "No results table yet."))
  for (const plot of index.plots) $("plots").append(el("figure", {}, el("img", { src: plot, alt: plot }), el("figcaption", {}, plot)))

  // ---- filters and the list -------------------------------------------------------------
  const logs = new Map(index.logs.map((l) => [l.key, l]))
  const distinct = (xs) => [...new Set(xs)].sort((a, b) => (typeof a === "number" ? a - b : String(a).localeCompare(String(b))))
  const fill = (select, values, any = true) => {
    if (any) select.append(el("option", { value: "" }, "any"))
    for (const v of values) select.append(el("option", { value: String(v) }, String(v)))
  }
  fill($("f-arm"), distinct(index.logs.map((l) => l.arm)))
  fill($("f-suite"), distinct(index.logs.map((l) => l.suite)))
  fill($("f-seed"), distinct(index.logs.map((l) => l.seed)))
  fill($("f-kind"), distinct(index.episodes.map((e) => e.failure).filter((f) => f !== "")))

  const matches = (e) => {
    const log = logs.get(e.log)
    const f = (id) => $(id).value
    if (f("f-arm") !== "" && log.arm !== f("f-arm")) return false
    if (f("f-suite") !== "" && log.suite !== f("f-suite")) return false
    if (f("f-seed") !== "" && String(log.seed) !== f("f-seed")) return false
    if (f("f-point") === "final" && !log.final) return false
    if (f("f-outcome") === "success" && !e.success) return false
    if (f("f-outcome") === "failure" && e.success) return false
    if (f("f-kind") !== "" && e.failure !== f("f-kind")) return false
    return true
  }
  const drawList = () => {
    const body = $("list").tBodies[0]
    body.replaceChildren()
    const shown = index.episodes.filter(matches)
    $("count").textContent = `${shown.length} of ${index.episodes.length} episodes`
    for (const [i, e] of shown.slice(0, 2000).entries()) {
      const log = logs.get(e.log)
      const listed = i + 1
      const row = el(
        "tr",
        { "data-log": e.log, "data-index": String(e.index), onclick: () => openEpisode(e, row, listed) },
        el("td", {}, log.seed),
        el("td", {}, log.arm),
        el("td", {}, log.suite),
        el("td", {}, log.step),
        el("td", {}, e.route ?? "?"),
        el("td", { class: e.success ? "ok" : "bad" }, e.success ? "success" : "failure"),
        el("td", {}, e.failure),
        el("td", {}, e.reward.toFixed(2)),
        el("td", {}, e.steps)
      )
      body.append(row)
    }
  }
  // ---- the page's state in the URL fragment: a link opens the same filters, episode and step ----
  const FILTERS = { arm: "f-arm", suite: "f-suite", seed: "f-seed", point: "f-point", outcome: "f-outcome", kind: "f-kind" }
  const linkState = { episode: 0, step: 0 }
  const writeLink = () => {
    const params = new URLSearchParams()
    for (const [name, id] of Object.entries(FILTERS)) if ($(id).value !== "") params.set(name, $(id).value)
    if (linkState.episode > 0) {
      params.set("episode", String(linkState.episode))
      params.set("step", String(linkState.step))
    }
    history.replaceState(null, "", `#${params.toString()}`)
  }
  const readLink = () => new URLSearchParams(location.hash.replace(/^#/, ""))

  for (const id of Object.values(FILTERS)) {
    $(id).addEventListener("change", () => {
      linkState.episode = 0
      drawList()
      writeLink()
    })
  }
  const link = readLink()
  for (const [name, id] of Object.entries(FILTERS)) {
    const v = link.get(name)
    if (v !== null && [...$(id).options].some((o) => o.value === v)) $(id).value = v
  }
  drawList()

  // ---- episodes: loaded per evaluation log as scripts (works from file:// too) ------------
  const loaded = new Map()
  const waiting = new Map()
  window.VIRL_LOADED = (key, episodes) => {
    loaded.set(key, episodes)
    for (const done of waiting.get(key) || []) done(episodes)
    waiting.delete(key)
  }
  const loadLog = (key) =>
    new Promise((resolve, reject) => {
      if (loaded.has(key)) return resolve(loaded.get(key))
      if (!waiting.has(key)) {
        waiting.set(key, [])
        const script = el("script", { src: `episodes/${encodeURIComponent(key)}.js` })
        script.onerror = () => reject(new Error(`episodes/${key}.js could not be loaded`))
        document.body.append(script)
      }
      waiting.get(key).push(resolve)
    })

  let current = null
  let currentStep
  /** Opens an episode (the `listed`-th of the list), at `step` (1-based) or at its first refused answer. */
  const openEpisode = async (entry, row, listed, step) => {
    for (const r of $("list").querySelectorAll("tr.selected")) r.classList.remove("selected")
    row?.classList.add("selected")
    current = entry
    currentStep = step
    linkState.episode = listed
    $("hint").hidden = true
    const log = logs.get(entry.log)
    const others = distinct(index.logs.filter((l) => l.final && l.seed === log.seed && l.suite === log.suite && l.arm !== log.arm).map((l) => l.arm))
    const compare = $("compare")
    const keep = compare.value
    compare.replaceChildren(el("option", { value: "" }, "none"), ...others.map((a) => el("option", { value: a }, a)))
    compare.value = others.includes(keep) ? keep : ""
    $("compare-bar").hidden = others.length === 0
    await drawPanels()
  }
  $("compare").addEventListener("change", () => drawPanels())

  const drawPanels = async () => {
    const entry = current
    const log = logs.get(entry.log)
    const panels = $("panels")
    panels.replaceChildren(el("p", {}, "loading…"))
    try {
      const episodes = await loadLog(entry.log)
      const nodes = [panel(log, episodes[entry.index], currentStep, (k) => {
        // a redraw (another arm beside it) keeps the step; the link names it
        currentStep = k + 1
        linkState.step = k + 1
        writeLink()
      })]
      const other = $("compare").value
      if (other !== "") {
        const otherLog = index.logs.find((l) => l.final && l.seed === log.seed && l.suite === log.suite && l.arm === other)
        const otherEpisodes = await loadLog(otherLog.key)
        const same = otherEpisodes.find((e) => e.route_index === episodes[entry.index].route_index && e.episode === episodes[entry.index].episode) ??
          otherEpisodes.find((e) => e.route_index === episodes[entry.index].route_index)
        nodes.push(same === undefined ? el("div", { class: "panel" }, `arm ${other} has no episode on route ${entry.route} in this suite`) : panel(otherLog, same))
      }
      if (current === entry) panels.replaceChildren(...nodes)
    } catch (e) {
      panels.replaceChildren(el("p", { class: "bad" }, String(e.message || e)))
    }
  }

  // ---- one episode, step by step ----------------------------------------------------------
  /** `step`: the answer to open at (1-based; default the first refused one); `onStep` hears each move. */
  const panel = (log, episode, step, onStep) => {
    const root = el("div", { class: "panel", "data-arm": log.arm })
    const n = episode.steps.length
    let k = 0
    const title = el("h3", {}, `${log.arm} · ${log.suite} · seed ${log.seed} · step ${log.step} · route ${episode.route_index ?? "?"} · `, el("span", { class: episode.success ? "ok" : "bad" }, episode.success ? "success" : "failure"))
    const position = el("span", { class: "position" })
    const prev = el("button", { type: "button", class: "prev", onclick: () => go(k - 1) }, "◀ previous")
    const next = el("button", { type: "button", class: "next", onclick: () => go(k + 1) }, "next ▶")
    const body = el("div", { class: "body" })
    root.append(title, el("div", { class: "stepper" }, prev, position, next), body)
    root.tabIndex = 0
    root.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowLeft") go(k - 1)
      if (ev.key === "ArrowRight") go(k + 1)
    })
    const go = (to) => {
      if (n === 0) {
        body.replaceChildren(el("p", {}, "this episode has no steps"))
        return
      }
      k = Math.max(0, Math.min(n - 1, to))
      onStep?.(k)
      const s = episode.steps[k]
      position.textContent = `answer ${k + 1} / ${n}`
      prev.disabled = k === 0
      next.disabled = k === n - 1
      const frame = s.frame === null ? el("div", { class: "frame missing" }, "no picture saved for this step") : el("img", { class: "frame", src: s.frame, alt: "observation grid" })
      const sentences = episode.instructions.length > 0 ? episode.instructions : [episode.global_instruction]
      const instructions = el(
        "ol",
        { class: "instructions" },
        sentences.map((t, i) => el("li", { class: i + 1 === s.instruction_idx ? "current" : "" }, t))
      )
      const verdictClass = s.verdict === "Correct" ? "ok" : "bad"
      body.replaceChildren(
        el("div", { class: "grid-row" }, frame, map(episode, k)),
        el("h4", {}, "instruction (the current sentence marked)"),
        instructions,
        el(
          "dl",
          { class: "facts" },
          el("dt", {}, "model output"),
          el("dd", {}, el("pre", { class: "output" }, s.output)),
          el("dt", {}, "parsed action"),
          el("dd", { class: "parsed-action" }, s.parsed.action),
          el("dt", {}, "ground truth"),
          el("dd", { class: "ground-truth" }, s.gt_action),
          el("dt", {}, "verdict"),
          el("dd", { class: `verdict ${verdictClass}` }, `${s.verdict} (${s.class})`),
          el("dt", {}, "reward"),
          el("dd", { class: "reward" }, String(s.reward)),
          el("dt", {}, "feedback"),
          el("dd", { class: "feedback" }, s.feedback ?? "—"),
          el("dt", {}, "position"),
          el("dd", {}, s.position === null ? "—" : `${s.position[0].toFixed(6)}, ${s.position[1].toFixed(6)} heading ${s.heading?.toFixed(1)}° (rail point ${s.rail_index})`)
        )
      )
    }
    go(step === undefined ? (episode.failure?.step ?? 0) : step - 1)
    return root
  }

  // a link's episode and step, once the list is drawn
  const linked = Number(link.get("episode"))
  if (Number.isInteger(linked) && linked > 0) {
    const rows = $("list").tBodies[0].rows
    const row = rows[linked - 1]
    if (row !== undefined) {
      const entry = index.episodes.find((e) => e.log === row.dataset.log && String(e.index) === row.dataset.index)
      const step = Number(link.get("step"))
      if (entry !== undefined) openEpisode(entry, row, linked, Number.isInteger(step) && step > 0 ? step : undefined)
    }
  }

  // the rail as a line, the agent's positions as dots, this step's larger
  const map = (episode, k) => {
    const size = 150
    const points = episode.rail.concat(episode.steps.flatMap((s) => (s.position === null ? [] : [s.position])))
    const box = svg("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`, class: "map" })
    if (points.length === 0) return box
    const lat0 = (points.reduce((s, p) => s + p[0], 0) / points.length) * (Math.PI / 180)
    const xy = (p) => [p[1] * Math.cos(lat0), p[0]]
    const xs = points.map((p) => xy(p)[0])
    const ys = points.map((p) => xy(p)[1])
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)]
    const span = Math.max(x1 - x0, y1 - y0, 1e-9)
    const to = (p) => {
      const [x, y] = xy(p)
      return [12 + ((x - x0) / span) * (size - 24), size - 12 - ((y - y0) / span) * (size - 24)]
    }
    box.append(svg("polyline", { points: episode.rail.map((p) => to(p).join(",")).join(" "), fill: "none", stroke: "#7a7a7a", "stroke-width": 3 }))
    if (episode.rail.length > 0) {
      const [sx, sy] = to(episode.rail[0])
      const [ex, ey] = to(episode.rail[episode.rail.length - 1])
      box.append(svg("rect", { x: sx - 5, y: sy - 5, width: 10, height: 10, fill: "#4a7" }), svg("rect", { x: ex - 5, y: ey - 5, width: 10, height: 10, fill: "#c44" }))
    }
    episode.steps.forEach((s, i) => {
      if (s.position === null) return
      const [x, y] = to(s.position)
      box.append(svg("circle", { cx: x, cy: y, r: i === k ? 6 : 3, fill: i === k ? "#1a5fd0" : s.verdict === "Correct" ? "#2b8a3e" : "#c92a2a", class: i === k ? "here" : "" }))
    })
    return box
  }
})()
