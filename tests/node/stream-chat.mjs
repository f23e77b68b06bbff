// Streams one chat completion from a Strata gateway with the official openai npm client and prints one JSON line:
// {"text": ..., "finish_reason": ..., "usage": {...}, "chunks": N}. Exit code 1 (and the error on stderr) on failure.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 OPENAI_API_KEY=KEY node stream-chat.mjs MODEL PROMPT MAX_TOKENS
import OpenAI from "openai";

const [model, prompt, maxTokens] = process.argv.slice(2);
const client = new OpenAI({ timeout: 60_000, maxRetries: 2 });
try {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: Number(maxTokens),
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  console.log(JSON.stringify({ text, finish_reason: finish, usage, chunks }));
} catch (e) {
  console.error(`openai client error: ${e.status ?? ""} ${e.message}`);
  process.exit(1);
}
