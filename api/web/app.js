// The page's router: `#/view/arg?query` picks a view module and hands it the main area.

import { player } from './player.js';
import * as search from './search.js';
import * as track from './track.js';
import * as playlist from './playlist.js';
import * as path from './path.js';
import * as map from './map.js';
import * as admin from './admin.js';
import { showError } from './ui.js';

const views = { search, track, playlist, path, map, admin };

async function route() {
  const [where, query = ''] = (location.hash.slice(2) || 'search').split('?');
  const [name, arg] = where.split('/');
  const view = views[name] || search;
  const main = document.getElementById('view');
  main.replaceChildren();
  main.dataset.view = name;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name);
  try {
    await view.show(main, arg, new URLSearchParams(query));
  } catch (e) {
    showError(main, e);
  }
  main.dataset.ready = name;
}

player.attach();
window.addEventListener('hashchange', route);
route().then(() => performance.mark('motif-interactive'));
