/**
 * The runtime a host runs requests on, built once: Effect's log lines (from every policy) and
 * the host's own request lines go to one sink as JSON, with every provider key scrubbed.
 *
 * @since 0.1.0
 */
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scheduler from "effect/Scheduler"
import { scrub } from "./ClientApi.js"
import * as FiberRoots from "./internal/fiberRoots.js"

/**
 * A log line sink (one JSON-ready record per call).
 *
 * @since 0.1.0
 * @category models
 */
export type LogSink = (line: Record<string, unknown>) => void

/**
 * Log levels a host accepts.
 *
 * @since 0.1.0
 * @category models
 */
export type Level = "debug" | "info" | "warning" | "error" | "none"

const levels: Record<Level, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
}

/**
 * One JSON object per line on stdout.
 *
 * @since 0.1.0
 * @category sinks
 */
export const stdoutSink: LogSink = (line) => {
  process.stdout.write(JSON.stringify(line) + "\n")
}

/**
 * Effect's default scheduler runs fibers in microtask batches and, after 2,048 of them in a
 * row, yields to the event loop with `setTimeout(0)`, which Node clamps to at least 1 ms: under
 * load every such yield parks all ready fibers (and the sockets they would answer) for a
 * millisecond. This one yields with `setImmediate`, which runs right after pending I/O.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hostScheduler = (maxMicrotasksBeforeYield = 2048): Scheduler.Scheduler => {
  const runner = new Scheduler.SchedulerRunner((depth, drain) => {
    if (depth >= maxMicrotasksBeforeYield) setImmediate(() => drain(0))
    else Promise.resolve(undefined).then(() => drain(depth + 1))
  })
  const fallback = Scheduler.defaultScheduler
  return {
    scheduleTask: (task, priority) => runner.scheduleTask(task, priority),
    shouldYield: (fiber) => fallback.shouldYield(fiber)
  }
}

/**
 * A host's runtime and its scrubbing log function.
 *
 * @since 0.1.0
 * @category models
 */
export interface HostRuntime {
  readonly runtime: ManagedRuntime.ManagedRuntime<never, never>
  /** Logs a line (scrubbed) if `level` is enabled. */
  readonly log: (level: Exclude<Level, "none">, line: Record<string, unknown>) => void
  readonly enabled: (level: Exclude<Level, "none">) => boolean
}

/**
 * Builds a host runtime. The first call also gives Effect's global registry of root fibers (each
 * request is one) a structure that does not keep finished fibers alive through young-generation
 * garbage collections; `Fiber.roots` is unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: { readonly sink?: LogSink | undefined; readonly level?: Level | undefined; readonly secrets: ReadonlyArray<string> }): HostRuntime => {
  // Each request is a root fiber: keep finished ones from being pinned by Effect's root set.
  FiberRoots.install()
  const sink = options.sink ?? stdoutSink
  const min = levels[options.level ?? "info"]
  const emit = (line: Record<string, unknown>) => {
    const text = JSON.stringify(line)
    const clean = scrub(text, options.secrets)
    sink(clean === text ? line : JSON.parse(clean))
  }
  const jsonLogger = Logger.make<unknown, void>(({ annotations, date, logLevel, message }) => {
    const line: Record<string, unknown> = {
      level: logLevel.label.toLowerCase(),
      time: date.toISOString(),
      msg: Array.isArray(message) ? message.map(String).join(" ") : String(message)
    }
    for (const [k, v] of HashMap.toEntries(annotations)) line[k] = v
    emit(line)
  })
  const runtime = ManagedRuntime.make(Layer.mergeAll(
    Logger.replace(Logger.defaultLogger, jsonLogger),
    Logger.minimumLogLevel(min),
    Layer.setScheduler(hostScheduler())
  ))
  const enabled = (level: Exclude<Level, "none">) => levels[level].ordinal >= min.ordinal
  return {
    runtime,
    enabled,
    log: (level, line) => {
      if (enabled(level)) emit({ level, time: new Date().toISOString(), ...line })
    }
  }
}
