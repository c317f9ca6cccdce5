// Search: the /v1/search query syntax with suggestions, facet counts as clickable
// filters, attribute range sliders, results with tags and key/tempo. The view's state is
// its URL (`#/search?q=...&tags=...&energy_min=...`), so a search can be shared.

import { api, qs } from './api.js';
import { el, showError, trackRow } from './ui.js';

/// Sliders: attribute, label, lowest, highest, step.
const SLIDERS = [
  ['tempo_bpm', 'Tempo (BPM)', 40, 220, 1],
  ['energy', 'Energy', 0, 1, 0.01],
  ['danceability', 'Danceability', 0, 1, 0.01],
  ['acousticness', 'Acousticness', 0, 1, 0.01],
  ['brightness', 'Brightness', 0, 1, 0.01],
];

const SYNTAX = ['artist:', 'genre:', 'album:', 'title:', 'tag:', 'bpm:80-100', 'key:8A', 'key:Am', 'mode:minor', 'year:1990-1999', '"a phrase"'];

let knownTags = null;
async function tags() {
  if (!knownTags) {
    const t = await api('/tags');
    knownTags = Object.values(t.facets).flat().map((x) => x.tag);
  }
  return knownTags;
}

function go(state) {
  location.hash = `#/search${qs(Object.fromEntries([...state.keys()].map((k) => [k, state.getAll(k)])))}`;
}

export async function show(main, _arg, state) {
  const q = el('input', { id: 'q', type: 'search', placeholder: 'Search: words, artist:, genre:, tag:mood:calm, bpm:80-100, key:8A', value: state.get('q') || '', size: 60, autocomplete: 'off' });
  const box = el('ul', { id: 'suggestions', hidden: true });
  const submit = () => { state.set('q', q.value); state.delete('cursor'); go(state); };
  q.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); submit(); } });
  q.addEventListener('input', () => suggest(q, box));
  main.append(el('h2', {}, 'Search'),
    el('div', { class: 'row' }, el('div', { class: 'suggest' }, q, box), el('button', { id: 'go', onclick: submit }, 'Search')));
  const side = el('aside', { class: 'panel', id: 'filters' });
  const results = el('section', { id: 'results' });
  main.append(el('div', { class: 'cols' }, side, results));
  side.append(sliders(state));
  const params = Object.fromEntries([...state.keys()].map((k) => [k, state.getAll(k)]));
  params.limit = 25;
  let answer;
  try {
    answer = await api(`/search${qs(params)}`);
  } catch (e) {
    showError(results, e);
    return;
  }
  side.append(facets(answer.facets || {}, state));
  results.append(el('div', { class: 'dim', id: 'total' }, `${answer.total} matching tracks, each recording shown once`));
  const list = el('ul', { class: 'tracks' });
  const onTag = (g) => toggleTag(state, g);
  answer.results.forEach((t, i) => list.append(trackRow(t, { queue: answer.results, index: i, onTag })));
  results.append(list);
  if (!answer.results.length) results.append(el('p', { class: 'dim' }, 'Nothing matches: loosen a filter.'));
}

function toggleTag(state, tag) {
  const on = state.getAll('tags');
  state.delete('tags');
  for (const t of on) if (t !== tag) state.append('tags', t);
  if (!on.includes(tag)) state.append('tags', tag);
  go(state);
}

function facets(groups, state) {
  const on = state.getAll('tags');
  const out = el('div', { id: 'facets' }, el('h3', {}, 'Facets'));
  for (const [facet, counts] of Object.entries(groups)) {
    out.append(el('div', { class: 'facet' }, el('b', {}, facet),
      counts.map(({ tag, count }) => el('span', {
        class: on.includes(tag) ? 'chip on' : 'chip', 'data-tag': tag, onclick: () => toggleTag(state, tag),
      }, `${tag.split(':').slice(1).join(':')} ${count}`))));
  }
  return out;
}

function sliders(state) {
  const out = el('div', {}, el('h3', {}, 'Ranges'));
  for (const [name, label, lo, hi, step] of SLIDERS) {
    const min = el('input', { type: 'range', min: lo, max: hi, step, value: state.get(`${name}_min`) ?? lo, 'data-range': `${name}_min` });
    const max = el('input', { type: 'range', min: lo, max: hi, step, value: state.get(`${name}_max`) ?? hi, 'data-range': `${name}_max` });
    const shown = el('span', {});
    const paint = () => { shown.textContent = `${min.value} – ${max.value}`; };
    const apply = () => {
      for (const [input, edge] of [[min, lo], [max, hi]]) {
        const key = input.dataset.range;
        if (Number(input.value) === edge) state.delete(key); else state.set(key, input.value);
      }
      go(state);
    };
    for (const i of [min, max]) { i.addEventListener('input', paint); i.addEventListener('change', apply); }
    paint();
    out.append(el('div', { class: 'slider' }, el('label', {}, label, shown), min, max));
  }
  return out;
}

/// Suggestions for the word being typed: the syntax's prefixes, and known tags.
async function suggest(q, box) {
  const word = q.value.slice(0, q.selectionStart).split(/\s+/).pop().toLowerCase();
  box.replaceChildren();
  if (!word) { box.hidden = true; return; }
  let options = SYNTAX.filter((s) => s.startsWith(word) && s !== word);
  try {
    const wanted = word.startsWith('tag:') ? word.slice(4) : word;
    options = options.concat((await tags()).filter((t) => t.startsWith(wanted)).slice(0, 8).map((t) => `tag:${t}`));
  } catch { /* suggestions are a help, not a need */ }
  for (const o of options.slice(0, 10)) {
    box.append(el('li', { onmousedown: (e) => { e.preventDefault(); replaceWord(q, word, o); box.hidden = true; } }, o));
  }
  box.hidden = options.length === 0;
}

function replaceWord(q, word, text) {
  const before = q.value.slice(0, q.selectionStart);
  const after = q.value.slice(q.selectionStart);
  q.value = before.slice(0, before.length - word.length) + text + (text.endsWith(':') ? '' : ' ') + after.trimStart();
  q.focus();
}
