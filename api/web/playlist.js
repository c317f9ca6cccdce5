// The playlist builder: hard filters, seeds, soft targets, size or duration, artist rules
// and an order -> POST /v1/playlists; the ordered list with each transition's score and any
// relaxed constraint; play through it; export as M3U or JSON.

import { api, audioUrl } from './api.js';
import { player } from './player.js';
import { el, download, fmtTime, showError, trackRow } from './ui.js';

const field = (id, attrs = {}) => el('input', { id, ...attrs });
const numbers = (s) => s.split(/[\s,]+/).filter(Boolean).map(Number);
const words = (s) => s.split(/[\s,]+/).filter(Boolean);

export async function show(main) {
  const f = {
    tags: field('pl-tags', { placeholder: 'tags, e.g. mood:calm', size: 30 }),
    tempoMin: field('pl-tempo-min', { type: 'number', placeholder: 'min', style: 'width:80px' }),
    tempoMax: field('pl-tempo-max', { type: 'number', placeholder: 'max', style: 'width:80px' }),
    energyMin: field('pl-energy-min', { type: 'number', step: 0.05, placeholder: 'min', style: 'width:80px' }),
    energyMax: field('pl-energy-max', { type: 'number', step: 0.05, placeholder: 'max', style: 'width:80px' }),
    seeds: field('pl-seeds', { placeholder: 'seed track ids', size: 20 }),
    energy: field('pl-target-energy', { type: 'number', step: 0.05, placeholder: 'energy', style: 'width:80px' }),
    size: field('pl-size', { type: 'number', min: 1, max: 500, value: 10, style: 'width:80px' }),
    minutes: field('pl-minutes', { type: 'number', min: 1, placeholder: 'or minutes', style: 'width:90px' }),
    perArtist: field('pl-max-per-artist', { type: 'number', min: 1, placeholder: 'max', style: 'width:70px' }),
    gap: field('pl-artist-gap', { type: 'number', min: 0, placeholder: 'gap', style: 'width:70px' }),
    order: el('select', { id: 'pl-order' }, ['smooth', 'harmonic', 'energy_arc'].map((o) => el('option', { value: o }, o))),
  };
  const out = el('section', { id: 'playlist' });
  const build = async () => {
    out.replaceChildren();
    try {
      render(out, await api('/playlists', { method: 'POST', json: request(f) }));
    } catch (e) {
      showError(out, e);
    }
  };
  main.append(el('h2', {}, 'Playlist builder'), el('div', { class: 'panel' },
    el('div', { class: 'row' }, 'Tags', f.tags, 'Tempo', f.tempoMin, '–', f.tempoMax, 'Energy', f.energyMin, '–', f.energyMax),
    el('div', { class: 'row' }, 'Seeds', f.seeds, 'Target energy', f.energy),
    el('div', { class: 'row' }, 'Tracks', f.size, f.minutes, 'Per artist', f.perArtist, 'Artist gap', f.gap, 'Order', f.order,
      el('button', { id: 'pl-build', onclick: build }, 'Build'))), out);
}

function request(f) {
  const ranges = {};
  const range = (name, lo, hi) => {
    if (lo.value !== '' || hi.value !== '') {
      ranges[name] = { min: lo.value === '' ? null : Number(lo.value), max: hi.value === '' ? null : Number(hi.value) };
    }
  };
  range('tempo_bpm', f.tempoMin, f.tempoMax);
  range('energy', f.energyMin, f.energyMax);
  const r = { filters: { tags: words(f.tags.value), ranges }, seeds: numbers(f.seeds.value), order: f.order.value };
  if (f.energy.value !== '') r.targets = { energy: Number(f.energy.value) };
  if (f.minutes.value !== '') r.duration_s = Number(f.minutes.value) * 60; else r.size = Number(f.size.value || 10);
  if (f.perArtist.value !== '') r.max_per_artist = Number(f.perArtist.value);
  if (f.gap.value !== '') r.artist_gap = Number(f.gap.value);
  return r;
}

function render(out, p) {
  const tracks = p.tracks.map((x) => x.track);
  out.append(el('div', { class: 'row' },
    el('b', {}, `${p.size} tracks, ${fmtTime(p.duration_s)}, ${p.order}`),
    el('button', { id: 'pl-play', onclick: () => player.play(tracks, 0) }, '▶ Play all'),
    el('button', { onclick: () => download('playlist.m3u', m3u(p), 'audio/x-mpegurl') }, 'Export M3U'),
    el('button', { onclick: () => download('playlist.json', JSON.stringify(p, null, 2), 'application/json') }, 'Export JSON')));
  for (const r of p.relaxed || []) {
    out.append(el('div', { class: 'note relaxed' }, `Relaxed ${r.constraint}: ${r.why}`));
  }
  const list = el('ul', { class: 'tracks', id: 'pl-tracks' });
  p.tracks.forEach((x, i) => {
    if (x.transition) {
      const t = x.transition;
      list.append(el('li', { class: 'transition' },
        `↓ transition ${t.score.toFixed(2)} · key ${t.key_relation} · tempo ${tempoStep(t)} · similarity ${t.similarity.toFixed(2)}`));
    }
    list.append(trackRow(x.track, { queue: tracks, index: i, extra: `#${x.position}` }));
  });
  out.append(list);
}

function m3u(p) {
  const base = location.origin;
  return ['#EXTM3U', ...p.tracks.flatMap(({ track: t }) => [
    `#EXTINF:${Math.round(t.duration_s || -1)},${(t.artists || []).join(', ')} - ${t.title || t.id}`,
    `${base}${audioUrl(t.id)}`,
  ])].join('\n') + '\n';
}

/** The tempo of a transition: where one track ends and the next starts, and the change. */
function tempoStep(t) {
  if (t.tempo_change_pct == null) return 'free pulse';
  const sign = t.tempo_change_pct > 0 ? '+' : '';
  return `${t.tempo_out_bpm.toFixed(0)} → ${t.tempo_in_bpm.toFixed(0)} BPM (${sign}${t.tempo_change_pct.toFixed(1)} %)`;
}
