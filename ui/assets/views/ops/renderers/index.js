// A finished run's result, rendered for its graph: one renderer per graph that has one, JSON
// for the rest (and for a result a renderer cannot read: never an exception in a view).

import { h } from '../../../lib/dom.js';
import { postmortemResult } from './postmortem.js';
import { triageResult } from './triage.js';

/** Graph name → `result => element`. A new graph's renderer is one more entry. */
const RENDERERS = {
  incident_triage: triageResult,
  postmortem_draft: postmortemResult,
};

/** The result of a run of `graph`. */
export function renderResult(graph, result) {
  const render = RENDERERS[graph];
  try {
    if (render) return render(result);
  } catch (e) {
    console.error('result rendering failed', e);
  }
  return h('pre', { class: 'json panel' }, JSON.stringify(result, null, 2));
}
