// The player bar: one <audio> element fed from /v1/tracks/{id}/audio, playing through a
// queue (a result list, a playlist, a path).

import { audioUrl } from './api.js';

class Player {
  constructor() { this.queue = []; this.index = -1; }

  attach() {
    this.audio = document.getElementById('player');
    this.label = document.getElementById('now-playing');
    this.audio.addEventListener('ended', () => this.step(1));
    this.audio.addEventListener('error', () => {
      this.label.textContent = `Cannot play ${this.current()?.title || ''}: the audio could not be loaded`;
    });
    document.getElementById('next').onclick = () => this.step(1);
    document.getElementById('prev').onclick = () => this.step(-1);
  }

  current() { return this.queue[this.index]; }

  play(queue, index = 0) {
    this.queue = queue;
    this.index = index;
    const t = this.current();
    if (!t) return;
    this.audio.src = audioUrl(t.id);
    this.label.textContent = `${t.title || `track ${t.id}`} — ${(t.artists || []).join(', ')}`;
    this.label.dataset.id = t.id;
    this.audio.play().catch((e) => { this.label.textContent = `Cannot play: ${e.message}`; });
  }

  step(d) {
    if (this.index + d >= 0 && this.index + d < this.queue.length) this.play(this.queue, this.index + d);
  }
}

export const player = new Player();
