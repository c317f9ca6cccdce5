// The one way the page talks to the server: the public /v1 API. A failed call throws an
// Error whose message is the API's own `code: message`.

export const token = {
  get: () => sessionStorage.getItem('motif-token') || '',
  set: (t) => sessionStorage.setItem('motif-token', t),
};

export async function api(path, { method = 'GET', json, form, auth = false } = {}) {
  const headers = {};
  let body;
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  if (auth && token.get()) headers.authorization = `Bearer ${token.get()}`;
  const r = await fetch(`/v1${path}`, { method, headers, body });
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) {
    const e = v && v.error;
    throw new Error(e ? `${e.code}: ${e.message}` : `HTTP ${r.status}`);
  }
  return v;
}

export const audioUrl = (id) => `/v1/tracks/${id}/audio`;

/// The query string of an object, repeated keys for arrays, empty values left out.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const x of [].concat(v)) if (x !== undefined && x !== null && x !== '') p.append(k, x);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
