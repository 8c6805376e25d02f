// A third-party MCP client doing the whole OAuth dance: the TypeScript MCP SDK's own OAuth client
// (discovery → dynamic registration → authorization code + PKCE → token → tools/call).
// Driven line by line on stdin (JSON commands), answering one JSON line each on stdout:
//   {"cmd":"login","user":"ada"}   sign in as a stand-in test user (the "browser" picks the user, and
//                                  presses Approve on pcref-mcp's consent page, or "consent":"deny");
//                                  "client_metadata_url" makes the client use that CIMD URL as its id
//   {"cmd":"call","user":"ada","tool":"search_referrals","args":{...}}
//                                  (the answer names the access token it went out with: "token_id")
//   {"cmd":"expire","user":"ada"}  the access token stops working, as when it expires: the next call
//                                  gets 401 and the SDK refreshes with its refresh token, then retries
//   {"cmd":"quit"}
// Env: PCREF_TS_SDK = the @modelcontextprotocol/sdk package dir; NODE_EXTRA_CA_CERTS = the
// stand-in's certificate (its sign-in page is https).
import path from 'node:path';
import readline from 'node:readline';

const sdk = process.env.PCREF_TS_SDK;
const { Client } = await import(path.join(sdk, 'dist/esm/client/index.js'));
const { StreamableHTTPClientTransport } = await import(path.join(sdk, 'dist/esm/client/streamableHttp.js'));
const { UnauthorizedError } = await import(path.join(sdk, 'dist/esm/client/auth.js'));

const serverUrl = new URL(process.argv[2]);
const REDIRECT = 'http://127.0.0.1:9/callback'; // never served: the "browser" stops here

class MemoryProvider {
  constructor(metadataUrl) {
    this.client = undefined; this.saved = undefined; this.verifier = undefined; this.authUrl = undefined;
    if (metadataUrl) this.clientMetadataUrl = metadataUrl; // a client ID metadata document instead of registering
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'pcref e2e (TS SDK)', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
             response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  redirectToAuthorization(url) { this.authUrl = url; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
  }
}

// The browser's cookies (one jar: the server and the stand-in are both on 127.0.0.1, and browsers do
// not keep cookies apart by port); pcref-mcp's consent step knows the browser by its cookie.
const jar = new Map();
function keepCookies(res) {
  for (const line of res.headers.getSetCookie?.() ?? []) {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    if (at > 0) jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
  }
}
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
const unescape = (s) => s.replaceAll('&quot;', '"').replaceAll('&#x27;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');

// The person's browser: follow redirects; on the stand-in's sign-in page, click the user's link; on
// pcref-mcp's consent page, press Approve (or Deny). A page with an auto-submitting form
// (response_mode=form_post) is submitted as a browser would.
async function browse(start, user, decision = 'approve') {
  let url = new URL(start);
  let post = undefined;
  for (let hop = 0; hop < 15; hop++) {
    if (url.href.startsWith(REDIRECT)) return url;
    const headers = { cookie: cookieHeader() };
    const res = post
      ? await fetch(url, { method: 'POST', body: post, redirect: 'manual',
                           headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' } })
      : await fetch(url, { redirect: 'manual', headers });
    post = undefined;
    keepCookies(res);
    if (res.status >= 300 && res.status < 400) { url = new URL(res.headers.get('location'), url); continue; }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`sign-in page answered ${res.status}: ${html.slice(0, 200)}`);
    if (html.includes('name="decision"')) { // pcref-mcp's consent page: its own hidden fields + the choice
      const form = html.match(/<form method="post" action="([^"]+)">/);
      const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(m => [m[1], unescape(m[2])]);
      post = new URLSearchParams([...fields, ['decision', decision]]);
      url = new URL(unescape(form[1]), url);
      continue;
    }
    const form = html.match(/<form method="post" action="([^"]+)">(.*?)<\/form>/s);
    if (form) {
      post = new URLSearchParams([...form[2].matchAll(/name="([^"]+)" value="([^"]*)"/g)].map(m => [m[1], m[2]]));
      url = new URL(form[1].replaceAll('&amp;', '&'), url);
      continue;
    }
    const link = [...html.matchAll(/href="([^"]+)"/g)].map(m => m[1].replaceAll('&amp;', '&')).find(h => h.includes(`login=${user}`));
    if (!link) throw new Error(`no sign-in link for ${user}`);
    url = new URL(link, url);
  }
  throw new Error('too many redirects');
}

const sessions = new Map();

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

async function login(user, metadataUrl, decision) {
  const provider = new MemoryProvider(metadataUrl);
  let transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  let client = new Client({ name: `pcref-e2e-${user}`, version: '1.0.0' });
  try {
    await client.connect(transport);
    throw new Error('connected without signing in');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  const back = await browse(provider.authUrl, user, decision);
  if (back.searchParams.get('error')) return { ok: false, error: back.searchParams.get('error') };
  await transport.finishAuth(back.searchParams.get('code'));
  transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  client = new Client({ name: `pcref-e2e-${user}`, version: '1.0.0' });
  await client.connect(transport);
  const tools = await client.listTools();
  sessions.set(user, { client, provider, transport });
  const c = claims(provider.saved.access_token);
  return { ok: true, client_id: provider.client.client_id, tools: tools.tools.map(t => t.name),
           token: { aud: c.aud, oid: c.oid, scp: c.scp }, has_refresh: Boolean(provider.saved.refresh_token),
           refresh_is_opaque: provider.saved.refresh_token ? provider.saved.refresh_token.split('.').length !== 3 : null };
}

// A call the server answers 401 (e.g. a claims challenge) sends the person through sign-in again,
// as a real client would, and is then retried once.
async function call(user, tool, args) {
  const session = sessions.get(user);
  try {
    const result = await session.client.callTool({ name: tool, arguments: args });
    return { ok: true, result, token_id: claims(session.provider.saved.access_token).uti };
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !session.provider.authUrl) throw e;
  }
  const back = await browse(session.provider.authUrl, user);
  session.provider.authUrl = undefined;
  if (back.searchParams.get('error')) return { ok: false, error: back.searchParams.get('error') };
  await session.transport.finishAuth(back.searchParams.get('code'));
  await session.client.close();
  session.transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: session.provider });
  session.client = new Client({ name: `pcref-e2e-${user}`, version: '1.0.0' });
  await session.client.connect(session.transport);
  const result = await session.client.callTool({ name: tool, arguments: args });
  return { ok: true, result, signed_in_again: true, amr: claims(session.provider.saved.access_token).amr };
}

// The server stops accepting the access token (its signature no longer verifies, as an expired one's
// lifetime no longer does); the refresh token is kept, so the SDK's 401 handling refreshes.
function expire(user) {
  const { provider } = sessions.get(user);
  const old = provider.saved;
  const [head, body, signature] = old.access_token.split('.');
  provider.saved = { ...old, access_token: `${head}.${body}.${signature.slice(0, -8)}AAAAAAAA` };
  return { ok: true, token_id: claims(old.access_token).uti, has_refresh: Boolean(old.refresh_token) };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  let answer;
  try {
    if (cmd.cmd === 'login') answer = await login(cmd.user, cmd.client_metadata_url, cmd.consent ?? 'approve');
    else if (cmd.cmd === 'call') answer = await call(cmd.user, cmd.tool, cmd.args ?? {});
    else if (cmd.cmd === 'expire') answer = expire(cmd.user);
    else if (cmd.cmd === 'quit') break;
    else answer = { ok: false, error: `unknown command ${cmd.cmd}` };
  } catch (e) {
    answer = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
for (const { client } of sessions.values()) await client.close();
process.exit(0);
