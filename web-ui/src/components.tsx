// Small shared pieces: the "last updated" mark, state badges, the confirmation dialog and the
// error line.
import type { ComponentChildren } from 'preact';
import { formatAgo } from './format';
import { isStale, type Freshness } from './stale';

export function LastUpdated({ freshness, now }: { freshness: Freshness; now: number }) {
  const stale = isStale(freshness, now);
  const label = freshness.last_success_ms === null
    ? (freshness.last_error ? 'no answer from the manager' : 'loading…')
    : `updated ${formatAgo(freshness.last_success_ms, now)}`;
  return (
    <span class={`last-updated ${stale ? 'stale' : 'fresh'}`} data-testid="last-updated"
          data-stale={String(stale)} title={freshness.last_error ?? ''}>
      <span class="dot" aria-hidden="true" />
      {label}{stale && freshness.last_success_ms !== null ? ' — stale' : ''}
    </span>
  );
}

export function Badge({ cls, children }: { cls: string; children: ComponentChildren }) {
  return <span class={`badge ${cls}`}>{children}</span>;
}

export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return <p class="error" role="alert" data-testid="error">{error}</p>;
}

export interface ConfirmRequest {
  title: string;
  detail: string;
  run: () => void;
}

export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null;
                                                       onClose: () => void }) {
  if (!request) return null;
  return (
    <div class="modal-backdrop" onClick={onClose}>
      <div class="modal" role="dialog" aria-modal="true" data-testid="confirm-dialog"
           onClick={(e) => e.stopPropagation()}>
        <h3>{request.title}</h3>
        <p>{request.detail}</p>
        <div class="modal-buttons">
          <button type="button" data-testid="confirm-no" onClick={onClose}>Cancel</button>
          <button type="button" class="primary" data-testid="confirm-yes" autoFocus
                  onClick={() => { onClose(); request.run(); }}>
            {request.title}
          </button>
        </div>
      </div>
    </div>
  );
}
