/**
 * A route target's (upstream, model) pair, resolved the same way by config validation and by
 * the builder: the target's own `model`, else the upstream's model map, else the client's name.
 */
export interface TargetInput {
  readonly upstream: string
  readonly model?: string | undefined
}

export const upstreamOf = (target: string | TargetInput): string => typeof target === "string" ? target : target.upstream

export const modelOf = (
  clientModel: string,
  target: string | TargetInput,
  models: ReadonlyArray<string> | Readonly<Record<string, string>> | undefined
): string => {
  if (typeof target !== "string" && target.model !== undefined) return target.model
  if (models !== undefined && !Array.isArray(models)) return (models as Readonly<Record<string, string>>)[clientModel] ?? clientModel
  return clientModel
}
