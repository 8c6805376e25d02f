// A second, independent MCP client for the end-to-end suite: the official TypeScript SDK.
//
//   node ts_client.mjs <sdk> <era> <answer> stdio <command> [args...]
//   node ts_client.mjs <sdk> <era> <answer> http <url>
//
// sdk:    v1 (@modelcontextprotocol/sdk, 2025 era only) | v2 (@modelcontextprotocol/client)
// era:    legacy (2025-11-25 handshake) | modern (2026-07-28, input-required rounds)
// answer: accept | reject (accept with approve=false) | decline | cancel | none (no elicitation capability)
//
// Reads one JSON object on stdin: {"calls": [{"tool": name, "arguments": {...}}, ...]}. Lists the
// tools first (so both SDKs validate structured output against outputSchema), makes the calls in
// order, and prints one JSON line: {"protocol": ..., "asked": [messages], "results": [...]}.
// A call may set "confirm_from": i to pass the confirm_token returned by call i, and
// "referral_from": i to take referral_id from the first row call i found.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.PCREF_TOOLS_DIR ?? process.cwd(), "package.json"));
const [sdk, era, answer, transportKind, ...target] = process.argv.slice(2);
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
const capabilities = answer === "none" ? {} : { elicitation: { form: {} } };
const options = { capabilities };
if (sdk === "v2") options.versionNegotiation = { mode: era === "modern" ? { pin: "2026-07-28" } : "legacy" };
const client = new Client({ name: `pcref-e2e-ts-${sdk}`, version: "1.0.0" }, options);

const asked = [];
if (answer !== "none") {
  client.setRequestHandler(elicit, async (request) => {
    asked.push(request.params.message);
    if (answer === "accept") return { action: "accept", content: { approve: true } };
    if (answer === "reject") return { action: "accept", content: { approve: false } };
    return { action: answer };
  });
}

const transport =
  transportKind === "stdio"
    ? new StdioClientTransport({ command: target[0], args: target.slice(1), env: process.env, stderr: "ignore" })
    : new StreamableHTTPClientTransport(new URL(target[0]));

const out = { protocol: null, asked, results: [] };
try {
  await client.connect(transport);
  out.protocol = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
  await client.listTools();
  for (const call of input.calls ?? []) {
    const args = { ...call.arguments };
    if (call.referral_from !== undefined) {
      args.referral_id = out.results[call.referral_from]?.structuredContent?.rows?.[0]?.id;
    }
    if (call.confirm_from !== undefined) {
      args.confirm_token = out.results[call.confirm_from]?.structuredContent?.confirm_token;
    }
    try {
      const result = await client.callTool({ name: call.tool, arguments: args });
      out.results.push({ isError: !!result.isError, structuredContent: result.structuredContent ?? null,
        text: result.content?.[0]?.text ?? null });
    } catch (error) {
      out.results.push({ error: { code: error.code ?? null, message: String(error.message ?? error) } });
    }
  }
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
