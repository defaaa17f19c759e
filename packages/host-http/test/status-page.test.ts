import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Host from "./support/host.js"

const servers = Host.closedAfterEach()
const mocks: Array<MockUpstream.MockUpstream> = []
const scopes: Array<Scope.CloseableScope> = []
afterEach(async () => {
  await Promise.all(mocks.splice(0).map((m) => m.close()))
  await Promise.all(scopes.splice(0).map((s) => Effect.runPromise(Scope.close(s, Exit.void))))
})

const admin = "gw-admin-0123456789abcdef"
const client = "gw-key-aaaaaaaaaaaa"

/** A real gateway (config → builder) over two mock upstreams, served over loopback. */
const serve = async (extra: Record<string, unknown> = {}, options: HttpHost.Options = {}) => {
  const primary = await MockUpstream.start()
  const backup = await MockUpstream.start()
  mocks.push(primary, backup)
  const scope = Effect.runSync(Scope.make())
  scopes.push(scope)
  const gateway = await Effect.runPromise(Effect.provideService(Effect.flatMap(ConfigLoader.fromObject({
    upstreams: {
      primary: { provider: "openai", baseUrl: primary.url, models: ["gpt-4o"] },
      backup: { provider: "openai", baseUrl: backup.url, models: ["gpt-4o"] }
    },
    routes: { "gpt-4o": { upstreams: ["primary", "backup"] } },
    defaults: { retry: { baseDelay: "1 millis", maxDelay: "5 millis" } },
    ...extra
  }, {}), GatewayBuilder.make), Scope.Scope, scope))
  const running = await HttpHost.start(gateway, { log: () => {}, port: 0, ...options })
  servers.push(running)
  return { url: running.url, primary, backup }
}

const chat = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] })
  }).then((r) => r.text())

/** Reads the event stream until `count` events arrived; returns them parsed. */
const readEvents = async (url: string, count: number, headers: Record<string, string> = {}, onFirst?: () => Promise<unknown>) => {
  const controller = new AbortController()
  const res = await fetch(`${url}/status/events`, { headers, signal: controller.signal })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toMatch(/text\/event-stream/)
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const events: Array<{ event: string; data: any }> = []
  let buffer = ""
  while (events.length < count) {
    const { done, value } = await reader.read()
    if (done) break
    buffer += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(frame)?.[1]
      const data = /^data: (.*)$/m.exec(frame)?.[1]
      if (event === undefined || data === undefined) continue
      events.push({ event, data: JSON.parse(data) })
      if (events.length === 1 && onFirst !== undefined) await onFirst()
    }
  }
  controller.abort()
  return events
}

describe("status page (GET /status)", () => {
  it("serves the page, its script, its styles and uPlot from the package", async () => {
    const { url } = await serve()
    const page = await fetch(`${url}/status`)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toMatch(/text\/html/)
    const html = await page.text()
    expect(html).toContain("<title>Breakwater status</title>")
    expect(html).toContain(`src="/status/uplot.js"`)
    for (const [path, type] of [["/status/app.js", /javascript/], ["/status/app.css", /css/], ["/status/uplot.js", /javascript/], ["/status/uplot.css", /css/]] as const) {
      const res = await fetch(`${url}${path}`)
      expect(res.status, path).toBe(200)
      expect(res.headers.get("content-type")).toMatch(type)
      expect((await res.text()).length).toBeGreaterThan(100)
    }
    expect((await fetch(`${url}/status/nope`)).status).toBe(404)
  })

  it("streams a snapshot with the routes, upstreams and circuits, then updates with the requests that finished", async () => {
    const { url, primary } = await serve()
    primary.script({ fault: MockUpstream.Fault.Status({ status: 500 }) })
    const events = await readEvents(url, 2, {}, () => chat(url))
    const [snapshot] = events
    expect(snapshot!.event).toBe("snapshot")
    expect(snapshot!.data.routes).toEqual([{
      model: "gpt-4o",
      ready: true,
      targets: [{ upstream: "primary", model: "gpt-4o", circuit: "closed" }, { upstream: "backup", model: "gpt-4o", circuit: "closed" }]
    }])
    expect(snapshot!.data.upstreams.map((u: { name: string; circuit: string }) => `${u.name}:${u.circuit}`)).toEqual(["primary:closed", "backup:closed"])
    expect(snapshot!.data.seconds.requests).toHaveLength(600)
    const update = events.find((e) => e.event === "update" && e.data.requests.length > 0) ?? (await readEvents(url, 3)).find((e) => e.data.requests.length > 0)
    const request = update!.data.requests.at(-1)
    expect(request.status).toBe(200)
    expect(request.trail.filter((t: { _tag: string }) => t._tag === "Attempt").map((t: { upstream: string; outcome: string }) => `${t.upstream}:${t.outcome}`))
      .toEqual(["primary:failed", "primary:ok"])
    expect(request.trail.some((t: { _tag: string }) => t._tag === "Retry")).toBe(true)
  })

  it("with client keys, asks for the admin key: header, or ?key= once for a cookie; never echoes it", async () => {
    const { url } = await serve({ auth: { keys: [{ name: "app", key: client }], adminKey: admin } })
    expect((await fetch(`${url}/status`)).status).toBe(401)
    expect((await fetch(`${url}/status/events`)).status).toBe(401)
    expect((await fetch(`${url}/status`, { headers: { authorization: `Bearer ${client}` } })).status).toBe(401)
    expect((await fetch(`${url}/status?key=${client}`, { redirect: "manual" })).status).toBe(401)
    expect((await fetch(`${url}/status`, { headers: { cookie: "breakwater_status=forged" } })).status).toBe(401)
    expect((await fetch(`${url}/status`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200)

    const login = await fetch(`${url}/status?key=${admin}`, { redirect: "manual" })
    expect(login.status).toBe(303)
    expect(login.headers.get("location")).toBe("/status")
    const cookie = login.headers.get("set-cookie")!
    expect(cookie).toMatch(/^breakwater_status=[A-Za-z0-9_-]+; Path=\/status; HttpOnly; SameSite=Strict/)
    expect(cookie).not.toContain(admin)
    expect(await login.text()).not.toContain(admin)
    const session = cookie.split(";")[0]!
    const page = await fetch(`${url}/status`, { headers: { cookie: session } })
    expect(page.status).toBe(200)
    expect(await page.text()).not.toContain(admin)
    const [snapshot] = await readEvents(url, 1, { cookie: `other=1; ${session}` })
    expect(snapshot!.event).toBe("snapshot")
    expect(JSON.stringify(snapshot!.data)).not.toContain(admin)
  })

  it("is off with `statusPage: false`", async () => {
    const { url } = await serve({}, { statusPage: false })
    expect((await fetch(`${url}/status`)).status).toBe(404)
    expect((await fetch(`${url}/status/events`)).status).toBe(404)
  })
})
