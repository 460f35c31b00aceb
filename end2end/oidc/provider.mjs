// A real OpenID provider for tests: npm oidc-provider (a certified implementation) with a small
// login form and three users in groups. Never for production: its keys are made at start-up.
//
//   node oidc/provider.mjs PORT CLIENT_SECRET REDIRECT_URI [POST_LOGOUT_URI]
//
// It registers the confidential client "pangea" for REDIRECT_URI and also allows dynamic client
// registration (POST /reg), so each integration test can register its own redirect URI.
// POST /test/disable/USER disables a user, as an IdP admin would: their refresh tokens stop working.
// POST /test/wrong-audience/CLIENT makes the token endpoint answer that client with an ID token
// signed by this IdP's own key but addressed to another client, as a hostile or broken IdP might.
// POST /test/users with {"groups": [...], "email_verified": bool} adds a user of its own for one
// test and answers {"login", "password"}: tests that change a user's state touch nobody else.
// With "login" naming such a user, it sets that user's groups instead ("groups": null: no groups
// claim at all, in ID tokens and userinfo).
// POST /test/rotate-keys/CLIENT publishes a second signing key in the JWKS and signs that
// client's ID tokens with it from then on, as a provider rotating its keys does.
// POST /test/reject-client/CLIENT makes the token endpoint refuse that client (401
// invalid_client), as after a client-secret rotation at the IdP.
// POST /test/userinfo-fails/CLIENT makes the userinfo endpoint answer 503 to that client's tokens.
// POST /test/other-subject/CLIENT makes the token endpoint answer that client with ID tokens about
// another subject ("someone-else"), as a broken IdP might on a refresh.
// The scope "roles" releases the claim "roles" (like Keycloak's client roles): only when asked for.
import Provider from 'oidc-provider';
import { createServer } from 'node:http';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, importJWK } from 'jose';

// The public half of a private JWK.
const importPublic = async (jwk) => {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return importJWK({ ...pub, alg: 'RS256' }, 'RS256');
};

const [port, clientSecret, redirectUri, postLogoutUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const users = {
  alice: { password: 'alice-password', email: 'alice@example.com', name: 'Alice Admin', groups: ['pangea-admins'] },
  olga: { password: 'olga-password', email: 'olga@example.com', name: 'Olga Operator', groups: ['pangea-operators'] },
  victor: { password: 'victor-password', email: 'victor@example.com', name: 'Victor Viewer', groups: ['pangea-viewers'] },
  // Disabled by a test (POST /test/disable/dora); no other test signs in as her.
  dora: { password: 'dora-password', email: 'dora@example.com', name: 'Dora Disabled-Later', groups: ['pangea-operators'] },
  // Her IdP has not verified her email address.
  uma: { password: 'uma-password', email: 'uma@example.com', emailVerified: false, name: 'Uma Unverified', groups: ['pangea-admins'] },
};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-key', use: 'sig', alg: 'RS256' };
const wrongAudience = new Set();
// A second key, published and used only after POST /test/rotate-keys/CLIENT (a key rotation).
const rotated = await generateKeyPair('RS256', { extractable: true });
const rotatedPublic = { ...(await exportJWK(rotated.publicKey)), kid: 'rotated-key', use: 'sig', alg: 'RS256' };
const signingPublic = { ...(await exportJWK(await importPublic(signingKey))), kid: 'test-key', use: 'sig', alg: 'RS256' };
const rotatedClients = new Set();
const userinfoFails = new Set();
const rejectedClients = new Set();
const otherSubject = new Set();

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [{
    client_id: 'pangea',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: postLogoutUri ? [postLogoutUri] : [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'roles'],
  claims: { email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'], roles: ['roles'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // Like Keycloak or Dex: clients allowed the refresh grant get refresh tokens.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user || user.disabled) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, email: user.email, email_verified: user.emailVerified ?? true, name: user.name,
          preferred_username: id,
          // A user whose groups a test set to null has no groups claim at all.
          ...(user.groups === null ? {} : { groups: user.groups, roles: user.groups }),
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // Like Dex's skipApprovalScreen: every client gets what it asks for, without a consent page.
    const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'preferred_username', 'groups', 'roles']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

const page = (uid, error) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><main><h1>Test IdP</h1>${error ? `<p role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label for="idp-user">IdP user</label><input id="idp-user" name="login" autocomplete="username">
<label for="idp-password">IdP password</label><input id="idp-password" name="password" type="password">
<button type="submit">Continue</button>
<button type="submit" formaction="/interaction/${uid}/abort">Cancel</button>
</form></main></body></html>`;

const readBody = (req) => new Promise((resolve) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => resolve(body));
});
const readForm = async (req) => new URLSearchParams(await readBody(req));
const readJson = async (req) => { const text = await readBody(req); return text ? JSON.parse(text) : {}; };

// The client id of an `Authorization: Basic` header, or '' for any other header (a userinfo call
// carries `Bearer`, which is not base64 of "id:secret").
const basicAuthClient = (header) => {
  const basic = (header ?? '').match(/^Basic ([A-Za-z0-9+/=]+)$/);
  if (!basic) return '';
  const id = Buffer.from(basic[1], 'base64').toString().split(':')[0];
  try { return decodeURIComponent(id); } catch { return ''; }
};

const callback = provider.callback();
createServer(async (req, res) => {
  try {
    const misaddress = req.method === 'POST' && req.url.match(/^\/test\/wrong-audience\/([\w-]+)$/);
    if (misaddress) {
      wrongAudience.add(misaddress[1]);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && req.url === '/test/users') {
      const body = await readJson(req);
      if (body.login && users[body.login]?.forTest) {
        users[body.login].groups = body.groups === null ? null : (body.groups ?? []);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ login: body.login }));
        return;
      }
      const login = `u${Object.keys(users).length}x${Math.random().toString(36).slice(2, 8)}`;
      users[login] = {
        password: `${login}-password`, email: `${login}@example.com`, name: `Test user ${login}`,
        groups: body.groups ?? [], emailVerified: body.email_verified ?? true, forTest: true,
      };
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ login, password: users[login].password }));
      return;
    }
    const reject = req.method === 'POST' && req.url.match(/^\/test\/reject-client\/([\w-]+)$/);
    if (reject) {
      rejectedClients.add(reject[1]);
      res.writeHead(204).end();
      return;
    }
    const failUserinfo = req.method === 'POST' && req.url.match(/^\/test\/userinfo-fails\/([\w-]+)$/);
    if (failUserinfo) {
      userinfoFails.add(failUserinfo[1]);
      res.writeHead(204).end();
      return;
    }
    if (req.url.startsWith('/me') && userinfoFails.size > 0) {
      const bearer = (req.headers.authorization ?? '').match(/^Bearer (.+)$/);
      const token = bearer && await provider.AccessToken.find(bearer[1]);
      if (token && userinfoFails.has(token.clientId)) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('userinfo is down (test switch)');
        return;
      }
    }
    const tokenClient = basicAuthClient(req.headers.authorization);
    if (req.method === 'POST' && req.url === '/token' && rejectedClients.has(tokenClient)) {
      res.writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed (test switch)' }));
      return;
    }
    const resubject = req.method === 'POST' && req.url.match(/^\/test\/other-subject\/([\w-]+)$/);
    if (resubject) {
      otherSubject.add(resubject[1]);
      res.writeHead(204).end();
      return;
    }
    const rotate = req.method === 'POST' && req.url.match(/^\/test\/rotate-keys\/([\w-]+)$/);
    if (rotate) {
      rotatedClients.add(rotate[1]);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url === '/jwks' && rotatedClients.size > 0) {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: [signingPublic, rotatedPublic] }));
      return;
    }
    const resigned = [wrongAudience, rotatedClients, otherSubject].some((switched) => switched.has(tokenClient));
    if (req.method === 'POST' && req.url === '/token' && resigned) {
      // Re-sign the real answer's ID token: for another audience or subject, or with the rotated key.
      const misaddressed = wrongAudience.has(tokenClient);
      const [key, kid] = rotatedClients.has(tokenClient) ? [rotated.privateKey, 'rotated-key'] : [privateKey, 'test-key'];
      const chunks = [];
      const end = res.end.bind(res);
      res.write = (chunk) => { chunks.push(Buffer.from(chunk)); return true; };
      res.end = (chunk) => {
        if (chunk) chunks.push(Buffer.from(chunk));
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        if (!body.id_token) return end(JSON.stringify(body));
        const claims = {
          ...decodeJwt(body.id_token),
          ...(misaddressed ? { aud: 'some-other-client' } : {}),
          ...(otherSubject.has(tokenClient) ? { sub: 'someone-else' } : {}),
        };
        new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key).then((idToken) => {
          const text = JSON.stringify({ ...body, id_token: idToken });
          res.setHeader('content-length', Buffer.byteLength(text));
          end(text);
        });
        return res;
      };
    }

    const disable = req.method === 'POST' && req.url.match(/^\/test\/disable\/(\w+)$/);
    if (disable && users[disable[1]]) {
      users[disable[1]].disabled = true;
      res.writeHead(204).end();
      return;
    }
    const match = req.url.match(/^\/interaction\/([^/?]+)(\/login|\/abort)?/);
    if (match) {
      const [, uid, action] = match;
      await provider.interactionDetails(req, res);
      if (!action) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(uid));
        return;
      }
      if (action === '/abort') {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' }, { mergeWithLastSubmission: false });
        return;
      }
      const form = await readForm(req);
      const user = users[form.get('login')];
      if (!user || user.password !== form.get('password')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(uid, 'Wrong user or password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, { mergeWithLastSubmission: false });
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
}).listen(Number(port), '127.0.0.1', () => console.log(`test IdP ready at ${issuer}`));
