// A real OpenID provider (the certified `oidc-provider` package) for Portcullis' end-to-end
// tests. Started by tests/src/oidc_provider.rs; listens on 127.0.0.1 only.
//
//   node provider.mjs [--port N] [--audience portcullis]
//
// Prints one line `oidc-provider listening on http://127.0.0.1:PORT` to standard output once
// bound (the issuer is exactly that URL). It issues RS256-signed JWT access tokens (typ
// `at+jwt`) whose `aud` is the audience, with `preferred_username` and `groups` claims, to:
//   - client `portcullis` / `portcullis-secret`: client_credentials and password grants,
//     tokens valid 10 minutes;
//   - client `portcullis-short` / `short-secret`: client_credentials, tokens valid 2 seconds.
// Users of the password grant: see USERS below.
//
// A Provider's keys are fixed for its lifetime, so a rotation builds a new Provider behind the
// same port. Control endpoints (not part of the provider):
//   POST /__control/rotate    new signing key first, previous keys still published -> {kid, kids}
//   POST /__control/drop-old  only the newest key published                       -> {kid, kids}
//   GET  /__control/stats     requests per path since start                        -> {requests}

import { createServer } from 'node:http';
import { createPrivateKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';

function argument(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const HOST = '127.0.0.1';
const PORT = Number(argument('port', '0'));
const AUDIENCE = argument('audience', 'portcullis');
// The resource indicator every token is issued for (clients never send `resource`).
const RESOURCE = 'urn:portcullis:api';
const SHORT_CLIENT = 'portcullis-short';

// Password-grant users: password, then the groups claim.
const USERS = {
  alice: { password: 'alice-password', groups: ['admins', 'staff'] },
  bob: { password: 'bob-password', groups: ['readers'] },
};

// The username and groups a client-credentials token carries, per client.
const SERVICE_ACCOUNTS = {
  portcullis: { username: 'svc-portcullis', groups: ['services'] },
  [SHORT_CLIENT]: { username: 'svc-short', groups: ['services', 'short-lived'] },
};

const CLIENTS = [
  {
    client_id: 'portcullis',
    client_secret: 'portcullis-secret',
    grant_types: ['client_credentials', 'password'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: SHORT_CLIENT,
    client_secret: 'short-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// Signing keys come from files (keys/README.md says why they are not generated here), one per
// start or rotation, each under a new random kid.
const KEY_FILES = ['signing-1.pem', 'signing-2.pem', 'signing-3.pem', 'signing-4.pem'];
let keysUsed = 0;

function newSigningKey() {
  if (keysUsed === KEY_FILES.length) {
    throw new Error(`all ${KEY_FILES.length} signing keys in keys/ are used: add another PEM`);
  }
  const pem = readFileSync(new URL(`keys/${KEY_FILES[keysUsed]}`, import.meta.url));
  keysUsed += 1;
  const jwk = createPrivateKey(pem).export({ format: 'jwk' });
  return { ...jwk, kid: `k-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function sameSecret(given, expected) {
  const a = Buffer.from(String(given ?? ''));
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function resourceServerInfo(client) {
  return {
    scope: 'api',
    audience: AUDIENCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: client?.clientId === SHORT_CLIENT ? 2 : 600,
    // keys[0] is always the newest key: sign with it by name.
    jwt: { sign: { alg: 'RS256', kid: keys[0].kid } },
  };
}

// The password grant (RFC 6749 §4.3) is not built in: registered below on each Provider.
async function passwordGrant(ctx) {
  const { client, params, provider } = ctx.oidc;
  const user = Object.hasOwn(USERS, params.username) ? USERS[params.username] : undefined;
  if (!user || !sameSecret(params.password, user.password)) {
    throw new errors.InvalidGrant('invalid username or password');
  }
  const resourceServer = new provider.ResourceServer(RESOURCE, resourceServerInfo(client));
  const token = new provider.AccessToken({
    accountId: params.username,
    client,
    gty: 'password',
    scope: 'api',
    resourceServer,
  });
  const value = await token.save();
  ctx.body = {
    access_token: value,
    expires_in: token.expiration,
    token_type: token.tokenType,
    scope: token.scope,
  };
}

function buildProvider(issuer, signingKeys) {
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    jwks: { keys: signingKeys },
    scopes: ['openid', 'api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, _indicator, client) => resourceServerInfo(client),
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const account = token.accountId
        ? { username: token.accountId, groups: USERS[token.accountId]?.groups ?? [] }
        : SERVICE_ACCOUNTS[token.clientId];
      if (!account) return undefined;
      return { preferred_username: account.username, groups: account.groups };
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
  });
  provider.registerGrantType('password', passwordGrant, ['username', 'password', 'scope']);
  // Token-endpoint errors are expected in tests (wrong passwords); keep them off stderr noise.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  return provider;
}

// keys[0] signs; the rest are still published.
let keys = [newSigningKey()];
let issuer;
let current;
let handler;
const requests = {};

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function control(req, res, path) {
  if (req.method === 'POST' && path === '/__control/rotate') {
    try {
      keys = [newSigningKey(), ...keys];
    } catch (err) {
      return json(res, 500, { error: err.message });
    }
  } else if (req.method === 'POST' && path === '/__control/drop-old') {
    keys = [keys[0]];
  } else if (req.method === 'GET' && path === '/__control/stats') {
    return json(res, 200, { requests });
  } else {
    return json(res, 404, { error: 'unknown control endpoint' });
  }
  current = buildProvider(issuer, keys);
  handler = current.callback();
  return json(res, 200, { kid: keys[0].kid, kids: keys.map((k) => k.kid) });
}

const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (path.startsWith('/__control/')) {
    control(req, res, path);
    return;
  }
  requests[path] = (requests[path] ?? 0) + 1;
  // Each request goes to the Provider current when it arrives.
  handler(req, res);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  issuer = `http://${HOST}:${port}`;
  current = buildProvider(issuer, keys);
  handler = current.callback();
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
