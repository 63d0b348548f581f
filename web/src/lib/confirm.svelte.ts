// One confirmation dialog for the whole app: `confirmAction` opens it and resolves to
// whether the person confirmed. Destructive actions go through it.

export interface ConfirmRequest {
  title: string;
  message: string;
  confirmLabel?: string;
  /** Styles the confirm button as destructive. */
  danger?: boolean;
}

interface Pending extends ConfirmRequest {
  resolve: (confirmed: boolean) => void;
}

export const confirmState = $state<{ pending: Pending | null }>({ pending: null });

export function confirmAction(request: ConfirmRequest): Promise<boolean> {
  confirmState.pending?.resolve(false);
  return new Promise((resolve) => {
    confirmState.pending = { ...request, resolve };
  });
}

export function answer(confirmed: boolean): void {
  const pending = confirmState.pending;
  confirmState.pending = null;
  pending?.resolve(confirmed);
}
