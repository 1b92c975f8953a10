// Ops: the graph runner's room, one file per page under views/ops/: the home and a graph's
// form (graphs.js), the run history (runs.js), one run followed live (run.js), work waiting
// for a decision (requeue.js), and the results rendered per graph (renderers/).
//
// URLs: `#/ops`, `#/ops/graphs/<name>`, `#/ops/runs?graph=&status=`, `#/ops/runs/<run_id>`.

import { isRunId } from '../lib/runs.js';
import { renderGraph, renderHome } from './ops/graphs.js';
import { renderNotRunId, renderRun } from './ops/run.js';
import * as history from './ops/runs.js';

export function render(view, ctx) {
  const [, a, b] = ctx.parts;
  if (a === 'runs' && b) return isRunId(b) ? renderRun(view, ctx, b) : renderNotRunId(view, b);
  if (a === 'runs') return history.render(view, ctx);
  if (a === 'graphs' && b) return renderGraph(view, ctx, b);
  return renderHome(view, ctx);
}
