// A stand-in eID service for Amtsweg's tests: oidc-provider with one confidential client. Interactions complete
// on their own, as if the citizen had presented an eID card: the subject is the `login_hint` (or a default), the
// authentication level eIDAS "high".
//
//   node provider.mjs PORT REDIRECT_URI
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirectUri = process.argv[3];
const issuer = `http://127.0.0.1:${port}`;

const people = {
  default: { given_name: 'Erika', family_name: 'Mustermann', birthdate: '1964-08-12',
    address: { street_address: 'Heidestraße 17', postal_code: '51147', locality: 'Köln', country: 'DE' } },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'amtsweg',
    client_secret: 'amtsweg-eid-test-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'address'],
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'birthdate'],
    email: ['email', 'email_verified'],
    address: ['address'],
  },
  acrValues: ['http://eidas.europa.eu/LoA/high'],
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const person = people[id] ?? people.default;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...person, email: `${id}@eid.example`, email_verified: true };
      },
    };
  },
});
provider.proxy = false;

// Complete every interaction at once: log in with the eID, grant what the client asked for.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match || ctx.method !== 'GET') return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const accountId = details.params.login_hint || 'eid-4711';
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId, acr: 'http://eidas.europa.eu/LoA/high', amr: ['eid'] } };
  } else {
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    for (const claim of ['acr']) grant.addOIDCClaims([claim]);
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
});

provider.listen(port, '127.0.0.1', () => console.log(`eID provider listening on ${issuer}`));
