/**
 * `GET /status`: the live status page (HTML, CSS and JS shipped in the package's `status/`
 * folder, uPlot served from its installed files), and `GET /status/events`, its event stream.
 * The page and the stream are guarded by `statusAccess.ts`; the static assets hold nothing
 * secret and are open.
 */
import type { StatusBoard } from "@breakwater/gateway"
import { ClientApi } from "@breakwater/gateway"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { fail, finish } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"
import * as StatusAccess from "./statusAccess.js"
import * as StatusFeed from "./statusFeed.js"

export const prefix = "/status"

export interface StatusPage {
  readonly board: StatusBoard.StatusBoard
  readonly feed: StatusFeed.Feed
  readonly access: StatusAccess.Access
}

export const make = (board: StatusBoard.StatusBoard): StatusPage => ({ board, feed: StatusFeed.make(board), access: StatusAccess.make() })

const own = (name: string) => fileURLToPath(new URL(`../../status/${name}`, import.meta.url))
const uplot = (name: string) => createRequire(import.meta.url).resolve(`uplot/dist/${name}`)

const assets: Record<string, { readonly path: () => string; readonly type: string }> = {
  "/status": { path: () => own("index.html"), type: "text/html; charset=utf-8" },
  "/status/app.js": { path: () => own("app.js"), type: "text/javascript; charset=utf-8" },
  "/status/app.css": { path: () => own("app.css"), type: "text/css; charset=utf-8" },
  "/status/uplot.js": { path: () => uplot("uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
  "/status/uplot.css": { path: () => uplot("uPlot.min.css"), type: "text/css; charset=utf-8" }
}
// Read on first use, then kept (a few tens of KB).
const loaded = new Map<string, Buffer>()

const sendAsset = (h: Host, x: Exchange, path: string): void => {
  const asset = assets[path]!
  let body = loaded.get(path)
  if (body === undefined) {
    body = readFileSync(asset.path())
    loaded.set(path, body)
  }
  x.res.writeHead(200, {
    "content-type": asset.type,
    "content-length": body.length,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "x-request-id": x.requestId,
    ...(path === "/status" ? { "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'", "x-frame-options": "DENY" } : {})
  })
  x.res.end(body)
  finish(h, x, 200)
}

/** Answers a request under `/status`. */
export const serve = (h: Host, x: Exchange): void => {
  const page = h.status
  const path = x.path === "/status/" ? "/status" : x.path
  if (page === undefined || (path !== "/status/events" && assets[path] === undefined)) return fail(h, x, ClientApi.noRoute(x.method, x.path))
  if (x.method !== "GET" && x.method !== "HEAD") return fail(h, x, ClientApi.methodNotAllowed(x.method, x.path, "GET"))
  const guarded = path === "/status" || path === "/status/events"
  if (guarded && !StatusAccess.check(h, x, page.access)) return
  if (path !== "/status/events") return sendAsset(h, x, path)
  x.req.resume()
  StatusFeed.watch(h, page.feed, x.res, () => finish(h, x, 200))
}
