// A song path: tracks walking from one track to another in even steps (GET /v1/path).

import { api, qs } from './api.js';
import { player } from './player.js';
import { el, showError, trackRow } from './ui.js';

export async function show(main, _arg, state) {
  const from = el('input', { id: 'path-from', type: 'number', placeholder: 'from id', value: state.get('from') || '' });
  const to = el('input', { id: 'path-to', type: 'number', placeholder: 'to id', value: state.get('to') || '' });
  const steps = el('input', { id: 'path-steps', type: 'number', min: 2, max: 100, value: state.get('steps') || 8 });
  const out = el('section', { id: 'path' });
  const walk = async () => {
    out.replaceChildren();
    try {
      const p = await api(`/path${qs({ from: from.value, to: to.value, steps: steps.value })}`);
      const tracks = p.tracks.map((x) => x.track);
      out.append(el('button', { id: 'path-play', onclick: () => player.play(tracks, 0) }, '▶ Play the path'));
      const list = el('ul', { class: 'tracks' });
      p.tracks.forEach((x, i) => list.append(trackRow(x.track, { queue: tracks, index: i, extra: `step ${x.position} · ${x.target_similarity}` })));
      out.append(list);
    } catch (e) {
      showError(out, e);
    }
  };
  main.append(el('h2', {}, 'Song path'), el('div', { class: 'row panel' }, 'From', from, 'to', to, 'in', steps, 'steps',
    el('button', { id: 'path-go', onclick: walk }, 'Walk')), out);
  if (from.value && to.value) await walk();
}
