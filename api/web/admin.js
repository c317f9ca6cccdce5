// Writes, with the token only: upload a track (POST /v1/tracks), take one down
// (DELETE /v1/tracks/{id}). Errors are the API's own messages.

import { api, token } from './api.js';
import { el, showError } from './ui.js';

export async function show(main) {
  const tok = el('input', { id: 'token', type: 'password', placeholder: 'bearer token', value: token.get(), size: 30 });
  tok.addEventListener('change', () => token.set(tok.value));
  const out = el('section', { id: 'admin-out' });
  const report = (v) => { out.replaceChildren(el('pre', { class: 'panel' }, JSON.stringify(v, null, 2))); };
  const fail = (e) => { out.replaceChildren(); showError(out, e); };

  const file = el('input', { id: 'upload-file', type: 'file', accept: 'audio/*' });
  const ext = el('input', { id: 'upload-id', placeholder: 'external id', size: 20 });
  const title = el('input', { id: 'upload-title', placeholder: 'title', size: 24 });
  const artist = el('input', { id: 'upload-artist', placeholder: 'artist', size: 20 });
  const upload = async () => {
    const form = new FormData();
    if (file.files[0]) form.append('audio', file.files[0]);
    form.append('metadata', JSON.stringify({ external_id: ext.value, title: title.value, artists: artist.value ? [artist.value] : [] }));
    try { report(await api('/tracks', { method: 'POST', form, auth: true })); } catch (e) { fail(e); }
  };
  const victim = el('input', { id: 'takedown-id', type: 'number', placeholder: 'track id' });
  const takedown = async () => {
    try { report(await api(`/tracks/${victim.value}`, { method: 'DELETE', auth: true })); } catch (e) { fail(e); }
  };
  main.append(el('h2', {}, 'Upload & takedown'),
    el('p', { class: 'dim' }, 'These need the server\'s write token; it stays in this tab only.'),
    el('div', { class: 'row panel' }, 'Token', tok),
    el('h3', {}, 'Upload a track'),
    el('div', { class: 'row panel' }, file, ext, title, artist, el('button', { id: 'upload-go', onclick: upload }, 'Upload')),
    el('h3', {}, 'Take a track down'),
    el('div', { class: 'row panel' }, victim, el('button', { id: 'takedown-go', onclick: takedown }, 'Take down')),
    out);
}
