/**
 * The attribution rule of src/proxy/backend-disconnects.ts on its own, with a short settle delay:
 * which closes by the backend count towards a ban. The same rule runs against a real litecoind
 * (killed, restarted, disconnecting a misbehaving peer) in backend-disconnects.test.ts; here the
 * edge cases are driven directly, no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendDisconnectTracker, type Verdict } from '../../src/proxy/backend-disconnects.js';
import { waitFor } from '../support/wait.js';

const SETTLE = 30;

function tracker(count: number, survivor: () => boolean) {
  const verdicts: [string, Verdict][] = [];
  const banned: string[] = [];
  const t = new BackendDisconnectTracker(count, 60_000, { survivorSince: survivor, judged: (a, v) => verdicts.push([a, v]), limitReached: (a) => banned.push(a) }, SETTLE);
  return { t, verdicts, banned };
}

test('one peer disconnected while others live counts; the count bans', async () => {
  const { t, verdicts, banned } = tracker(2, () => true);
  t.backendClosed('198.51.100.1', true, 50);
  await waitFor(() => verdicts.length === 1, 2000, 'a verdict');
  assert.deepEqual(verdicts, [['198.51.100.1', 'counted']]);
  t.backendClosed('198.51.100.1', true, 50);
  await waitFor(() => banned.length === 1, 2000, 'the ban');
  assert.deepEqual(banned, ['198.51.100.1']);
  t.close();
});

test('the same address closed again and again right away is still that peer, not a mass close', async () => {
  const { t, verdicts } = tracker(10, () => true);
  for (let i = 0; i < 4; i++) t.backendClosed('198.51.100.2', true, 5);
  await waitFor(() => verdicts.length === 4, 2000, 'four verdicts');
  assert.ok(verdicts.every(([, v]) => v === 'counted'), JSON.stringify(verdicts));
  t.close();
});

test('not counted: before the handshake, a connect failure nearby, many addresses at once, no session survived', async () => {
  const pre = tracker(1, () => true);
  pre.t.backendClosed('198.51.100.3', false, 10);
  await new Promise((r) => setTimeout(r, SETTLE * 4));
  assert.deepEqual(pre.verdicts, [], 'a close before the handshake is no candidate');
  pre.t.close();

  const outage = tracker(1, () => true);
  outage.t.backendClosed('198.51.100.4', true, 10);
  outage.t.backendConnectFailed(); // within the settle delay after the close
  await waitFor(() => outage.verdicts.length === 1, 2000, 'a verdict');
  assert.deepEqual(outage.verdicts, [['198.51.100.4', 'outage']]);
  assert.deepEqual(outage.banned, []);
  outage.t.close();

  const mass = tracker(1, () => true);
  for (let i = 0; i < 8; i++) mass.t.backendClosed(`198.51.100.${10 + i}`, true, 8);
  await waitFor(() => mass.verdicts.length === 8, 2000, 'eight verdicts');
  assert.ok(mass.verdicts.every(([, v]) => v === 'massClose'), JSON.stringify(mass.verdicts));
  assert.deepEqual(mass.banned, []);
  mass.t.close();

  // two of a hundred sessions closed together: not a mass close
  const two = tracker(1, () => true);
  two.t.backendClosed('198.51.100.30', true, 100);
  two.t.backendClosed('198.51.100.31', true, 99);
  await waitFor(() => two.banned.length === 2, 2000, 'both counted and banned (count 1)');
  two.t.close();

  const alone = tracker(1, () => false);
  alone.t.backendClosed('198.51.100.40', true, 1);
  await waitFor(() => alone.verdicts.length === 1, 2000, 'a verdict');
  assert.deepEqual(alone.verdicts, [['198.51.100.40', 'noSurvivor']]);
  alone.t.close();
});

test('count 0 disables everything', async () => {
  const { t, verdicts } = tracker(0, () => true);
  t.backendClosed('198.51.100.50', true, 10);
  await new Promise((r) => setTimeout(r, SETTLE * 4));
  assert.deepEqual(verdicts, []);
  t.close();
});
