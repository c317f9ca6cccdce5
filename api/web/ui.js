// Small DOM helpers and the track row every view shows.

import { player } from './player.js';

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function showError(where, err) {
  where.append(el('div', { class: 'error', role: 'alert' }, String(err.message || err)));
}

export const fmtTime = (s) => (s == null ? '' : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`);

export function describe(t) {
  const a = t.attributes || {};
  const parts = [];
  if (t.key) parts.push(`${t.key} ${t.mode || ''}`.trim() + (t.camelot ? ` (${t.camelot})` : ''));
  if (a.tempo_bpm != null) parts.push(`${Math.round(a.tempo_bpm)} BPM`);
  if (a.energy != null) parts.push(`energy ${a.energy.toFixed(2)}`);
  if (t.duration_s) parts.push(fmtTime(t.duration_s));
  return parts.join(' · ');
}

/// One track: play button, title (opens the track page), artists, key/tempo, tags and
/// optional reasons. `queue` is the list the play button plays through.
export function trackRow(t, { queue = [t], index = 0, reasons = [], extra = null, onTag = null } = {}) {
  const tags = (t.tags || []).slice(0, 8).map((g) =>
    el('span', { class: 'chip', title: 'filter by this tag', onclick: () => onTag && onTag(g) }, g));
  return el('li', { class: 'track', 'data-id': t.id },
    el('button', { class: 'play', title: 'Play', 'aria-label': `Play ${t.title || t.id}`, onclick: () => player.play(queue, index) }, '▶'),
    el('div', {},
      el('a', { class: 'title', href: `#/track/${t.id}` }, t.title || `track ${t.id}`),
      ' ', el('span', { class: 'dim' }, (t.artists || []).join(', ')),
      el('div', { class: 'meta' }, describe(t)),
      el('div', {}, tags),
      reasons.length ? el('div', { class: 'why' }, reasons.join(' · ')) : null),
    el('div', { class: 'meta' }, extra));
}

/// Offers a JSON value as a download.
export function download(name, text, type) {
  const a = el('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}
