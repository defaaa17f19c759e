/** A request's body on `@effect/platform`, as the pipeline checks it (it answers the 413). */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** The body's bytes, read up to one byte past `max` (the pipeline answers the 413). */
export const readBody = (request: HttpServerRequest.HttpServerRequest, max: number) =>
  Effect.map(
    Stream.runFoldWhile(request.stream, { parts: Chunk.empty<Uint8Array>(), size: 0 }, (s) => s.size <= max, (s, part) => ({
      parts: Chunk.append(s.parts, part),
      size: s.size + part.length
    })),
    ({ parts, size }) => {
      const bytes = new Uint8Array(size)
      let at = 0
      for (const part of parts) {
        bytes.set(part, at)
        at += part.length
      }
      return bytes
    }
  )
