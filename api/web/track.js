// A track: its attributes as a bar chart, tags with scores, the tempo curve from its
// tracked beats, and "more like this" with the reasons, each playable.

import { api } from './api.js';
import { player } from './player.js';
import { el, describe, showError, trackRow } from './ui.js';

/// Attributes shown as bars, all on 0..1.
const UNIT = ['energy', 'danceability', 'brightness', 'percussiveness', 'acousticness', 'syncopation', 'harmonic_complexity', 'repetitiveness', 'key_strength', 'tempo_confidence'];
const SVG = 'http://www.w3.org/2000/svg';

export async function show(main, id) {
  const t = await api(`/tracks/${encodeURIComponent(id)}?include=beats`);
  main.append(
    el('h2', {}, el('button', { class: 'play', id: 'play-track', onclick: () => player.play([t], 0) }, '▶'), ' ', t.title || `track ${t.id}`),
    el('div', { class: 'dim' }, `${(t.artists || []).join(', ')}${t.album ? ` — ${t.album}` : ''} · ${describe({ ...t, ...(t.attributes || {}), attributes: t.attributes })}`));
  const left = el('div', { class: 'panel' });
  const right = el('div', {});
  main.append(el('div', { class: 'cols', style: 'grid-template-columns: 420px 1fr' }, left, right));
  left.append(el('h3', {}, 'Attributes'), bars(t.attributes || {}));
  left.append(el('h3', {}, 'Tempo over time'), tempoCurve(t.beats || []));
  left.append(el('h3', {}, 'Tags'), el('div', { id: 'tags' }, (t.tags || []).map((g) =>
    el('span', { class: 'chip', title: g.source }, `${g.tag || g.name} ${g.score != null ? g.score.toFixed(2) : ''}`))));
  right.append(el('h3', {}, 'More like this'));
  const list = el('ul', { class: 'tracks', id: 'similar' });
  right.append(list);
  try {
    const s = await api(`/tracks/${t.id}/similar?limit=10`);
    s.results.forEach((h, i) => list.append(trackRow(h, { queue: s.results, index: i, reasons: h.reasons || [], extra: `score ${h.score.toFixed(3)}` })));
  } catch (e) {
    showError(right, e);
  }
}

function bars(a) {
  const out = el('div', { class: 'bars', id: 'attributes' });
  for (const k of UNIT) {
    if (a[k] == null) continue;
    out.append(el('span', {}, k.replaceAll('_', ' ')),
      el('div', {}, el('div', { class: 'bar', style: `width:${Math.max(1, Math.min(100, a[k] * 100))}%` })),
      el('span', {}, a[k].toFixed(2)));
  }
  for (const k of ['tempo_bpm', 'loudness_lufs', 'onset_rate', 'beats_per_bar']) {
    if (a[k] != null) out.append(el('span', {}, k.replaceAll('_', ' ')), el('span', {}), el('span', {}, String(Math.round(a[k] * 10) / 10)));
  }
  return out;
}

/// Local tempo (60 / beat interval, smoothed over 4 beats) against time, as an SVG line.
function tempoCurve(beats) {
  if (beats.length < 3) return el('p', { class: 'dim' }, 'No tracked beats in this analysis.');
  const pts = [];
  for (let i = 4; i < beats.length; i++) pts.push([beats[i], (60 * 4) / (beats[i] - beats[i - 4])]);
  const [w, h] = [400, 110];
  const t1 = beats[beats.length - 1];
  const lo = Math.min(...pts.map((p) => p[1])) - 5;
  const hi = Math.max(...pts.map((p) => p[1])) + 5;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', w);
  svg.id = 'tempo-curve';
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', pts.map(([x, y]) => `${(x / t1) * (w - 30) + 28},${h - 12 - ((y - lo) / (hi - lo)) * (h - 20)}`).join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#5ec4a8');
  svg.append(line);
  for (const [y, v] of [[h - 12, lo], [8, hi]]) {
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', 0);
    label.setAttribute('y', y);
    label.textContent = Math.round(v);
    svg.append(label);
  }
  return el('div', {}, svg, el('div', { class: 'dim' }, `${beats.length} beats over ${Math.round(t1)} s`));
}
