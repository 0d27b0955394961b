import './styles/tokens.css';
import './styles/base.css';
import './styles/layout.css';
import './styles/header.css';
import './styles/lungs.css';
import './styles/timer.css';
import './styles/graph.css';
import './styles/merkle.css';
import './styles/panels.css';
import './styles/state.css';
import './styles/responsive.css';
import './styles/admission.css';
import { createApp } from './app';
import { selectBackend } from './backend';
import { captureTokenFromHash } from './backend/http';
import { applyPresentation, applyTheme, initialPresentation, initialTheme, isPresentation } from './prefs';

applyTheme(initialTheme());
applyPresentation(initialPresentation());
captureTokenFromHash();

document.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement | null;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  if (e.key === 'p' && !e.ctrlKey && !e.metaKey && !e.altKey) applyPresentation(!isPresentation(), true);
});

const root = document.getElementById('app');
// `?debug=snapshots`: the page keeps a trace of every status snapshot it was offered.
const trace = new URLSearchParams(location.search).get('debug') === 'snapshots';
if (root) createApp(root, selectBackend(), { trace });
