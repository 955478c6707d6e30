// A real OpenID Provider for DocketOps' tests: panva's oidc-provider (OpenID-certified) with a fixed set of test
// accounts, two clients, a tiny login form that checks passwords, and automatic consent.
//
// Started by scripts/oidc-testenv (which installs oidc-provider into a cache directory outside the work tree and
// passes its node_modules in OIDC_NODE_MODULES). Not for production use: plain HTTP issuer, in-memory storage,
// passwords in this file. Configuration (environment):
//
//   OIDC_PORT                            port to listen on, on 127.0.0.1 (required)
//   OIDC_ISSUER                          issuer (default http://127.0.0.1:$OIDC_PORT)
//   OIDC_NODE_MODULES                    node_modules directory holding oidc-provider (required)
//   OIDC_JWKS_FILE                       signing keys (JWKS with private parts); made (RSA 2048, RS256) if missing
//   OIDC_COOKIE_KEYS                     comma-separated keys to sign cookies (default: random per start)
//   OIDC_DASHBOARD_CLIENT_ID             default docketops-dashboard
//   OIDC_DASHBOARD_CLIENT_SECRET         required
//   OIDC_DASHBOARD_REDIRECT_URIS         comma-separated registered redirect URIs
//                                        (default http://127.0.0.1:8080/auth/oidc/callback)
//   OIDC_DASHBOARD_REDIRECT_URI_PATTERNS comma-separated patterns also accepted for the dashboard, where `*` stands for
//                                        a port number (default http://127.0.0.1:*/auth/oidc/callback,
//                                        http://localhost:*/auth/oidc/callback); empty string: none
//   OIDC_CLI_CLIENT_ID                   default docketops-cli
//   OIDC_CLI_REDIRECT_URI                default http://127.0.0.1:9/callback
//   OIDC_ID_TOKEN_TTL                    ID token lifetime in seconds (default 3600)
//   OIDC_ACCESS_TOKEN_TTL                access token lifetime in seconds (default 3600)
//   OIDC_SESSION_TTL                     provider session (SSO cookie) lifetime in seconds (default 86400)
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

function env(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

function envInt(name, fallback) {
  const v = env(name, undefined);
  if (v === undefined) return fallback;
  const n = Number.parseInt(v, 10);
  if (!Number.isInteger(n) || n <= 0 || String(n) !== v.trim()) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

function list(value) {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

const port = envInt('OIDC_PORT', undefined);
if (!port) throw new Error('OIDC_PORT is required');
const modules = env('OIDC_NODE_MODULES', undefined);
if (!modules) throw new Error('OIDC_NODE_MODULES is required (the node_modules directory holding oidc-provider)');
const issuer = env('OIDC_ISSUER', `http://127.0.0.1:${port}`);

// oidc-provider is ESM with a plain "main": resolve it from the cache directory's node_modules (bare ESM imports do
// not look at NODE_PATH, and this file lives in the work tree, away from node_modules).
const requireFromCache = createRequire(join(modules, '..', 'package.json'));
const { default: Provider, errors } = await import(pathToFileURL(requireFromCache.resolve('oidc-provider')).href);
const { version: providerVersion } = requireFromCache('oidc-provider/package.json');

// ---------------------------------------------------------------------------------------------------------------
// Accounts: the same people and groups as scripts/ldap-testenv. Password for everyone: "secret".

const PASSWORD = 'secret';
const ACCOUNTS = {
  alice: { name: 'Alice Anderson', email: 'alice@docketops.test', groups: ['platform-admins'] },
  bob: { name: 'Bob Brown', email: 'bob@docketops.test', groups: ['approvers', 'auditors'] },
  carol: { name: 'Carol Clark', email: 'carol@docketops.test', groups: ['developers'] },
  mallory: { name: 'Mallory Moore', email: 'mallory@docketops.test', groups: [] },
};

function accountFor(id) {
  if (!Object.hasOwn(ACCOUNTS, id)) return undefined;
  const a = ACCOUNTS[id];
  return {
    accountId: id,
    async claims() {
      // oidc-provider keeps only the claims that the granted scopes (or the claims parameter) allow.
      return {
        sub: id,
        name: a.name,
        preferred_username: id,
        email: a.email,
        email_verified: true,
        groups: [...a.groups],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Signing keys: one RSA key (RS256), kept in a file so that restarts keep the same JWKS.

function loadOrMakeJwks(file) {
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `docketops-test-${randomUUID().slice(0, 8)}`, use: 'sig', alg: 'RS256' };
  const jwks = { keys: [jwk] };
  if (file) {
    writeFileSync(`${file}.tmp`, JSON.stringify(jwks), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
  return jwks;
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

const dashboardId = env('OIDC_DASHBOARD_CLIENT_ID', 'docketops-dashboard');
const dashboardSecret = env('OIDC_DASHBOARD_CLIENT_SECRET', undefined);
if (!dashboardSecret) throw new Error('OIDC_DASHBOARD_CLIENT_SECRET is required');
const dashboardRedirects = list(env('OIDC_DASHBOARD_REDIRECT_URIS', 'http://127.0.0.1:8080/auth/oidc/callback'));
const dashboardPatterns = list(process.env.OIDC_DASHBOARD_REDIRECT_URI_PATTERNS
  ?? 'http://127.0.0.1:*/auth/oidc/callback,http://localhost:*/auth/oidc/callback')
  .map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('[0-9]{1,5}')}$`));
const cliId = env('OIDC_CLI_CLIENT_ID', 'docketops-cli');
const cliRedirect = env('OIDC_CLI_REDIRECT_URI', 'http://127.0.0.1:9/callback');

const clients = [
  {
    // Confidential web client (the gateway's dashboard): client_secret_basic AND PKCE (S256).
    client_id: dashboardId,
    client_secret: dashboardSecret,
    client_name: 'DocketOps dashboard (test)',
    application_type: 'web',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: dashboardRedirects,
    id_token_signed_response_alg: 'RS256',
  },
  {
    // Public native client (the CLI): no secret, PKCE (S256). Being "native", its http loopback redirect URI also
    // matches on any port (RFC 8252 section 7.3, built into oidc-provider).
    client_id: cliId,
    client_name: 'DocketOps CLI (test)',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [cliRedirect],
    id_token_signed_response_alg: 'RS256',
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Provider

const ttl = (seconds) => () => seconds;
const configuration = {
  clients,
  jwks: loadOrMakeJwks(env('OIDC_JWKS_FILE', undefined)),
  cookies: { keys: process.env.OIDC_COOKIE_KEYS ? list(process.env.OIDC_COOKIE_KEYS) : [randomBytes(32).toString('base64url')] },
  findAccount: async (_ctx, sub) => accountFor(sub),
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put the claims of the granted scopes into the ID token itself (not only into /userinfo), so the relying party
  // reads groups, email, name and preferred_username straight from the ID token.
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // every client, every authorization request; oidc-provider only knows S256
  features: {
    devInteractions: { enabled: false }, // our own login form below checks passwords
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    IdToken: ttl(envInt('OIDC_ID_TOKEN_TTL', 3600)),
    AccessToken: ttl(envInt('OIDC_ACCESS_TOKEN_TTL', 3600)),
    AuthorizationCode: ttl(60),
    Interaction: ttl(600),
    Session: ttl(envInt('OIDC_SESSION_TTL', 86400)),
    Grant: ttl(envInt('OIDC_SESSION_TTL', 86400)),
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);

// The dashboard may also use any redirect URI matching a pattern (the tests start the gateway on a random port).
// oidc-provider compares redirect_uri against the registered list at /auth (Client#redirectUriAllowed) and compares
// the token request's redirect_uri with the one stored in the code, so allowing it here is enough.
const redirectUriAllowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function allowed(value) {
  if (redirectUriAllowed.call(this, value)) return true;
  return this.clientId === dashboardId && typeof value === 'string' && dashboardPatterns.some((re) => re.test(value));
};

// ---------------------------------------------------------------------------------------------------------------
// Interactions: GET /interaction/:uid shows a login form; POST /interaction/:uid/login checks login + password
// and finishes the interaction with both the login and an automatic consent (a grant of everything requested).

const htmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, message) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DocketOps test sign-in</title></head>
<body>
<h1>Sign in to ${htmlEscape(clientId)}</h1>
${message ? `<p role="alert" id="error">${htmlEscape(message)}</p>` : ''}
<form method="post" action="/interaction/${htmlEscape(uid)}/login" autocomplete="off">
  <label>Username <input name="login" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>
</body></html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new errors.InvalidRequest('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// A grant of every requested OpenID scope and claim: consent is automatic for these first-party test clients.
async function grantEverythingRequested(details, accountId) {
  const { params } = details;
  let grant;
  if (details.grantId) grant = await provider.Grant.find(details.grantId);
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  if (params.scope) grant.addOIDCScope(String(params.scope));
  if (params.claims) {
    try {
      const claims = JSON.parse(params.claims);
      const names = [...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})];
      if (names.length) grant.addOIDCClaims(names);
    } catch { /* oidc-provider already rejected an invalid claims parameter */ }
  }
  const missing = details.prompt?.details ?? {};
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

provider.use(async (ctx, next) => {
  const started = Date.now();
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(ctx.path);
  if (!m) {
    await next();
  } else {
    const [, uid, login] = m;
    ctx.set('Cache-Control', 'no-store');
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      // No or expired interaction cookie (the test client must keep the cookies the provider set).
      ctx.status = 400;
      ctx.type = 'json';
      ctx.body = { error: 'invalid_request', error_description: `interaction not found: ${err.message}` };
      details = undefined;
    }
    if (details && details.uid !== uid) {
      ctx.status = 400;
      ctx.type = 'json';
      ctx.body = { error: 'invalid_request', error_description: 'interaction cookie does not match the URL' };
    } else if (details && !login && ctx.method === 'GET') {
      if (details.prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage(uid, details.params.client_id);
      } else {
        // Consent (e.g. SSO into a native client, which always asks): granted at once, no form.
        const grantId = await grantEverythingRequested(details, details.session.accountId);
        await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        ctx.respond = false;
      }
    } else if (details && login && ctx.method === 'POST') {
      const form = await readForm(ctx.req);
      const user = form.get('login') ?? '';
      const password = form.get('password') ?? '';
      if (details.prompt.name !== 'login' && details.prompt.name !== 'consent') {
        ctx.status = 400;
        ctx.type = 'json';
        ctx.body = { error: 'invalid_request', error_description: `unexpected prompt ${details.prompt.name}` };
      } else if (!Object.hasOwn(ACCOUNTS, user) || password !== PASSWORD) {
        log(`login refused for ${JSON.stringify(user)} (interaction ${uid})`);
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage(uid, details.params.client_id, 'Invalid username or password.');
      } else {
        log(`login ok for ${user} (interaction ${uid}, client ${details.params.client_id})`);
        const grantId = await grantEverythingRequested(details, user);
        await provider.interactionFinished(ctx.req, ctx.res, {
          login: { accountId: user, amr: ['pwd'], remember: true },
          consent: { grantId },
        }, { mergeWithLastSubmission: false });
        ctx.respond = false;
      }
    } else if (details) {
      ctx.status = 405;
      ctx.type = 'json';
      ctx.body = { error: 'invalid_request', error_description: 'use GET /interaction/:uid or POST /interaction/:uid/login' };
    }
  }
  log(`${ctx.method} ${ctx.originalUrl.split('?')[0]} -> ${ctx.respond === false ? ctx.res.statusCode : ctx.status} (${Date.now() - started} ms)`);
});

provider.on('server_error', (_ctx, err) => log('server_error:', err));
provider.on('grant.error', (_ctx, err) => log('grant.error:', err.message, err.error_description ?? ''));
provider.on('authorization.error', (_ctx, err) => log('authorization.error:', err.message, err.error_description ?? ''));

const server = provider.listen(port, '127.0.0.1', () => {
  log(`oidc-provider ${providerVersion} listening on 127.0.0.1:${port}, issuer ${issuer}`);
  log(`clients: ${dashboardId} (confidential, redirect ${dashboardRedirects.join(' ')}; patterns ${dashboardPatterns.map(String).join(' ') || 'none'}), ${cliId} (public, redirect ${cliRedirect})`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
