/* global EventSource, setTimeout */
import { post } from './api.js';
import { apply, loadSnapshot } from './store.js';

/**
 * Follows GET /api/v1/events. EventSource cannot send a token, so each
 * connection starts with a one-minute ticket from POST /api/v1/events/ticket.
 * After any break the snapshot is read again, so nothing missed while
 * disconnected stays missing.
 */

const TYPES = ['package', 'package-removed', 'dp-status', 'status-message', 'address', 'backlog'];

export function connectLive(onState) {
  let source = null;
  let stopped = false;
  let retryMs = 1000;

  const open = async () => {
    if (stopped) return;
    onState('connecting');
    let ticket;
    try {
      ticket = (await post('/events/ticket')).ticket;
    } catch (err) {
      if (err.status === 401) return; // signed out by the API layer
      onState('offline');
      setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
      return;
    }
    if (stopped) return;
    source = new EventSource(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`);
    source.addEventListener('hello', () => {
      retryMs = 1000;
      onState('live');
      // The stream sends changes from its first read on; read the whole state now and once more after that read.
      void loadSnapshot().catch(() => undefined);
      setTimeout(() => void loadSnapshot().catch(() => undefined), 1200);
    });
    for (const type of TYPES) {
      source.addEventListener(type, (e) => {
        try {
          apply(type, JSON.parse(e.data));
        } catch {
          // A frame that does not parse is skipped; the next snapshot corrects the view.
        }
      });
    }
    source.onerror = () => {
      // The browser retries by itself with the same URL; once the ticket has expired that fails for good.
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        onState('offline');
        setTimeout(open, retryMs);
        retryMs = Math.min(retryMs * 2, 15000);
      } else {
        onState('connecting');
      }
    };
  };

  void open();
  return () => {
    stopped = true;
    source?.close();
    source = null;
  };
}
