import { ClientApi } from "@breakwater/gateway"
import type * as http from "node:http"
import { fail } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"

export type BodyResult =
  | { readonly _tag: "Ok"; readonly bytes: Buffer }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Aborted" }

/** Reads a request body up to `limit` bytes; stops buffering (and says so) past it. */
export const read = (req: http.IncomingMessage, limit: number, done: (result: BodyResult) => void): void => {
  const declared = Number(req.headers["content-length"])
  if (Number.isFinite(declared) && declared > limit) {
    req.resume()
    done({ _tag: "TooLarge" })
    return
  }
  const parts: Array<Buffer> = []
  let size = 0
  let finished = false
  const finish = (result: BodyResult) => {
    if (finished) return
    finished = true
    done(result)
  }
  req.on("data", (part: Buffer) => {
    size += part.length
    if (size > limit) {
      req.removeAllListeners("data")
      req.resume()
      finish({ _tag: "TooLarge" })
      return
    }
    parts.push(part)
  })
  req.once("end", () => {
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
    // The request lives as long as its answer (a held stream: minutes); its body need not. The
    // data listener stays: removing it turns the emitter's listener table into a dictionary
    // (`delete`), a slow path on every request, and after the end it holds only empty state.
    parts.length = 0
    finish({ _tag: "Ok", bytes })
  })
  req.once("error", () => finish({ _tag: "Aborted" }))
  req.once("aborted", () => finish({ _tag: "Aborted" }))
}

/** Reads a model request's body within the server's limit: the 413 past it, nothing when the client left. */
export const readWithin = (h: Host, x: Exchange, done: (bytes: Buffer) => void): void =>
  read(x.req, h.settings.maxBodyBytes, (body) => {
    if (body._tag === "Aborted") return
    if (body._tag === "TooLarge") {
      x.res.setHeader("connection", "close")
      return fail(h, x, ClientApi.tooLarge(h.settings.maxBodyBytes))
    }
    done(body.bytes)
  })
