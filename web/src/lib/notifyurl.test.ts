import { describe, expect, it } from 'vitest';
import { buildUrl } from './notifyurl';

describe('buildUrl', () => {
  it('writes the forms the daemon parses', () => {
    expect(buildUrl('telegram', { token: '123456:ABC-def', chats: '-100123, @ops' })).toBe(
      'telegram://123456:ABC-def@telegram?chats=-100123,%40ops'
    );
    expect(buildUrl('gotify', { server: 'http://127.0.0.1:8080/', token: 'T.1' })).toBe(
      'gotify://127.0.0.1:8080/T.1?disabletls=yes'
    );
    expect(
      buildUrl('email', {
        host: 'mail.example.com',
        port: '465',
        encryption: 'implicit',
        username: 'bot@example.com',
        password: 'p@ss',
        from: 'bot@example.com',
        to: 'a@example.com,b@example.com'
      })
    ).toBe(
      'smtp://bot%40example.com:p%40ss@mail.example.com:465/?from=bot%40example.com&to=a%40example.com,b%40example.com&encryption=implicit'
    );
    expect(buildUrl('matrix', { server: 'https://matrix.example.com', token: 'syt', rooms: '!a:example.com' })).toBe(
      'matrix://:syt@matrix.example.com/?rooms=!a%3Aexample.com'
    );
    expect(buildUrl('pushover', { token: 'app', user: 'usr', devices: '' })).toBe('pushover://shoutrrr:app@usr/');
    expect(buildUrl('apprise', { server: 'https://apprise.example.com', key: 'team', tags: 'ops' })).toBe(
      'apprise+https://apprise.example.com/notify/team?tags=ops'
    );
  });

  it('stays empty until the required fields are there', () => {
    expect(buildUrl('telegram', { token: '1:A' })).toBe('');
    expect(buildUrl('email', { host: 'mail.example.com' })).toBe('');
    expect(buildUrl('webhook', { url: 'https://x' })).toBe('');
  });
});
