/**
 * A streamed answer (chat completion chunks or Messages events, as the exchange's `protocol`
 * encodes): the commit gate and its time bound, backpressure from the socket, the journal (when
 * on) and the detach of a generation whose client left, and how it ends.
 */
import type { ChatCompletion, RequestContext } from "@breakwater/core"
import { ClientStream, RequestPipeline, StreamReconnect } from "@breakwater/gateway"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import { finish, sendError } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"

export const stream = (
  h: Host,
  x: Exchange,
  request: ChatCompletion.ChatRequest,
  ctx: RequestContext.RequestContextShape,
  journaled: StreamReconnect.Journaled | undefined
): void => {
  const { requestId, res } = x
  let commitTimer: NodeJS.Timeout | undefined
  let recorder: StreamReconnect.Recorder | undefined
  let detached = false
  let running: Lifecycle.Running | undefined
  if (journaled !== undefined) {
    const journaling = StreamReconnect.record(h.runtime, journaled, requestId, h.retryMs, {
      cancelled: () => Lifecycle.interrupt(x),
      // A detached generation has no reader left.
      evicted: () => {
        if (detached) Lifecycle.interrupt(x)
      }
    })
    recorder = journaling
    running = Lifecycle.startRunning(h.lifecycle, journaled.streamId, x)
    // Disconnect is not stop: the generation goes on (journaled) for the grace period, and is
    // cut then unless a reader reconnected. A client that never got the stream's id (nothing
    // committed, no Idempotency-Key) cannot come back, so its stream stops at once.
    x.onClientGone = () => {
      if (!StreamReconnect.canDetach(h.settings.detachGraceMs, journaling, journaled, writer.committed())) return false
      detached = true
      Lifecycle.detach(h, x, journaled)
      return true
    }
  }
  // The response's socket stays corked until the event loop's current I/O phase is over
  // (`setImmediate`), not only until the next tick as Node's own cork: a stream whose upstream
  // read carried its end (events, `[DONE]` and the upstream's last chunk) ends in the fiber's
  // exit, a few microtasks later, and its end frame then leaves in the events' write rather than
  // a second `writev` of its own (a syscall per stream, ~6% of a back-to-back stream's CPU).
  let corked: { uncork(): void } | undefined
  const uncork = () => {
    corked!.uncork()
    corked = undefined
  }
  // Frames as text or as bytes: dropped once the response is gone.
  const send = (frames: string | Uint8Array) => {
    if (res.destroyed || res.writableEnded) return true
    if (corked === undefined && res.socket !== null) {
      corked = res.socket
      res.socket.cork()
      setImmediate(uncork)
    }
    return res.write(frames)
  }
  const writer = x.protocol!.writer(request, {
    commit: (heldBack) => {
      if (commitTimer !== undefined) clearTimeout(commitTimer)
      if (res.destroyed) return
      res.writeHead(200, ClientStream.headers(requestId, ctx.trace, journaled?.streamId))
      if (heldBack !== "") send(heldBack)
    },
    write: send,
    writeBytes: send
  }, recorder?.events)
  // An upstream slow to start still gets a 200 and a keep-alive after this bound.
  commitTimer = setTimeout(() => {
    writer.commit()
    if (!res.destroyed) res.write(ClientStream.keepAlive)
  }, h.settings.streamCommitTimeoutMs)
  const fiber = h.pipeline.startStream(request, ctx, writer, (resume) => {
    // A response that closes never drains: a generation the client left (detached, journaled)
    // goes on without it, its writes dropped.
    const go = () => {
      res.off("drain", go)
      res.off("close", go)
      resume()
    }
    res.once("drain", go)
    res.once("close", go)
  })
  x.fiber = fiber
  fiber.addObserver((exit) => {
    if (commitTimer !== undefined) clearTimeout(commitTimer)
    const trace = ctx.trace
    const fields = RequestPipeline.traceFields(trace)
    if (detached) fields["detached"] = true
    if (journaled !== undefined) {
      Lifecycle.stopRunning(h.lifecycle, journaled.streamId, running!)
      Lifecycle.release(h.lifecycle, x)
    }
    /** The terminal event, journaled before the journal is closed. */
    let last: { readonly frame: string; readonly seq: number } | undefined
    const terminal = (t: { readonly frame: string; readonly seq: number }) => {
      last = t
      return t.frame
    }
    if (Exit.isSuccess(exit)) {
      const frame = terminal(ClientStream.end(writer, undefined, requestId)!)
      if (!res.destroyed) res.end(frame)
      finish(h, x, 200, fields)
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      if (writer.committed()) {
        // Cancelled, cut after the detach grace, or at shutdown: a reader gets a well-formed end.
        const frame = terminal(writer.close(StreamReconnect.cancelled, requestId))
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
    recorder?.end(last)
  })
}
