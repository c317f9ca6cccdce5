// The map: GET /v1/map (a deterministic sample of the catalogue on the embedding space's
// two principal axes) drawn on a canvas, coloured by an attribute or a tag. Hover shows a
// track, a click plays it, the wheel zooms and a drag pans. `window.motifMap` holds the
// drawn state (points, view, hover) for tests and for poking at from the console.

import { api, qs } from './api.js';
import { player } from './player.js';
import { el, describe, showError } from './ui.js';

const COLOURS = ['energy', 'tempo_bpm', 'danceability', 'acousticness', 'brightness', 'percussiveness', 'loudness_lufs'];

export async function show(main, _arg, state) {
  const colour = state.get('color') || 'energy';
  const sample = state.get('sample') || 5000;
  const pick = el('select', { id: 'map-color' }, COLOURS.map((c) => el('option', { value: c, selected: c === colour }, c)));
  const tag = el('input', { id: 'map-tag', placeholder: 'or a tag: mood:calm', value: colour.includes(':') ? colour : '' });
  const recolour = (c) => { location.hash = `#/map${qs({ color: c, sample })}`; };
  pick.addEventListener('change', () => recolour(pick.value));
  tag.addEventListener('keydown', (e) => { if (e.key === 'Enter') recolour(tag.value); });
  const info = el('span', { class: 'dim', id: 'map-info' }, 'loading…');
  const canvas = el('canvas', { id: 'map-canvas' });
  const tip = el('div', { id: 'map-tip' });
  main.append(el('h2', {}, 'The map'), el('div', { class: 'row' }, 'Colour by', pick, tag, info), canvas, tip,
    el('p', { class: 'dim' }, 'Hover to see a track, click to play it; wheel to zoom, drag to pan.'));
  let m;
  try {
    m = await api(`/map${qs({ sample, color: colour })}`);
  } catch (e) {
    info.textContent = '';
    showError(main, e);
    return;
  }
  const view = new MapView(canvas, tip, m);
  const round = (x) => (Math.abs(x) >= 10 ? x.toFixed(0) : x.toFixed(2));
  const scale = m.color.includes(':') ? 'blue: without the tag, red: with it' : `blue ${round(view.lo)} → red ${round(view.hi)}`;
  info.textContent = `${m.points.id.length} of ${m.total} tracks · space ${m.space} · axes explain ${Math.round((m.explained[0] + m.explained[1]) * 100)} % · ${m.color}: ${scale}`;
  view.draw();
  performance.mark('motif-map-drawn');
  canvas.dataset.drawn = m.points.id.length;
}

class MapView {
  constructor(canvas, tip, m) {
    Object.assign(this, { canvas, tip, m, hover: -1, cards: new Map() });
    const { x, y, v } = m.points;
    const nums = v.filter((a) => a !== null);
    this.lo = nums.length ? Math.min(...nums) : 0;
    this.hi = nums.length ? Math.max(...nums) : 1;
    if (m.color.includes(':')) { this.lo = 0; this.hi = 1; }
    if (this.hi <= this.lo) this.hi = this.lo + 1e-9;
    // Fewer points, bigger dots: a small catalogue stays visible, a large one legible.
    this.dot = v.length < 500 ? 7 : v.length < 5000 ? 4 : 2.5;
    const [x0, x1, y0, y1] = [Math.min(...x), Math.max(...x), Math.min(...y), Math.max(...y)];
    this.fit = { x0, y0, sx: 1 / Math.max(x1 - x0, 1e-9), sy: 1 / Math.max(y1 - y0, 1e-9) };
    this.zoom = 1;
    this.pan = [0, 0];
    window.motifMap = this;
    this.listen();
  }

  /// Screen position of point i (CSS pixels inside the canvas).
  screenOf(i) {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const px = ((this.m.points.x[i] - this.fit.x0) * this.fit.sx * 0.94 + 0.03) * w;
    const py = (1 - ((this.m.points.y[i] - this.fit.y0) * this.fit.sy * 0.94 + 0.03)) * h;
    return [(px - w / 2) * this.zoom + w / 2 + this.pan[0], (py - h / 2) * this.zoom + h / 2 + this.pan[1]];
  }

  colour(v) {
    if (v === null) return '#555';
    const t = Math.max(0, Math.min(1, (v - this.lo) / (this.hi - this.lo)));
    return `hsl(${240 - 240 * t}, 75%, ${45 + 10 * t}%)`;
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    c.width = c.clientWidth * dpr;
    c.height = c.clientHeight * dpr;
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, c.clientWidth, c.clientHeight);
    const size = Math.min(this.dot * 2, this.dot * Math.sqrt(this.zoom));
    const { v } = this.m.points;
    for (let i = 0; i < v.length; i++) {
      const [sx, sy] = this.screenOf(i);
      if (sx < -5 || sy < -5 || sx > c.clientWidth + 5 || sy > c.clientHeight + 5) continue;
      g.fillStyle = this.colour(v[i]);
      g.fillRect(sx - size / 2, sy - size / 2, size, size);
    }
    if (this.hover >= 0) {
      const [sx, sy] = this.screenOf(this.hover);
      g.strokeStyle = '#fff';
      g.strokeRect(sx - 5, sy - 5, 10, 10);
    }
  }

  /// The point nearest to (x, y), within 8 px; -1 when none.
  nearest(x, y) {
    let best = -1;
    let bestD = 64;
    for (let i = 0; i < this.m.points.id.length; i++) {
      const [sx, sy] = this.screenOf(i);
      const d = (sx - x) ** 2 + (sy - y) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }

  async card(i) {
    const id = this.m.points.id[i];
    if (!this.cards.has(id)) this.cards.set(id, api(`/tracks/${id}`));
    return this.cards.get(id);
  }

  listen() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener('mousedown', (e) => { drag = { x: e.offsetX, y: e.offsetY, moved: false }; });
    c.addEventListener('mouseup', async (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      const i = this.nearest(e.offsetX, e.offsetY);
      if (i >= 0) {
        const t = await this.card(i);
        player.play([t], 0);
      }
    });
    c.addEventListener('mousemove', async (e) => {
      if (drag) {
        const [dx, dy] = [e.offsetX - drag.x, e.offsetY - drag.y];
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        this.pan = [this.pan[0] + dx, this.pan[1] + dy];
        drag.x = e.offsetX;
        drag.y = e.offsetY;
        this.draw();
        return;
      }
      const i = this.nearest(e.offsetX, e.offsetY);
      if (i === this.hover) return;
      this.hover = i;
      this.draw();
      if (i < 0) { this.tip.style.display = 'none'; return; }
      Object.assign(this.tip.style, { display: 'block', left: `${e.clientX + 14}px`, top: `${e.clientY + 10}px` });
      this.tip.textContent = `track ${this.m.points.id[i]}`;
      try {
        const t = await this.card(i);
        if (this.hover === i) {
          this.tip.textContent = `${t.title || t.id} — ${(t.artists || []).join(', ')} · ${describe({ ...t, ...(t.attributes || {}) })} · ${this.m.color} ${this.m.points.v[i]}`;
        }
      } catch (err) {
        this.tip.textContent = String(err.message);
      }
    });
    c.addEventListener('mouseleave', () => { this.tip.style.display = 'none'; });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const f = e.deltaY < 0 ? 1.25 : 0.8;
      const w = c.clientWidth;
      const h = c.clientHeight;
      // Zoom about the cursor: the point under it stays put.
      this.pan = [
        (this.pan[0] - (e.offsetX - w / 2)) * f + (e.offsetX - w / 2),
        (this.pan[1] - (e.offsetY - h / 2)) * f + (e.offsetY - h / 2),
      ];
      this.zoom *= f;
      this.draw();
    }, { passive: false });
  }
}
