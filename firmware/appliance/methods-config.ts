/**
 * Control methods on the configuration store (api.ts config.*, certs.*,
 * users.*). Every change is a store revision (author = the actor); the
 * reply comes once the running tunnels have been reconciled with it, so a
 * client that reads status right after sees the new configuration at work.
 *
 * Secrets: config.get returns "<set>" where a PSK is stored; "<set>" sent
 * back (config.set, config.tunnel.put, config.import) means "keep the stored
 * key" and is removed before the store sees the document, which then keeps
 * the key of the tunnel of the same name (store/validate.ts).
 */
import { X509Certificate } from 'node:crypto';
import { SECRET_PLACEHOLDER, type CertificateInfo, type RevisionInfo } from '../control/api.js';
import { ControlError, ControlErrorCode } from '../control/protocol.js';
import { ConfigValidationError } from '../config/schema.js';
import { getPreset, isPreset, presetNames } from '../presets/presets.js';
import { parseJsonText, validateDocument } from '../store/validate.js';
import type { RevisionInfo as StoreRevision, ApplyResult } from '../store/store.js';
import type { CertificateInfo as StoreCert } from '../store/certs.js';
import type { Appliance } from './appliance.js';
import type { Handlers } from './methods-ops.js';
import { actor, changeOpts, int, isObj, obj, optActor, optBool, optInt, optStr, optStrMap, str, type Obj } from './params.js';

type ConfigMethod =
  | 'config.get' | 'config.validate' | 'config.set' | 'config.tunnel.put' | 'config.tunnel.delete' | 'config.presets' | 'config.import'
  | 'config.export' | 'config.history' | 'config.diff' | 'config.rollback' | 'config.confirm' | 'config.cancel' | 'config.pending'
  | 'certs.list' | 'certs.add' | 'certs.remove'
  | 'users.list' | 'users.create' | 'users.verify' | 'users.password' | 'users.delete' | 'users.setupRequired';

export function revisionInfo(r: StoreRevision): RevisionInfo {
  return {
    id: r.id,
    author: r.author,
    comment: r.comment,
    createdAt: r.createdAt,
    confirmDeadline: r.confirmDeadline,
    state: r.status === 'reverted' ? 'rolled-back' : r.status,
  };
}

/**
 * Remove `psk: "<set>"` from every tunnel of a document, backup or patch
 * (deep copy; anything else untouched). JSON text is parsed first (a syntax
 * error is reported by position only: the text may hold a PSK).
 */
export function withoutPlaceholders(input: unknown): unknown {
  const value = typeof input === 'string' ? parseJsonText(input) : input;
  if (!isObj(value)) return value;
  const copy = structuredClone(value);
  const strip = (t: unknown) => {
    if (isObj(t) && t.psk === SECRET_PLACEHOLDER) delete t.psk;
  };
  if (Array.isArray(copy.tunnels)) copy.tunnels.forEach(strip);
  if (isObj(copy.patch) && isObj(copy.patch.tunnels)) Object.values(copy.patch.tunnels).forEach(strip);
  return copy;
}

function certInfo(c: StoreCert, pem: string | undefined): CertificateInfo {
  let sans: string[] = [];
  let keyType = 'unknown';
  try {
    if (pem) {
      const x = new X509Certificate(pem);
      sans = (x.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
      const k = x.publicKey;
      const d = k.asymmetricKeyDetails;
      keyType = k.asymmetricKeyType === 'ec' ? `ec ${d?.namedCurve ?? ''}`.trim() : k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'rsa-pss' ? `${k.asymmetricKeyType} ${d?.modulusLength ?? ''}`.trim() : (k.asymmetricKeyType ?? 'unknown');
    }
  } catch {
    // node:crypto cannot describe it (e.g. ML-DSA on OpenSSL < 3.5): keep the defaults
  }
  return { name: c.name, kind: c.kind, subject: c.subject, issuer: c.issuer, notBefore: c.notBefore, notAfter: c.notAfter, sans, keyType, hasPrivateKey: c.hasPrivateKey };
}

export function configMethods(app: Appliance): Handlers<ConfigMethod> {
  const store = () => app.requireStore();
  /** A change to the store, answered after the running tunnels follow it. */
  const changed = async (r: ApplyResult): Promise<{ revision: RevisionInfo }> => {
    await app.settled();
    return { revision: revisionInfo(r.revision) };
  };
  const hasStoredPsk = (name: string) => (app.store ? app.store.getDocument().tunnels.some((t) => t.name === name) : false);
  return {
    'config.get': () => {
      const s = store();
      const doc = s.getDocument();
      return { revision: s.current().id, document: { ...doc, tunnels: doc.tunnels.map((t) => (t.auth === undefined || t.auth === 'psk' ? { ...t, psk: SECRET_PLACEHOLDER } : t)) } };
    },
    'config.validate': (params) => {
      const p = obj(params);
      if (p.document === undefined) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.document is required');
      try {
        validateDocument(withoutPlaceholders(p.document), { hasStoredPsk, isPreset });
        return { ok: true, issues: [] };
      } catch (e) {
        if (!(e instanceof ConfigValidationError)) throw e;
        return { ok: false, issues: e.errors.map((x) => ({ path: x.path, message: x.message.slice(x.path.length + 2) })) };
      }
    },
    'config.set': (params) => {
      const p = obj(params);
      if (p.document === undefined) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.document is required');
      return changed(store().apply(withoutPlaceholders(p.document), changeOpts(p)));
    },
    'config.tunnel.put': (params) => {
      const p = obj(params);
      const t = p.tunnel;
      if (!isObj(t) || typeof t.name !== 'string' || t.name === '') throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.tunnel must be an object with a name');
      const clean = (withoutPlaceholders({ tunnels: [t] }) as { tunnels: Obj[] }).tunnels[0]!;
      const { name, ...fields } = clean as Obj & { name: string };
      const preset = optStr(p, 'preset', { max: 64 });
      const presetParams = optStrMap(p, 'params');
      if (preset !== undefined)
        return changed(store().addTunnelFromPreset(preset, { name, ...fields }, { ...changeOpts(p), ...(presetParams ? { params: presetParams } : {}) }));
      return changed(store().apply({ patch: { tunnels: { [name]: fields } } }, changeOpts(p)));
    },
    'config.tunnel.delete': (params) => {
      const p = obj(params);
      const name = str(p, 'name', { max: 64 });
      const s = store();
      if (!s.getDocument().tunnels.some((t) => t.name === name)) throw new ControlError(ControlErrorCode.NO_SUCH_TUNNEL, `no tunnel named '${name}'`);
      return changed(s.apply({ patch: { tunnels: { [name]: null } } }, changeOpts(p)));
    },
    'config.presets': () =>
      presetNames().map((n) => {
        const pr = getPreset(n)!;
        return { name: pr.name, title: pr.title, description: pr.description, tunnel: pr.tunnel, params: pr.params, requires: pr.requires };
      }),
    'config.import': (params) => {
      const p = obj(params);
      if (p.document === undefined) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.document is required');
      const { confirmTimeoutSec: _t, ...opts } = changeOpts(p);
      return changed(store().importDocument(withoutPlaceholders(p.document), opts));
    },
    'config.export': (params) => {
      const p = obj(params);
      const includeSecrets = optBool(p, 'includeSecrets') ?? false;
      const who = includeSecrets ? actor(p) : (optActor(p) ?? 'unknown');
      return { document: store().exportDocument({ backup: true, includeSecrets, actor: who }) };
    },
    'config.history': (params) => {
      const p = obj(params);
      const limit = optInt(p, 'limit', 1, 1000);
      const beforeId = optInt(p, 'beforeId', 1, Number.MAX_SAFE_INTEGER);
      return store()
        .history({ ...(limit !== undefined ? { limit } : {}), ...(beforeId !== undefined ? { beforeId } : {}) })
        .map(revisionInfo);
    },
    'config.diff': (params) => {
      const p = obj(params);
      const d = store().diff(int(p, 'from', 1, Number.MAX_SAFE_INTEGER), int(p, 'to', 1, Number.MAX_SAFE_INTEGER));
      return {
        text: d.text,
        entries: d.entries.map((e) => ({ path: e.path, kind: e.op, ...(e.before !== undefined ? { before: e.before } : {}), ...(e.after !== undefined ? { after: e.after } : {}) })),
      };
    },
    'config.rollback': (params) => {
      const p = obj(params);
      return changed(store().rollback(int(p, 'revision', 1, Number.MAX_SAFE_INTEGER), changeOpts(p)));
    },
    'config.confirm': async (params) => {
      const r = store().confirm({ author: actor(obj(params)) });
      return { revision: revisionInfo(r) };
    },
    'config.cancel': (params) => {
      const p = obj(params);
      const comment = optStr(p, 'comment', { max: 2000 });
      return changed(store().cancelPending({ author: actor(p), ...(comment !== undefined ? { comment } : {}) }));
    },
    'config.pending': async () => {
      const s = store();
      // A passed deadline is rolled back now, even if the timer has not fired yet.
      if (s.checkPending()) await app.settled();
      const r = s.pending();
      return { revision: r ? revisionInfo(r) : null };
    },

    'certs.list': () => {
      const s = store();
      return s.listCertificates().map((c) => certInfo(c, s.certificatePem(c.name)));
    },
    'certs.add': (params) => {
      const p = obj(params);
      const kind = p.kind;
      if (kind !== 'cert' && kind !== 'ca') throw new ControlError(ControlErrorCode.INVALID_PARAMS, "params.kind must be 'cert' or 'ca'");
      const privateKeyPem = optStr(p, 'privateKeyPem', { max: 65536 });
      const s = store();
      const c = s.addCertificate({ name: str(p, 'name', { max: 64 }), kind, pem: str(p, 'pem', { max: 65536 }), ...(privateKeyPem !== undefined ? { privateKeyPem } : {}) }, { actor: actor(p) });
      return certInfo(c, s.certificatePem(c.name));
    },
    'certs.remove': (params) => {
      const p = obj(params);
      store().removeCertificate(str(p, 'name', { max: 64 }), { actor: actor(p) });
      return { ok: true };
    },

    'users.list': () => store().listUsers().map((u) => ({ name: u.name, createdAt: u.createdAt, lastLoginAt: app.lastLogins.get(u.name) ?? null })),
    'users.create': (params) => {
      const p = obj(params);
      const s = store();
      const who = optActor(p);
      // First-boot setup: the first user needs nobody's permission; after that only an administrator adds users.
      if (s.listUsers().length > 0 && who === undefined) throw new ControlError('ERR_PERMISSION', 'setup is complete: only an authenticated administrator (actor) may add users');
      const name = str(p, 'name', { max: 64 });
      s.createUser(name, str(p, 'password', { max: 4096 }), { actor: who ?? 'first-boot setup' });
      app.events.append({ level: 'info', message: `administrator '${name}' created by ${who ?? 'first-boot setup'}` });
      return { ok: true };
    },
    'users.verify': (params) => {
      const p = obj(params);
      const name = p.name;
      const password = p.password;
      if (typeof name !== 'string' || typeof password !== 'string' || name.length > 64 || password.length > 4096) return { ok: false };
      const ok = store().verifyUser(name, password);
      if (ok) app.lastLogins.set(name, app.wallNow());
      return { ok };
    },
    'users.password': (params) => {
      const p = obj(params);
      const current = optStr(p, 'currentPassword', { max: 4096 });
      store().changePassword(str(p, 'name', { max: 64 }), str(p, 'newPassword', { max: 4096 }), { actor: actor(p), ...(current !== undefined ? { currentPassword: current } : {}) });
      return { ok: true };
    },
    'users.delete': (params) => {
      const p = obj(params);
      const name = str(p, 'name', { max: 64 });
      const who = actor(p);
      const s = store();
      // Deleting the last administrator would reopen first-boot setup to whoever reaches the web admin first.
      if (s.listUsers().length === 1 && s.listUsers()[0]!.name === name) throw new ControlError('ERR_LAST_USER', 'cannot delete the last administrator: create another one first');
      s.deleteUser(name, { actor: who });
      app.lastLogins.delete(name);
      return { ok: true };
    },
    'users.setupRequired': () => ({ setupRequired: store().listUsers().length === 0 }),
  };
}
