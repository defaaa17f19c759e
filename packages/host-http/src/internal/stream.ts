/**
 * A streamed chat completion: the commit gate and its time bound, backpressure from the socket,
 * the journal (when on) and the detach of a generation whose client left, and how it ends.
 */
import type { ChatCompletion, RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream, RequestPipeline } from "@breakwater/gateway"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { finish, sendError } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"
import * as Journaling from "./journaling.js"
import * as Lifecycle from "./lifecycle.js"

const cancelled: ClientApi.ApiError = { status: 499, message: "the stream was cancelled", type: "server_error", code: "stream_cancelled" }

export const stream = (
  h: Host,
  x: Exchange,
  request: ChatCompletion.ChatRequest,
  ctx: RequestContext.RequestContextShape,
  journaled: Journaling.Journaled | undefined
): void => {
  const { requestId, res } = x
  let commitTimer: NodeJS.Timeout | undefined
  let recorder: Journaling.Recorder | undefined
  let detached = false
  if (journaled !== undefined) {
    recorder = Journaling.make(h.runtime, journaled, requestId, h.retryMs, {
      cancelled: () => Lifecycle.interrupt(x),
      // A detached generation has no reader left.
      evicted: () => {
        if (detached) Lifecycle.interrupt(x)
      }
    })
    h.lifecycle.running.set(journaled.streamId, x)
    const journaling = recorder.journaling
    // Disconnect is not stop: the generation goes on (journaled) for the grace period, and is
    // cut then unless a reader reconnected. A client that never got the stream's id (nothing
    // committed, no Idempotency-Key) cannot come back, so its stream stops at once.
    x.onClientGone = () => {
      if (h.settings.detachGraceMs <= 0 || !journaling() || (!writer.committed() && journaled.alias === undefined)) return false
      detached = true
      Lifecycle.detach(h, x, journaled)
      return true
    }
  }
  const writer = ClientStream.make({
    includeUsage: request.stream_options?.include_usage === true,
    events: recorder?.events,
    sink: {
      commit: (heldBack) => {
        if (commitTimer !== undefined) clearTimeout(commitTimer)
        if (res.destroyed) return
        res.writeHead(200, ClientStream.headers(requestId, ctx.trace, journaled?.streamId))
        if (heldBack !== "") res.write(heldBack)
      },
      write: (frames) => res.destroyed || res.writableEnded || res.write(frames)
    }
  })
  // An upstream slow to start still gets a 200 and a keep-alive after this bound.
  commitTimer = setTimeout(() => {
    writer.commit()
    if (!res.destroyed) res.write(ClientStream.keepAlive)
  }, h.settings.streamCommitTimeoutMs)
  const fiber = h.pipeline.startStream(request, ctx, writer, (resume) => res.once("drain", resume))
  x.fiber = fiber
  fiber.addObserver((exit) => {
    if (commitTimer !== undefined) clearTimeout(commitTimer)
    const trace = ctx.trace
    const fields = RequestPipeline.traceFields(trace)
    if (detached) fields["detached"] = true
    let closeJournal: Effect.Effect<unknown, unknown> = Effect.void
    if (journaled !== undefined) {
      h.lifecycle.running.delete(journaled.streamId)
      Lifecycle.release(h.lifecycle, x)
      // Failed before anything was committed: the client got an HTTP error, so a retry with the
      // same Idempotency-Key starts afresh.
      closeJournal = journaled.journal.remove(journaled.streamId)
    }
    /** The terminal event, journaled before the journal is closed. */
    const terminal = (t: { readonly frame: string; readonly seq: number }) => {
      if (recorder !== undefined) closeJournal = recorder.close(t)
      return t.frame
    }
    if (Exit.isSuccess(exit)) {
      const frame = terminal(ClientStream.end(writer, undefined, requestId)!)
      if (!res.destroyed) res.end(frame)
      finish(h, x, 200, fields)
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      if (writer.committed()) {
        // Cancelled, cut after the detach grace, or at shutdown: a reader gets a well-formed end.
        const frame = terminal(writer.terminal(ClientApi.errorBody(cancelled, requestId)))
        if (!res.destroyed && journaled !== undefined) res.end(frame)
      }
      if (!res.destroyed && !res.writableEnded) res.destroy()
      fields["error"] = detached || journaled === undefined ? "client_closed" : "stream_cancelled"
      finish(h, x, 499, fields)
    } else {
      const error = h.pipeline.failureOf(exit.cause, trace)
      const end = ClientStream.end(writer, error, requestId)
      // Before anything was committed the failure is a plain HTTP error; after, an error event.
      if (end === undefined) sendError(x, error, trace)
      else {
        const frame = terminal(end)
        if (!res.destroyed) res.end(frame)
      }
      fields["error"] = error.code
      finish(h, x, end === undefined ? error.status : 200, fields)
    }
    if (journaled !== undefined) {
      h.runtime.runFork(Effect.catchAllCause(closeJournal, (cause) => Effect.logWarning("could not close the stream journal", Cause.pretty(cause))))
    }
  })
}
