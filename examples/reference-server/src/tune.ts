/**
 * Imported first by `main.ts`, so V8 is tuned before any other module's code runs (see
 * `HostRuntime.tuneGarbageCollector`).
 */
import { HostRuntime } from "@breakwater/gateway"

HostRuntime.tuneGarbageCollector()
