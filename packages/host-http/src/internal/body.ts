import type * as http from "node:http"

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
  req.once("end", () => finish({ _tag: "Ok", bytes: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }))
  req.once("error", () => finish({ _tag: "Aborted" }))
  req.once("aborted", () => finish({ _tag: "Aborted" }))
}
