import { ChatCompletion, StreamCommit } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"

type Chunk = ChatCompletion.ChatCompletionChunk
type Delta = Chunk["choices"][number]["delta"]

const chunk = (delta: Delta, finish: string | null = null, index = 0): Chunk => ({
  id: "c",
  object: "chat.completion.chunk",
  created: 0,
  model: "m",
  choices: [{ index, delta, finish_reason: finish }]
})
const twoChoices = (second: Chunk["choices"][number]): Chunk => ({ ...chunk({ role: "assistant" }), choices: [chunk({}).choices[0]!, second] })
const beat = ChatCompletion.heartbeat("c", "m", 0)
const role = chunk({ role: "assistant", content: "" })
const usage: Chunk = { ...beat, usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }

describe("StreamCommit", () => {
  it("content, a refusal, a tool-call fragment and a finish (on any choice) commit a stream", () => {
    expect(StreamCommit.commits(chunk({ content: "Hi" }))).toBe(true)
    expect(StreamCommit.commits(chunk({ refusal: "no" }))).toBe(true)
    expect(StreamCommit.commits(chunk({ tool_calls: [{ index: 0, function: { arguments: "{" } }] }))).toBe(true)
    expect(StreamCommit.commits(chunk({}, "stop"))).toBe(true)
    expect(StreamCommit.commits(twoChoices({ index: 1, delta: {}, finish_reason: "length" }))).toBe(true)
    expect(StreamCommit.commits(twoChoices({ index: 1, delta: { content: "x" }, finish_reason: null }))).toBe(true)
  })

  it("a heartbeat, the preamble (a role-only delta, empty content) and usage do not", () => {
    expect(StreamCommit.commits(usage)).toBe(false)
    expect(StreamCommit.commits({ ...role, usage: usage.usage })).toBe(false)
    expect(StreamCommit.commits(beat)).toBe(false)
    expect(StreamCommit.commits(role)).toBe(false)
    expect(StreamCommit.commits(chunk({ content: null, refusal: "" }))).toBe(false)
  })

  it("firstCommit: the index of the first chunk of a batch that commits, -1 for none", () => {
    expect(StreamCommit.firstCommit([])).toBe(-1)
    expect(StreamCommit.firstCommit([beat, role, beat])).toBe(-1)
    expect(StreamCommit.firstCommit([beat, role, chunk({}, "stop"), chunk({ content: "a" })])).toBe(2)
    expect(StreamCommit.firstCommit([role, usage, chunk({ content: "a" })])).toBe(2)
  })
})

describe("ChatCompletion.firstContent", () => {
  it("the index of the first chunk with content; a finish or usage is not content", () => {
    expect(ChatCompletion.firstContent([])).toBe(-1)
    expect(ChatCompletion.firstContent([beat, role, chunk({}, "stop"), usage])).toBe(-1)
    expect(ChatCompletion.firstContent([role, beat, chunk({ tool_calls: [{ index: 0 }] }), chunk({ content: "a" })])).toBe(2)
  })
})
