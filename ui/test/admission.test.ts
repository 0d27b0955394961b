import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/backend/errors';
import { createAdmission } from '../src/views/admission';
import { fakeBackend, fixture } from './helpers';

function withPending() {
  const s = fixture();
  s.peers = s.peers.map((p, i) => ({ ...p, admitted: i !== 0 }));
  return s;
}

describe('admission prompt', () => {
  it('shows only the peers the node says are pending, with PeerId and address', () => {
    const s = withPending();
    const a = createAdmission(fakeBackend({ decidePeer: vi.fn() }), vi.fn(), vi.fn());
    a.update(s);
    const cards = [...a.el.querySelectorAll('[data-peer]')];
    expect(cards.map((c) => c.getAttribute('data-peer'))).toEqual([s.peers[0]!.peer_id]);
    expect(cards[0]!.textContent).toContain(s.peers[0]!.address ?? 'address unknown');
    a.update(fixture());
    expect(a.el.hasAttribute('hidden')).toBe(true);
  });

  it('keeps the same card (and its buttons) across snapshots that change nothing about it', () => {
    const a = createAdmission(fakeBackend({ decidePeer: vi.fn() }), vi.fn(), vi.fn());
    a.update(withPending());
    const button = a.el.querySelector('[data-action="accept"]');
    a.update({ ...withPending(), seq: 99 });
    expect(a.el.querySelector('[data-action="accept"]')).toBe(button);
    const moved = withPending();
    moved.peers[0] = { ...moved.peers[0]!, address: '/ip4/127.0.0.9/tcp/1' };
    a.update(moved);
    expect(a.el.querySelector('[data-action="accept"]')).not.toBe(button);
    expect(a.el.textContent).toContain('/ip4/127.0.0.9/tcp/1');
  });

  it('accepts or ignores through the backend and renders the status after', async () => {
    const decidePeer = vi.fn(async () => ({}));
    const onStatus = vi.fn();
    const s = withPending();
    const a = createAdmission(fakeBackend({ decidePeer }), vi.fn(), onStatus);
    a.update(s);
    (a.el.querySelector('[data-action="accept"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(onStatus).toHaveBeenCalled());
    expect(decidePeer).toHaveBeenCalledWith(s.peers[0]!.peer_id, true);
    (a.el.querySelector('[data-action="ignore"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(decidePeer).toHaveBeenCalledTimes(2));
    expect(decidePeer).toHaveBeenLastCalledWith(s.peers[0]!.peer_id, false);
  });

  it('shows the node’s refusal in a toast', async () => {
    const toast = vi.fn();
    const decidePeer = vi.fn(async () => { throw new ApiError('admission', 'cannot keep the admission decision'); });
    const a = createAdmission(fakeBackend({ decidePeer }), toast, vi.fn());
    a.update(withPending());
    (a.el.querySelector('[data-action="accept"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(toast).toHaveBeenCalled());
    expect(toast.mock.calls[0]![0]).toContain('cannot keep the admission decision');
    expect(toast.mock.calls[0]![1]).toBe('error');
  });
});
