// The one-URL form of a notification target, built from a channel's own fields (token,
// chat ids, mail server, …) so nobody has to know shoutrrr's syntax. The daemon parses and
// checks the URL (src/notify/url.rs); this only writes it.

import type { NotificationKind } from './types';

export interface ChannelField {
  key: string;
  label: string;
  hint?: string;
  secret?: boolean;
  options?: string[];
}

/** The fields each service channel asks for; plain webhook channels take the URL alone. */
export const CHANNEL_FIELDS: Partial<Record<NotificationKind, ChannelField[]>> = {
  telegram: [
    { key: 'token', label: 'Bot token', hint: 'from @BotFather, like 123456:ABC-DEF…', secret: true },
    { key: 'chats', label: 'Chat ids', hint: 'comma-separated ids or @channel names' }
  ],
  gotify: [
    { key: 'server', label: 'Gotify server', hint: 'https://gotify.example.com' },
    { key: 'token', label: 'Application token', secret: true }
  ],
  email: [
    { key: 'host', label: 'SMTP server' },
    { key: 'port', label: 'Port', hint: '587 for STARTTLS, 465 for implicit TLS' },
    { key: 'encryption', label: 'Encryption', options: ['starttls', 'implicit', 'none'] },
    { key: 'username', label: 'User name' },
    { key: 'password', label: 'Password', secret: true },
    { key: 'from', label: 'From address' },
    { key: 'to', label: 'To addresses', hint: 'comma-separated' }
  ],
  matrix: [
    { key: 'server', label: 'Homeserver', hint: 'https://matrix.example.com' },
    { key: 'token', label: 'Access token', secret: true },
    { key: 'rooms', label: 'Room ids', hint: 'comma-separated, like !abc:example.com' }
  ],
  pushover: [
    { key: 'token', label: 'Application token', secret: true },
    { key: 'user', label: 'User or group key' },
    { key: 'devices', label: 'Devices', hint: 'comma-separated; empty: all' }
  ],
  apprise: [
    { key: 'server', label: 'Apprise API server', hint: 'https://apprise.example.com' },
    { key: 'key', label: 'Configuration key' },
    { key: 'tags', label: 'Tags', hint: 'comma-separated; empty: all' }
  ]
};

const enc = encodeURIComponent;
const list = (text: string | undefined) =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(enc)
    .join(',');

/** `https://host:port/prefix` → the host part and whether TLS is off. */
function server(text: string | undefined): { rest: string; plain: boolean } {
  const t = (text ?? '').trim().replace(/\/+$/, '');
  if (t.startsWith('http://')) return { rest: t.slice('http://'.length), plain: true };
  return { rest: t.replace(/^https:\/\//, ''), plain: false };
}

/** The target URL for a channel's fields; `''` until the required ones are filled. */
export function buildUrl(kind: NotificationKind, f: Record<string, string>): string {
  const v = (k: string) => (f[k] ?? '').trim();
  switch (kind) {
    case 'telegram':
      if (!v('token') || !list(v('chats'))) return '';
      return `telegram://${v('token')
        .split(':')
        .map(enc)
        .join(':')}@telegram?chats=${list(v('chats'))}`;
    case 'gotify': {
      const s = server(v('server'));
      if (!s.rest || !v('token')) return '';
      return `gotify://${s.rest}/${enc(v('token'))}${s.plain ? '?disabletls=yes' : ''}`;
    }
    case 'email': {
      if (!v('host') || !list(v('to'))) return '';
      const user = v('username') ? `${enc(v('username'))}${v('password') ? `:${enc(v('password'))}` : ''}@` : '';
      const port = v('port') ? `:${v('port')}` : '';
      const from = v('from') ? `from=${enc(v('from'))}&` : '';
      return `smtp://${user}${v('host')}${port}/?${from}to=${list(v('to'))}&encryption=${v('encryption') || 'starttls'}`;
    }
    case 'matrix': {
      const s = server(v('server'));
      if (!s.rest || !v('token') || !list(v('rooms'))) return '';
      return `matrix://:${enc(v('token'))}@${s.rest}/?rooms=${list(v('rooms'))}${s.plain ? '&disabletls=yes' : ''}`;
    }
    case 'pushover': {
      if (!v('token') || !v('user')) return '';
      const devices = list(v('devices'));
      return `pushover://shoutrrr:${enc(v('token'))}@${enc(v('user'))}/${devices ? `?devices=${devices}` : ''}`;
    }
    case 'apprise': {
      const base = v('server').replace(/\/+$/, '');
      if (!base || !v('key')) return '';
      const tags = list(v('tags'));
      return `apprise+${base}/notify/${enc(v('key'))}${tags ? `?tags=${tags}` : ''}`;
    }
    default:
      return '';
  }
}
