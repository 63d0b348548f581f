// What every settings card does on submit: send its changes with `PUT /api/settings`,
// hand the saved settings up, and keep the refusal (for the fields' reasons) or "saved".

import { api } from '$lib/api';
import type { Settings, SettingsChanges } from '$lib/types';

export interface Saver {
  /** The last refusal (an `ApiError` with a reason per field), or null. */
  readonly error: unknown;
  /** Whether the last submit was saved. */
  readonly saved: boolean;
  save: (changes: SettingsChanges) => Promise<void>;
}

export function settingsSaver(onsaved: (s: Settings) => void): Saver {
  const state = $state<{ error: unknown; saved: boolean }>({ error: null, saved: false });
  return {
    get error() {
      return state.error;
    },
    get saved() {
      return state.saved;
    },
    async save(changes) {
      state.error = null;
      state.saved = false;
      try {
        onsaved(await api.settings.update(changes));
        state.saved = true;
      } catch (e) {
        state.error = e;
      }
    }
  };
}
