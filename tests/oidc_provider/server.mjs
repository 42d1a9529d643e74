// A real OpenID provider (npm oidc-provider) for Hearthgate's identity tests.
//
// Usage: node server.mjs PORT REDIRECT_URI CLIENT_SECRET
// Besides the standard endpoints it serves a few test-only routes under /test/:
//   POST /test/rotate          new signing key (new kid) first, previous ones kept; no restart
//   POST /test/sign            {header, payload} signed with the current private key (RS256),
//                              for negative cases that need a genuine provider signature
//   POST /test/jwks-max-age    {maxAge} for the JWKS response's Cache-Control
//   GET  /test/stats           how often the JWKS and discovery documents were fetched
// Interactions complete by themselves: login as the authorize request's login_hint, consent to
// every requested scope, so the code flow can be driven by an HTTP client with a cookie jar.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const CLIENT_ID = 'hearthgate';
const TEST_GRANT = 'urn:hearthgate:test:id-token';

const keys = [];
const stats = { jwks: 0, discovery: 0 };
let jwksMaxAge = 300;

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { privateKey, jwk: { ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' } };
}

const accountClaims = (id) => ({
  sub: id,
  email: `${id}@example.test`,
  email_verified: true,
  name: id.charAt(0).toUpperCase() + id.slice(1),
});

function build() {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', TEST_GRANT],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: keys.map((k) => k.jwk) },
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => accountClaims(id) }),
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    cookies: { keys: ['hearthgate-test-provider-cookie-key'] },
    ttl: { IdToken: 3600 },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.registerGrantType(TEST_GRANT, async (ctx) => {
    const { account, nonce } = ctx.oidc.params;
    const token = new provider.IdToken(accountClaims(account || 'alice'), { ctx });
    token.scope = 'openid email profile';
    if (nonce) token.set('nonce', nonce);
    ctx.body = { id_token: await token.issue({ use: 'idtoken' }) };
  }, ['account', 'nonce']);
  return provider;
}

keys.push(newKey());
let provider = build();

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    const accountId = params.login_hint || 'alice';
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

const b64url = (value) => Buffer.from(value).toString('base64url');

async function sign(req, res) {
  const { header, payload } = JSON.parse(await readBody(req));
  const key = keys[0];
  const fullHeader = { alg: 'RS256', kid: key.jwk.kid, ...header };
  const input = `${b64url(JSON.stringify(fullHeader))}.${b64url(JSON.stringify(payload))}`;
  const signature = crypto.sign('sha256', Buffer.from(input), key.privateKey).toString('base64url');
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ token: `${input}.${signature}`, kid: key.jwk.kid, issuer }));
}

const server = http.createServer(async (req, res) => {
  try {
    const path = req.url.split('?')[0];
    if (path === '/test/rotate' && req.method === 'POST') {
      keys.unshift(newKey());
      provider = build();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: keys[0].jwk.kid }));
      return;
    }
    if (path === '/test/sign' && req.method === 'POST') {
      await sign(req, res);
      return;
    }
    if (path === '/test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    if (path.startsWith('/interaction/')) {
      await interaction(req, res);
      return;
    }
    if (path === '/test/jwks-max-age' && req.method === 'POST') {
      jwksMaxAge = Number(JSON.parse(await readBody(req)).maxAge);
      res.writeHead(204);
      res.end();
      return;
    }
    if (path === '/jwks') {
      stats.jwks += 1;
      res.setHeader('Cache-Control', `public, max-age=${jwksMaxAge}`);
    }
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    provider.callback()(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(err));
  }
});

server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
