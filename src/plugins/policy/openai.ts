import { Effect } from "effect"
import sharp from "sharp"
import { PolicyError, type PolicyInput, type PolicyService } from "../../core/policy.ts"
import { textSetting } from "../../core/settings.ts"

/**
 * Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, a hosted API) as a policy, for
 * evaluation only: it gets the chat with the grid image inline (base64 PNG) and its reply is
 * parsed like any other output. Requests are retried with exponential backoff and run at most
 * `concurrency` at a time; an endpoint that cannot be reached fails with the URL named.
 */
export interface OpenAiOptions {
  readonly baseUrl: string
  readonly model: string
  readonly apiKey?: string
  readonly concurrency: number
  readonly retries: number
  readonly timeoutMs: number
  readonly backoffMs: number
  readonly maxTokens: number
}

export const defaultOpenAiOptions = (model: string, baseUrl = textSetting("OPENAI_BASE_URL") ?? "https://api.openai.com/v1"): OpenAiOptions => ({
  baseUrl,
  model,
  ...(textSetting("OPENAI_API_KEY") === undefined ? {} : { apiKey: textSetting("OPENAI_API_KEY")! }),
  concurrency: 4,
  retries: 4,
  timeoutMs: 120_000,
  backoffMs: 1_000,
  maxTokens: 512
})

const pngDataUrl = async (image: NonNullable<PolicyInput["image"]>): Promise<string> => {
  const png = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer()
  return `data:image/png;base64,${png.toString("base64")}`
}

const messages = async (input: PolicyInput) => {
  const image = input.image === null ? undefined : await pngDataUrl(input.image)
  return input.chat.map((turn) => ({
    role: turn.role,
    content: turn.content.flatMap((part): Array<Record<string, unknown>> =>
      part.type === "text" ? [{ type: "text", text: part.text }] : image === undefined ? [] : [{ type: "image_url", image_url: { url: image } }]
    )
  }))
}

export const make = (options: OpenAiOptions): PolicyService => {
  const url = `${options.baseUrl.replace(/\/$/, "")}/chat/completions`
  const ask = async (input: PolicyInput, temperature: number): Promise<string> => {
    const body = JSON.stringify({ model: options.model, messages: await messages(input), temperature, max_tokens: options.maxTokens })
    let lastError = ""
    for (let attempt = 0; attempt <= options.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, options.backoffMs * 2 ** (attempt - 1)))
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }) },
          body,
          signal: AbortSignal.timeout(options.timeoutMs)
        })
        if (response.status === 429 || response.status >= 500) {
          lastError = `HTTP ${response.status}`
          continue
        }
        if (!response.ok) throw new PolicyError({ message: `${url}: HTTP ${response.status}: ${(await response.text()).slice(0, 300)}` })
        const json = (await response.json()) as { choices?: Array<{ message?: { content?: unknown } }> }
        const content = json.choices?.[0]?.message?.content
        return typeof content === "string" ? content : ""
      } catch (e) {
        if (e instanceof PolicyError) throw e
        lastError = (e as Error).cause instanceof Error ? `${(e as Error).message}: ${((e as Error).cause as Error).message}` : (e as Error).message
      }
    }
    throw new PolicyError({ message: `${url} unreachable after ${options.retries + 1} attempts (${lastError})` })
  }
  return {
    name: `openai:${options.model}`,
    act: (inputs, act) =>
      Effect.forEach(
        inputs,
        (input) =>
          Effect.tryPromise({
            try: () => ask(input, act.greedy ? 0 : act.temperature),
            catch: (e) => (e instanceof PolicyError ? e : new PolicyError({ message: String(e) }))
          }).pipe(Effect.map((text) => ({ text, logProb: 0, value: 0 }))),
        { concurrency: options.concurrency }
      )
  }
}
