/**
 * Child processes of the benchmark: started (pinned to a CPU with `taskset` when asked),
 * awaited until they print their ready line, spoken to over IPC, measured through /proc, and
 * always killed — on normal exit, on failure, on SIGINT/SIGTERM.
 */
import { execFileSync, spawn } from "node:child_process"
import { appendFileSync, readFileSync } from "node:fs"

const children = new Set()

const killAll = (signal) => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try { child.kill(signal) } catch { /* already gone */ }
    }
  }
}
process.on("exit", () => killAll("SIGKILL"))
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping children\n`)
    killAll("SIGKILL")
    process.exit(130)
  })
}

/** Whether `taskset` can pin processes here (present, permitted, and more than one CPU). */
export const canPin = (cpus) => {
  if (cpus < 2) return false
  try {
    execFileSync("taskset", ["-c", "0", "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** Pins an already running process (all its threads) to one CPU; best effort. */
export const pinPid = (pid, cpu) => {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/**
 * Starts `node <args>` (under `taskset -c <cpu>` when `cpu` is given) and resolves once a line
 * of its stdout or stderr matches `ready` (the first capture group is returned as `url`).
 */
export const startNode = ({ name, args, cpu, ipc = false, env = {}, ready, timeoutMs = 30_000, cwd }) =>
  new Promise((resolve, reject) => {
    const command = cpu === undefined ? process.execPath : "taskset"
    const argv = cpu === undefined ? args : ["-c", String(cpu), process.execPath, ...args]
    const child = spawn(command, argv, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe", ...(ipc ? ["ipc"] : [])]
    })
    children.add(child)
    const tail = []
    const lineListeners = new Set()
    let settled = false
    const timer = setTimeout(() => fail(new Error(`${name} did not print its ready line within ${timeoutMs} ms`)), timeoutMs)
    const fail = (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill("SIGKILL")
      error.message += tail.length > 0 ? `\n--- last output of ${name} ---\n${tail.join("\n")}` : ""
      reject(error)
    }
    // BENCH_TEE=<dir>: every line a child prints also goes to <dir>/<name>.log (a server's
    // `--trace-gc` under `--node-flags=--trace-gc`, say), not only the last lines kept here.
    const teeFile = process.env.BENCH_TEE === undefined ? undefined : `${process.env.BENCH_TEE}/${name}.log`
    const onData = (data) => {
      if (teeFile !== undefined) appendFileSync(teeFile, data)
      // Always drained (a full pipe would stall the child); only the last lines are kept.
      for (const line of data.toString("utf8").split("\n")) {
        if (line === "") continue
        for (const f of lineListeners) f(line)
        tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line)
        if (tail.length > 40) tail.shift()
        if (!settled) {
          const m = ready.exec(line)
          if (m !== null) {
            settled = true
            clearTimeout(timer)
            resolve(handle(m[1]))
          }
        }
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("error", fail)
    child.once("exit", (code, signal) => {
      children.delete(child)
      fail(new Error(`${name} exited (${signal ?? code}) before it was ready`))
    })

    let nextId = 0
    const pending = new Map()
    if (ipc) {
      child.on("message", (msg) => {
        if (msg.id !== undefined && pending.has(msg.id)) {
          const p = pending.get(msg.id)
          pending.delete(msg.id)
          clearTimeout(p.timer)
          msg.ok ? p.resolve(msg.value) : p.reject(new Error(`${name}: ${msg.error}`))
        } else if (handlers.message !== undefined) {
          handlers.message(msg)
        }
      })
      child.once("exit", () => {
        for (const p of pending.values()) {
          clearTimeout(p.timer)
          p.reject(new Error(`${name} exited with a request in flight\n${tail.join("\n")}`))
        }
        pending.clear()
      })
    }
    const handlers = {}
    const handle = (url) => ({
      name,
      url,
      pid: child.pid,
      child,
      output: () => tail.join("\n"),
      onMessage: (f) => { handlers.message = f },
      send: (msg) => child.send(msg),
      /** One request over IPC, answered `{ id, ok, value | error }`; bounded in time. */
      call: (msg, ms = 60_000) => new Promise((res, rej) => {
        const id = ++nextId
        const t = setTimeout(() => {
          pending.delete(id)
          rej(new Error(`${name}: no answer to ${msg.op ?? msg.job?.kind} within ${ms} ms`))
        }, ms)
        pending.set(id, { resolve: res, reject: rej, timer: t })
        child.send({ ...msg, id })
      }),
      /**
       * After a full GC in the child (SIGUSR2, see orphan-guard.mjs): `{ rss, heapUsed, … }` in
       * bytes, or undefined when the child does not answer within 10 s.
       */
      memory: () => new Promise((res) => {
        const done = (value) => { clearTimeout(t); lineListeners.delete(listen); res(value) }
        const listen = (line) => {
          const m = /^bench-memory (\{.*\})$/.exec(line)
          if (m !== null) done(JSON.parse(m[1]))
        }
        const t = setTimeout(() => done(undefined), 10_000)
        lineListeners.add(listen)
        child.kill("SIGUSR2")
      }),
      alive: () => child.exitCode === null && child.signalCode === null,
      /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
      stop: (graceMs = 5_000) => new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res()
        const k = setTimeout(() => child.kill("SIGKILL"), graceMs)
        child.once("exit", () => { clearTimeout(k); res() })
        child.kill("SIGTERM")
      })
    })
  })

let clockTick
/** User + system CPU time of a process, in milliseconds (from /proc/<pid>/stat). */
export const cpuMs = (pid) => {
  clockTick ??= (() => {
    try { return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100 } catch { return 100 }
  })()
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTick
}

/** Resident set size of a process, in KiB (VmRSS from /proc/<pid>/status). */
export const rssKiB = (pid) => {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? Number.NaN : Number(m[1])
}

/** CPU time all processes of the machine spent busy (not idle, not iowait), in milliseconds. */
export const machineBusyMs = () => {
  clockTick ??= 100
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]
  const t = line.trim().split(/\s+/).slice(1).map(Number)
  const total = t.reduce((a, b) => a + b, 0)
  return ((total - t[3] - (t[4] ?? 0)) * 1000) / clockTick
}
