// A second, independent MCP client for the end-to-end suite: the official TypeScript SDK.
//
//   node ts_client.mjs <sdk> <era> stdio <command> [args...]
//   node ts_client.mjs <sdk> <era> http <url>
//
// sdk:    v1 (@modelcontextprotocol/sdk, 2025 era only) | v2 (@modelcontextprotocol/client)
// era:    legacy (2025-11-25 handshake) | modern (2026-07-28, input-required rounds)
//
// Reads one JSON object on stdin: {"scenarios": [{"name": ..., "answer": ..., "calls": [...]}, ...]},
// answer: accept | reject (accept with approve=false) | decline | cancel | none (no elicitation capability),
// each call {"tool": name, "arguments": {...}}. One process runs them all, so the SDK loads once: the
// scenarios that answer elicitation share one connection (the handler answers as the scenario being run
// says, and records what it was asked for that scenario alone), those with "none" a second one without
// the capability (over stdio each connection spawns its own server); the connections run one after
// the other, the scenarios in order. Each connection lists the tools first (so both SDKs validate
// structured output against outputSchema), then makes each scenario's calls in order. A call may set
// "confirm_from": i to pass the confirm_token returned by the scenario's call i, and "referral_from": i
// to take referral_id from the first row its call i found.
//
// Prints one JSON line: {name: {"protocol": ..., "asked": [messages], "results": [...]}, ...}; a
// scenario whose connection failed has {"failure": message} instead, and the others still run.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.PCREF_TOOLS_DIR ?? process.cwd(), "package.json"));
const [sdk, era, transportKind, ...target] = process.argv.slice(2);
const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text || "{}"));
}));

async function load() {
  if (sdk === "v1") {
    const { Client } = await import(require.resolve("@modelcontextprotocol/sdk/client/index.js"));
    const { StdioClientTransport } = await import(require.resolve("@modelcontextprotocol/sdk/client/stdio.js"));
    const { StreamableHTTPClientTransport } = await import(
      require.resolve("@modelcontextprotocol/sdk/client/streamableHttp.js")
    );
    const { ElicitRequestSchema } = await import(require.resolve("@modelcontextprotocol/sdk/types.js"));
    return { Client, StdioClientTransport, StreamableHTTPClientTransport, elicit: ElicitRequestSchema };
  }
  const client = await import(require.resolve("@modelcontextprotocol/client"));
  const stdio = await import(require.resolve("@modelcontextprotocol/client/stdio"));
  return {
    Client: client.Client,
    StdioClientTransport: stdio.StdioClientTransport,
    StreamableHTTPClientTransport: client.StreamableHTTPClientTransport,
    elicit: "elicitation/create",
  };
}

const { Client, StdioClientTransport, StreamableHTTPClientTransport, elicit } = await load();

async function runCalls(client, calls, outcome) {
  for (const call of calls ?? []) {
    const args = { ...call.arguments };
    if (call.referral_from !== undefined) {
      args.referral_id = outcome.results[call.referral_from]?.structuredContent?.rows?.[0]?.id;
    }
    if (call.confirm_from !== undefined) {
      args.confirm_token = outcome.results[call.confirm_from]?.structuredContent?.confirm_token;
    }
    try {
      const result = await client.callTool({ name: call.tool, arguments: args });
      outcome.results.push({ isError: !!result.isError, structuredContent: result.structuredContent ?? null,
        text: result.content?.[0]?.text ?? null });
    } catch (error) {
      outcome.results.push({ error: { code: error.code ?? null, message: String(error.message ?? error) } });
    }
  }
}

// One connection: a client with the elicitation capability or without, the given scenarios in order.
async function runConnection(elicits, scenarios, out) {
  const options = { capabilities: elicits ? { elicitation: { form: {} } } : {} };
  if (sdk === "v2") options.versionNegotiation = { mode: era === "modern" ? { pin: "2026-07-28" } : "legacy" };
  const client = new Client({ name: `pcref-e2e-ts-${sdk}`, version: "1.0.0" }, options);

  let current = null; // the scenario being run: {answer, outcome}
  if (elicits) {
    client.setRequestHandler(elicit, async (request) => {
      if (current === null) throw new Error("asked between scenarios");
      current.outcome.asked.push(request.params.message);
      const answer = current.answer;
      if (answer === "accept") return { action: "accept", content: { approve: true } };
      if (answer === "reject") return { action: "accept", content: { approve: false } };
      return { action: answer };
    });
  }

  const transport =
    transportKind === "stdio"
      ? new StdioClientTransport({ command: target[0], args: target.slice(1), env: process.env, stderr: "ignore" })
      : new StreamableHTTPClientTransport(new URL(target[0]));

  try {
    await client.connect(transport);
    const protocol = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
    await client.listTools();
    for (const scenario of scenarios) {
      const outcome = { protocol, asked: [], results: [] };
      current = { answer: scenario.answer, outcome };
      await runCalls(client, scenario.calls, outcome);
      current = null;
      out[scenario.name] = outcome;
    }
  } catch (error) {
    for (const scenario of scenarios) {
      if (!(scenario.name in out)) out[scenario.name] = { failure: String(error?.stack ?? error) };
    }
  } finally {
    await client.close().catch(() => {});
  }
}

const scenarios = input.scenarios ?? [];
const out = {};
for (const elicits of [true, false]) {
  const own = scenarios.filter((s) => (s.answer !== "none") === elicits);
  if (own.length) await runConnection(elicits, own, out);
}
process.stdout.write(JSON.stringify(out) + "\n");
