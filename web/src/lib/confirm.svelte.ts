// One confirmation dialog for the whole app: `confirmAction` opens it and resolves to
// whether the person confirmed. Destructive actions go through it. `ask` does the same
// with an optional checkbox (`option`), for a choice that goes with the confirmation.

export interface ConfirmRequest {
  title: string;
  message: string;
  confirmLabel?: string;
  /** Styles the confirm button as destructive. */
  danger?: boolean;
  /** The label of a checkbox shown under the message, unticked at first. */
  option?: string;
}

/** What the person answered: confirmed or not, and whether the option was ticked. */
export interface Answer {
  confirmed: boolean;
  option: boolean;
}

interface Pending extends ConfirmRequest {
  checked: boolean;
  resolve: (answer: Answer) => void;
}

export const confirmState = $state<{ pending: Pending | null }>({ pending: null });

export function ask(request: ConfirmRequest): Promise<Answer> {
  confirmState.pending?.resolve({ confirmed: false, option: false });
  return new Promise((resolve) => {
    confirmState.pending = { ...request, checked: false, resolve };
  });
}

export async function confirmAction(request: ConfirmRequest): Promise<boolean> {
  return (await ask(request)).confirmed;
}

export function answer(confirmed: boolean): void {
  const pending = confirmState.pending;
  confirmState.pending = null;
  pending?.resolve({ confirmed, option: confirmed && pending.checked });
}
