// The Breakwater status page: one EventSource on /status/events, a snapshot then an update a
// second. Plain DOM (names are set as text, never as HTML) and uPlot for the charts.
(function () {
  "use strict"
  const RATE_SECONDS = 60
  const MAX_REQUESTS = 50
  const state = { upstreams: [], routes: [], seconds: new Map(), slots: new Map(), window: null, transitions: [], requests: new Map(), inflight: 0, now: Date.now() }
  const $ = (id) => document.getElementById(id)

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag)
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue
      if (k === "class") node.className = v
      else if (k.startsWith("data-")) node.setAttribute(k, String(v))
      else node[k] = v
    }
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : document.createTextNode(String(c)))
    return node
  }
  const pill = (circuit, text, extra) => el("span", { class: "pill" + (extra ? " " + extra : ""), "data-circuit": circuit, title: "circuit " + circuit }, text)
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false })
  const fmtMs = (ms) => ms === null || ms === undefined ? "–" : ms >= 10000 ? (ms / 1000).toFixed(1) + " s" : ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms"
  const fmtRate = (n) => n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)

  // ---- merging what the server sends
  function merge(msg, full) {
    if (full) { state.seconds.clear(); state.slots.clear() }
    state.now = msg.now
    state.upstreams = msg.upstreams
    state.routes = msg.routes
    state.window = msg.window
    state.transitions = msg.transitions
    state.inflight = msg.inflight
    const s = msg.seconds
    for (let i = 0; i < s.requests.length; i++) {
      state.seconds.set(s.start / 1000 + i, { requests: s.requests[i], errors: s.errors[i], retries: s.retries[i], fallbacks: s.fallbacks[i], resumes: s.resumes[i], rejections: s.rejections[i], timeouts: s.timeouts[i] })
    }
    const horizon = msg.now / 1000 - 600
    for (const t of state.seconds.keys()) if (t < horizon) state.seconds.delete(t)
    msg.slots.starts.forEach((start, i) => state.slots.set(start, { latency: msg.slots.latency[i], ttfb: msg.slots.ttfb[i] }))
    for (const t of state.slots.keys()) if (t < msg.now - 600000) state.slots.delete(t)
    const fresh = new Set()
    for (const r of msg.requests) if (!state.requests.has(r.seq)) { state.requests.set(r.seq, r); if (!full) fresh.add(r.seq) }
    const seqs = [...state.requests.keys()].sort((a, b) => a - b)
    for (const seq of seqs.slice(0, Math.max(0, seqs.length - MAX_REQUESTS))) state.requests.delete(seq)
    render(fresh)
  }

  // ---- tiles
  function lastSeconds(n) {
    const nowSec = Math.floor(state.now / 1000)
    const sum = { requests: 0, errors: 0, retries: 0, fallbacks: 0, resumes: 0, rejections: 0, timeouts: 0 }
    for (let t = nowSec - n; t < nowSec; t++) {
      const c = state.seconds.get(t)
      if (c) for (const k in sum) sum[k] += c[k]
    }
    return sum
  }
  function tile(label, value, unit, hint, tone, id) {
    return el("div", { class: "tile" + (tone ? " " + tone : ""), "data-tile": id }, el("div", { class: "label" }, label), el("div", { class: "value" }, value, unit ? el("small", null, unit) : null), el("div", { class: "hint" }, hint))
  }
  function renderTiles() {
    const m = lastSeconds(RATE_SECONDS)
    const w = state.window
    const per = (n) => fmtRate(n / RATE_SECONDS)
    const errPct = m.requests === 0 ? 0 : (100 * m.errors) / m.requests
    const mins = w ? Math.round(w.seconds / 60) + " min" : ""
    const lat = w ? w.latency : {}, ttfb = w ? w.ttfb : {}
    $("tiles").replaceChildren(
      tile("Requests", per(m.requests), "/s", `${w ? w.totals.requests : 0} in ${mins} · ${state.inflight} in flight`, null, "requests"),
      tile("Errors (5xx)", errPct.toFixed(1), "%", `${per(m.errors)}/s · ${w ? w.totals.errors : 0} in ${mins}`, errPct > 5 ? "bad" : errPct > 0 ? "warn" : "good", "errors"),
      tile("Retries", per(m.retries), "/s", `${w ? w.totals.retries : 0} in ${mins}`, m.retries > 0 ? "warn" : null, "retries"),
      tile("Fallbacks", per(m.fallbacks), "/s", `${w ? w.totals.fallbacks : 0} in ${mins}`, m.fallbacks > 0 ? "warn" : null, "fallbacks"),
      tile("Resumes", per(m.resumes), "/s", `${w ? w.totals.resumes : 0} in ${mins}`, null, "resumes"),
      tile("Breaker rejections", per(m.rejections), "/s", `${w ? w.totals.rejections : 0} in ${mins} · ${w ? w.totals.timeouts : 0} timeouts`, m.rejections > 0 ? "bad" : null, "rejections"),
      tile("Latency p50 / p95", fmtMs(lat.p50), null, `p95 ${fmtMs(lat.p95)} · p99 ${fmtMs(lat.p99)}`, null, "latency"),
      tile("TTFB p50 / p95", fmtMs(ttfb.p50), null, `p95 ${fmtMs(ttfb.p95)} · p99 ${fmtMs(ttfb.p99)}`, null, "ttfb")
    )
  }

  // ---- upstreams, routes, transitions
  function renderUpstreams() {
    const box = $("upstreams")
    if (state.upstreams.length === 0) return box.replaceChildren(el("div", { class: "empty" }, "no upstreams"))
    box.replaceChildren(...state.upstreams.map((u) => {
      const recent = state.transitions.filter((t) => t.key === u.name || t.key.startsWith(u.name + "@")).slice(-3).reverse()
      return el("div", { class: "upstream", "data-upstream": u.name, "data-circuit": u.circuit },
        el("div", { class: "head" }, el("div", null, el("span", { class: "name" }, u.name), el("span", { class: "provider" }, u.provider)), pill(u.circuit, u.circuit)),
        el("div", { class: "models" }, ...(u.models || []).map((m) => pill(m.circuit, m.model, "model"))),
        recent.length === 0 ? null : el("div", { class: "hint", style: "margin-top:6px;color:#8b98a9;font-size:12px" }, recent.map((t) => `${clock(t.at)} ${t.from}→${t.to}`).join(" · ")))
    }))
  }
  function renderRoutes() {
    const box = $("routes")
    if (state.routes.length === 0) return box.replaceChildren(el("div", { class: "empty" }, "no routes"))
    box.replaceChildren(...state.routes.map((r) => {
      const parts = [el("span", { class: "rname", "data-ready": r.ready, title: r.ready ? "ready" : "no target available" }, r.model), el("span", { class: "arrow" }, "→")]
      ;(r.targets || []).forEach((t, i) => {
        if (i > 0) parts.push(el("span", { class: "sep" }, "then"))
        parts.push(pill(t.circuit, t.model === r.model ? t.upstream : `${t.upstream} (${t.model})`, "model"))
      })
      return el("div", { class: "route", "data-route": r.model }, ...parts)
    }))
  }
  function renderTransitions() {
    const box = $("transitions")
    if (state.transitions.length === 0) return box.replaceChildren(el("li", { class: "empty" }, "none since the gateway started"))
    box.replaceChildren(...state.transitions.slice().reverse().map((t) =>
      el("li", { "data-transition": t.key }, el("span", { class: "t" }, clock(t.at)), el("span", { class: "k" }, t.key), pill(t.from, t.from), el("span", { class: "sep" }, "→"), pill(t.to, t.to))))
  }

  // ---- recent requests
  function step(e) {
    switch (e._tag) {
      case "Attempt": {
        const what = e.outcome === "ok" ? "✓" : e.outcome === "failed" ? "✗ " + e.error : e.outcome === "defect" ? "✗ defect" : e.outcome === "interrupted" ? "cancelled" : "…"
        return el("span", { class: "step " + e.outcome, title: `attempt ${e.attempt} on ${e.upstream} (${e.model})` }, `${e.upstream} #${e.attempt} ${what}${e.ms !== undefined ? " · " + fmtMs(e.ms) : ""}`)
      }
      case "Retry": return el("span", { class: "step retry", title: e.reason }, `retry in ${fmtMs(e.waitMillis)}`)
      case "RetryRefused": return el("span", { class: "step retry", title: e.reason }, `no retry (${e.why})`)
      case "BreakerRejected": return el("span", { class: "step breaker" }, `rejected by breaker ${e.key}`)
      case "BreakerTransition": return el("span", { class: "step breaker" }, `breaker ${e.key} ${e.from}→${e.to}`)
      case "TargetSkipped": return el("span", { class: "step breaker" }, `skipped ${e.target} (open)`)
      case "Fallback": return el("span", { class: "step fallback", title: e.reason }, `fell back ${e.from} → ${e.to}`)
      case "Timeout": return el("span", { class: "step timeout" }, `timeout ${e.phase} after ${fmtMs(e.limitMillis)}`)
      case "Hedge": return el("span", { class: "step hedge" }, e.outcome === "won" ? "hedge won" : `hedged after ${fmtMs(e.delayMillis)}`)
      case "Resume": return el("span", { class: "step resume", title: e.reason || "" }, e.outcome === "resumed" ? `resumed at seam ${e.seam ?? "?"}${e.splice ? " (" + e.splice + ")" : ""}` : e.outcome)
      case "JournalReplay": return el("span", { class: "step replay" }, `replayed ${e.events} events`)
      default: return el("span", { class: "step" }, e._tag)
    }
  }
  function renderRequests(fresh) {
    const rows = [...state.requests.values()].sort((a, b) => b.seq - a.seq).map((r) => {
      const tone = r.status >= 500 ? "bad" : r.status >= 400 ? "warn" : "ok"
      const trail = []
      r.trail.forEach((e, i) => { if (i > 0) trail.push(el("span", { class: "sep" }, "›")); trail.push(step(e)) })
      if (r.dropped > 0) trail.push(el("span", { class: "sep" }, `+${r.dropped} more`))
      return el("tr", { class: fresh.has(r.seq) ? "fresh" : null, "data-request": r.id },
        el("td", { class: "num" }, clock(r.at)),
        el("td", { class: "model" }, r.model, r.stream ? el("span", { class: "sep" }, " stream") : null),
        el("td", { class: "num" }, el("span", { class: "status " + tone, title: r.error || "" }, r.status), r.error ? el("span", { class: "sep" }, " " + r.error) : null),
        el("td", { class: "num" }, fmtMs(r.latencyMs)),
        el("td", { class: "num" }, r.stream ? fmtMs(r.ttfbMs) : "–"),
        el("td", null, el("div", { class: "trail" }, ...trail)))
    })
    $("requests").replaceChildren(...(rows.length ? rows : [el("tr", null, el("td", { colSpan: 6, class: "empty" }, "no requests yet"))]))
  }

  // ---- charts
  const axis = { stroke: "#8b98a9", grid: { stroke: "#1f2835", width: 1 }, ticks: { stroke: "#1f2835", width: 1 } }
  const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 1.6, points: { show: false }, value: (u, v) => v === null || v === undefined ? "–" : v }, extra || {})
  let traffic, latency
  function chartWidth(id) { return Math.max(280, $(id).clientWidth) }
  function makeCharts() {
    if (typeof uPlot !== "function") return
    traffic = new uPlot({
      width: chartWidth("chart-traffic"), height: 220, legend: { live: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [axis, Object.assign({}, axis, { size: 44 })],
      series: [{}, line("requests/s", "#58a6ff", { fill: "rgba(88,166,255,.08)" }), line("errors", "#f85149"), line("retries", "#d29922"), line("fallbacks", "#bc8cff"), line("resumes", "#39c5cf"), line("breaker rejections", "#ff7b72", { dash: [4, 3] })]
    }, [[], [], [], [], [], [], []], $("chart-traffic"))
    latency = new uPlot({
      width: chartWidth("chart-latency"), height: 220, legend: { live: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(10, max || 0)] } },
      axes: [axis, Object.assign({}, axis, { size: 64, values: (u, vals) => vals.map((v) => fmtMs(v)) })],
      series: [{}, line("latency p50", "#3fb950", { spanGaps: true }), line("p95", "#d29922", { spanGaps: true }), line("p99", "#f85149", { spanGaps: true }), line("TTFB p95", "#39c5cf", { spanGaps: true, dash: [4, 3] })]
    }, [[], [], [], [], []], $("chart-latency"))
    const resize = () => {
      traffic.setSize({ width: chartWidth("chart-traffic"), height: 220 })
      latency.setSize({ width: chartWidth("chart-latency"), height: 220 })
    }
    if (typeof ResizeObserver === "function") new ResizeObserver(resize).observe(document.querySelector("main"))
  }
  function renderCharts() {
    if (!traffic) return
    // From the first second with traffic (at least the last minute): a gateway that just started
    // should not draw nine minutes of nothing.
    const all = [...state.seconds.keys()].sort((a, b) => a - b)
    const busy = all.find((t) => state.seconds.get(t).requests > 0)
    const from = Math.min(busy === undefined ? Infinity : busy, Math.floor(state.now / 1000) - 60)
    // The current second is still counting: drawn, it would always dip.
    const xs = all.filter((t) => t >= from && t < Math.floor(state.now / 1000))
    const col = (k) => xs.map((t) => state.seconds.get(t)[k])
    traffic.setData([xs, col("requests"), col("errors"), col("retries"), col("fallbacks"), col("resumes"), col("rejections")])
    const ss = [...state.slots.keys()].filter((t) => t >= from * 1000 - 10000).sort((a, b) => a - b)
    const pick = (f) => ss.map((s) => f(state.slots.get(s)))
    latency.setData([ss.map((s) => s / 1000), pick((s) => s.latency.p50), pick((s) => s.latency.p95), pick((s) => s.latency.p99), pick((s) => s.ttfb.p95)])
  }

  function render(fresh) {
    renderTiles()
    renderUpstreams()
    renderRoutes()
    renderTransitions()
    renderRequests(fresh)
    renderCharts()
  }

  // ---- connection
  function setConn(s, text) { $("conn").dataset.state = s; $("conn-text").textContent = text }
  function connect() {
    const es = new EventSource("/status/events")
    es.addEventListener("snapshot", (e) => { setConn("live", "live"); merge(JSON.parse(e.data), true) })
    es.addEventListener("update", (e) => { setConn("live", "live · " + clock(Date.now())); merge(JSON.parse(e.data), false) })
    es.onerror = () => setConn("lost", "reconnecting…")
  }
  makeCharts()
  connect()
})()
