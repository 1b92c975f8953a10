// The console's HTTP client: the backend URL and API key come from Settings (kept in this
// browser's localStorage); the key goes out as `Authorization: Bearer`. API errors become
// `ApiError`s whose `describe()` is a sentence an operator can act on. Every request gives up
// after a timeout (DEFAULT_TIMEOUT_MS unless the caller sets one), so no view waits forever
// on a slow or dead backend.

const KEY = 'sofiia.apiKey';
const URL_KEY = 'sofiia.backendUrl';
/** How long a request may take when the caller does not say (the body's download included). */
export const DEFAULT_TIMEOUT_MS = 10000;

export const settings = {
  get apiKey() { return localStorage.getItem(KEY) || ''; },
  set apiKey(v) { v ? localStorage.setItem(KEY, v) : localStorage.removeItem(KEY); },
  /** Backend base URL without a trailing slash; empty = the server this page came from. */
  get backendUrl() { return (localStorage.getItem(URL_KEY) || '').replace(/\/+$/, ''); },
  set backendUrl(v) { v ? localStorage.setItem(URL_KEY, v.trim().replace(/\/+$/, '')) : localStorage.removeItem(URL_KEY); },
  /** The effective base: the configured URL or this page's origin. */
  get base() { return this.backendUrl || window.location.origin; },
};

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = extra.field || null;
    this.retryAfter = extra.retryAfter || null;
  }

  /** A readable explanation, with what to do about it. */
  describe() {
    if (this.code === 'bad_response') return `Unreadable answer from sofiia: ${this.message}.`;
    switch (this.status) {
      case 0:
        if (this.code === 'timeout') return `No answer from sofiia at ${settings.base}: ${this.message}. It may be restarting or overloaded.`;
        if (this.code === 'aborted') return 'The request was cancelled.';
        return `Cannot reach sofiia at ${settings.base}: ${this.message}. Check that it is running and the backend URL in Settings.`;
      case 401:
        return `Not signed in: ${this.message}. Set the operator API key in Settings.`;
      case 403:
        return `Not allowed: ${this.message}.`;
      case 404:
        return `Not found: ${this.message}.`;
      case 409:
        return `Conflict: ${this.message}.`;
      case 413:
        return `Too large: ${this.message}.`;
      case 422:
        return `Invalid input: ${this.message}.`;
      case 429:
        return `Rate limited: ${this.message}.${this.retryAfter ? ` Try again in ${this.retryAfter} s.` : ''}`;
      case 504:
        return `Timed out: ${this.message}.`;
      default:
        return this.status >= 500
          ? `Server error (${this.status}): ${this.message}.`
          : `Request failed (${this.status}): ${this.message}.`;
    }
  }
}

/**
 * Call the API. `opts`: `method`, `body` (sent as JSON), `query` (object; empty values are
 * left out), `headers` (extra request headers), `text` (resolve to the body as text instead
 * of parsed JSON), `raw` (resolve to the Response; its body is read outside the timeout),
 * `signal` (an AbortSignal: aborting it fails the call with code `aborted`), `timeoutMs`
 * (give up after this long, code `timeout`; default DEFAULT_TIMEOUT_MS). Fails with an
 * `ApiError` only.
 */
export async function api(path, opts = {}) {
  const url = new URL(settings.base + path);
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (settings.apiKey) headers.Authorization = `Bearer ${settings.apiKey}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const ctl = new AbortController();
  const outer = opts.signal || null;
  const onAbort = () => ctl.abort();
  if (outer) {
    if (outer.aborted) ctl.abort();
    else outer.addEventListener('abort', onAbort, { once: true });
  }
  let timedOut = false;
  const timeoutMs = opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
  // Why an aborted request failed: our timeout or the caller's signal.
  const abortError = () => {
    if (timedOut) return new ApiError(0, 'timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`);
    if (ctl.signal.aborted) return new ApiError(0, 'aborted', 'request cancelled');
    return null;
  };
  try {
    let res;
    try {
      res = await fetch(url, { method: opts.method || 'GET', headers, body, cache: 'no-store', signal: ctl.signal });
    } catch (e) {
      throw abortError() || new ApiError(0, 'unreachable', e.message || 'network error');
    }
    if (!res.ok) {
      let code = 'http_' + res.status;
      let message = res.statusText || 'request failed';
      let field = null;
      try {
        const j = await res.json();
        if (j && j.error) {
          code = j.error.code || code;
          message = j.error.message || message;
          field = j.error.field || null;
        }
      } catch { /* not JSON (or cut off): keep the status text */ }
      throw new ApiError(res.status, code, message, {
        field,
        retryAfter: res.headers.get('Retry-After'),
      });
    }
    if (opts.raw) return res;
    if (res.status === 204) return null;
    try {
      return await (opts.text ? res.text() : res.json());
    } catch (e) {
      throw abortError() || new ApiError(res.status, 'bad_response', `the answer to ${path} could not be read (${e.message || e})`);
    }
  } finally {
    clearTimeout(timer);
    if (outer) outer.removeEventListener('abort', onAbort);
  }
}

/** The WebSocket URL of the live event stream (the key in the query: browsers cannot set headers). */
export function eventsUrl(types) {
  const u = new URL(settings.base + '/ws/events');
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (settings.apiKey) u.searchParams.set('api_key', settings.apiKey);
  if (types) u.searchParams.set('types', types);
  return u.toString();
}
