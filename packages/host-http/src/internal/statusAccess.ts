/**
 * Who may see the status page. Without client keys it is open (the server then only answers on
 * loopback). With them it takes the admin key, like `/metrics`: as `Authorization: Bearer`, or
 * once as `?key=` from a browser (which cannot set headers on an `EventSource`); that answers
 * with a redirect to the bare URL and an HttpOnly, SameSite=Strict cookie holding a random
 * token of this server (never the key), which the page and its event stream then carry.
 */
import { ClientApi } from "@breakwater/gateway"
import { randomBytes, timingSafeEqual } from "node:crypto"
import { fail, finish } from "./answer.js"
import { type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"

const COOKIE = "breakwater_status"

export interface Access {
  /** The cookie value that stands for the admin key, until the server restarts. */
  readonly token: Buffer
}

export const make = (): Access => ({ token: randomBytes(32) })

const cookieOf = (x: Exchange): string | undefined => {
  const cookies = header(x, "cookie")
  if (cookies === undefined) return undefined
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=")
    if (eq !== -1 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim()
  }
  return undefined
}

const holdsToken = (access: Access, value: string | undefined): boolean => {
  if (value === undefined) return false
  const given = Buffer.from(value, "base64url")
  return given.length === access.token.length && timingSafeEqual(given, access.token)
}

const queryKey = (x: Exchange): string | undefined => {
  const url = x.req.url ?? ""
  const q = url.indexOf("?")
  return q === -1 ? undefined : new URLSearchParams(url.slice(q + 1)).get("key") ?? undefined
}

/** Whether the request may see the page; answers it (a 401, or the cookie's redirect) when not. */
export const check = (h: Host, x: Exchange, access: Access): boolean => {
  const api = h.pipeline.api
  if (api.metricsAllowed(x.req.headers.authorization) || holdsToken(access, cookieOf(x))) return true
  const key = queryKey(x)
  if (key !== undefined && api.metricsAllowed(`Bearer ${key}`)) {
    x.req.resume()
    x.res.writeHead(303, {
      location: x.path,
      "set-cookie": `${COOKIE}=${access.token.toString("base64url")}; Path=/status; HttpOnly; SameSite=Strict; Max-Age=86400`,
      "cache-control": "no-store",
      "x-request-id": x.requestId,
      "content-length": "0"
    })
    x.res.end()
    finish(h, x, 303)
    return false
  }
  fail(h, x, ClientApi.adminRequired)
  return false
}
