// Settings: the operator API key and backend URL (kept in this browser only), the theme, and
// a connection test that explains what is wrong.

import { api, settings } from '../lib/api.js';
import { errorBox, h, mount, toast } from '../lib/dom.js';

export function render(view, ctx) {
  const key = h('input', { type: 'password', id: 'set-key', value: settings.apiKey, size: 44, autocomplete: 'off', placeholder: 'SOFIIA_CONSOLE_API_KEY (empty in open dev mode)' });
  const showKey = h('button', { type: 'button', onclick: () => { key.type = key.type === 'password' ? 'text' : 'password'; showKey.textContent = key.type === 'password' ? 'Show' : 'Hide'; } }, 'Show');
  const url = h('input', { type: 'url', id: 'set-url', value: settings.backendUrl, size: 44, placeholder: window.location.origin });
  const theme = h('select', { id: 'set-theme' }, h('option', { value: '' }, 'follow the system'), h('option', { value: 'light' }, 'light'), h('option', { value: 'dark' }, 'dark'));
  theme.value = localStorage.getItem('sofiia.theme') || '';
  const result = h('div', { id: 'set-result', role: 'status' });

  async function test() {
    mount(result, h('p', { class: 'muted' }, 'Testing…'));
    try {
      const hl = await api('/api/health');
      // The health check needs no key; a list call shows whether the key is accepted.
      await api('/api/incidents', { query: { limit: 1 } });
      mount(result, h('div', { class: 'notice' },
        `Connected to ${hl.service} ${hl.version} (build ${hl.build_id}, env ${hl.env}) at ${settings.base}; `,
        hl.auth_required ? 'the key is accepted.' : 'this server runs without keys (open dev mode).'));
    } catch (e) {
      mount(result, errorBox(e, 'Connection test failed'));
    }
  }

  const form = h('form', { class: 'panel stack', id: 'settings-form', onsubmit: (e) => {
    e.preventDefault();
    const u = url.value.trim();
    if (u && !/^https?:\/\/[^/\s]+/i.test(u)) {
      mount(result, errorBox(new Error('the backend URL must start with http:// or https://'), 'Not saved'));
      return;
    }
    settings.apiKey = key.value.trim();
    settings.backendUrl = u;
    ctx.setTheme(theme.value);
    toast('Settings saved', 'ok');
    ctx.reconnect();
    test();
  } },
  h('label', { class: 'field' }, 'Operator API key (sent as Authorization: Bearer; stored in this browser)', h('div', { class: 'row' }, key, showKey)),
  h('label', { class: 'field' }, 'Backend (BFF) URL: empty means this server', url),
  h('label', { class: 'field' }, 'Theme', theme),
  h('div', { class: 'row' },
    h('button', { type: 'submit', class: 'primary', id: 'set-save' }, 'Save'),
    h('button', { type: 'button', onclick: test }, 'Test connection'),
    h('button', { type: 'button', onclick: () => { key.value = ''; url.value = ''; } }, 'Clear fields')),
  result);
  mount(view, h('h1', {}, 'Settings'), form,
    h('p', { class: 'muted' }, 'With a key configured on the server (always in prod), every call but the health check needs it. ',
      'A different backend URL must be listed in the server\'s CORS_ORIGINS.'));
}
