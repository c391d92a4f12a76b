#!/usr/bin/env node
/**
 * Records byte-exact P2P traffic between REAL nodes (litecoind 0.21 = Bitcoin Core 0.21's P2P
 * code, and bcoin 1.0.2) into test/fixtures/real-p2p/, through test/support/tcp-recorder (a
 * relay that copies every byte and changes none).
 *
 *   npm run build && node scripts/record-real-fixtures.mjs [outdir]
 *
 * It uses the compiled harness in dist/test/support/. Each stream is checked before it is
 * written: it decodes with the project's FrameDecoder (checksum `always`) and ends on a frame
 * boundary. It writes <name>.bin per direction and manifest.json (bytes, sha256, frame count and
 * commands per file, versions, date). test/codec/real-fixtures.test.ts checks the files against
 * the manifest. See test/fixtures/real-p2p/README.md.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => new URL(`../dist/${p}`, import.meta.url).href;
const { startLitecoind, litecoindVersion } = await import(dist('test/support/litecoind.js'));
const { startBcoin, bcoinVersion } = await import(dist('test/support/bcoin-node.js'));
const { TcpRecorder } = await import(dist('test/support/tcp-recorder.js'));
const { waitFor, sleep } = await import(dist('test/support/wait.js'));
const { decodeFrames, NETWORKS } = await import(dist('src/codec/index.js'));

const outdir = path.resolve(process.argv[2] ?? path.join(root, 'test/fixtures/real-p2p'));
mkdirSync(outdir, { recursive: true });

const manifest = {
  recordedAt: new Date().toISOString(),
  recordedWith: {
    litecoind: litecoindVersion(),
    bcoin: bcoinVersion(),
    node: process.version,
    script: 'scripts/record-real-fixtures.mjs',
  },
  network: 'regtest (magic fabfb5da)',
  sessions: [],
};

function summarize(buf) {
  const frames = decodeFrames(buf, { network: NETWORKS.regtest, checksum: 'always' });
  const commands = {};
  for (const f of frames) commands[f.command] = (commands[f.command] ?? 0) + 1;
  return { frames: frames.length, commands, order: frames.map((f) => f.command) };
}

/** Write both directions of recorder connection #0 after checking they decode cleanly. */
function save(recorder, session) {
  if (recorder.connections.length !== 1) {
    throw new Error(`${session.name}: expected exactly one relayed connection, got ${recorder.connections.length}`);
  }
  const files = [];
  for (const [direction, file, from, to] of [
    ['clientToTarget', session.clientToTargetFile, session.client, session.target],
    ['targetToClient', session.targetToClientFile, session.target, session.client],
  ]) {
    const bytes = recorder.bytes(0, direction);
    const summary = summarize(bytes); // throws on any framing error or a trailing partial frame
    writeFileSync(path.join(outdir, file), bytes);
    files.push({
      file,
      from,
      to,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      frames: summary.frames,
      commands: summary.commands,
      firstCommands: summary.order.slice(0, 12),
    });
    console.log(`${file}: ${bytes.length} bytes, ${summary.frames} frames, ${JSON.stringify(summary.commands)}`);
  }
  manifest.sessions.push({ name: session.name, description: session.description, facts: session.facts, files });
}

const stops = [];
async function cleanup() {
  while (stops.length) await stops.pop()().catch((e) => console.error('cleanup:', e));
}

try {
  // 1. litecoind B syncs 103 blocks (one with a segwit spend) and gets a relayed tx from litecoind A.
  {
    const a = await startLitecoind({ name: 'A' });
    stops.push(() => a.stop());
    const addrA = await a.getNewAddress();
    await a.generate(101, addrA); // coinbase maturity is 100
    const payTo = await a.getNewAddress();
    const minedTxid = await a.rpc('sendtoaddress', [payTo, 1.5]);
    await a.generate(1, addrA); // block 102 holds the spend
    const recorder = await TcpRecorder.start('127.0.0.1', a.p2pPort);
    stops.push(() => recorder.close());
    const b = await startLitecoind({ name: 'B', disableWallet: true, extraArgs: [`-connect=${recorder.address}`] });
    stops.push(() => b.stop());
    await waitFor(async () => (await b.getBlockCount()) === 102, 60_000, 'B to sync 102 blocks');
    // tx relay: inbound peers get tx announcements with a ~5 s Poisson delay in 0.21
    const relayedTxid = await a.rpc('sendtoaddress', [payTo, 0.25]);
    await waitFor(async () => (await b.rpc('getrawmempool')).includes(relayedTxid), 60_000, 'B to receive the relayed tx');
    const hashes = await a.generate(1, addrA); // block 103 holds the relayed tx: announced to B
    await waitFor(async () => (await b.getBestBlockHash()) === hashes[0], 30_000, 'B to get block 103');
    await sleep(500);
    await b.stop(); // B shuts down cleanly and closes its side
    stops.pop();
    await waitFor(() => recorder.connections[0]?.closed, 10_000, 'the relayed connection to close');
    save(recorder, {
      name: 'litecoind-0.21 block sync and tx relay',
      description:
        'litecoind B (-connect to the recorder, outbound) syncs from litecoind A (inbound side) through a byte-copying relay: version handshake, headers-first sync of 102 regtest blocks (block 102 has a P2WPKH spend), a wallet tx relayed A -> B (wtxidrelay inv/getdata/tx), block 103 announced and fetched, then B stops.',
      client: 'litecoind B',
      target: 'litecoind A',
      clientToTargetFile: 'litecoind-0.21-b-to-a.bin',
      targetToClientFile: 'litecoind-0.21-a-to-b.bin',
      facts: { blocks: 103, txInBlock102: minedTxid, relayedTx: relayedTxid, block103: hashes[0] },
    });
    await cleanup();
  }

  // 2. bcoin B syncs 12 blocks from bcoin A, then block 13 is announced.
  {
    const a = await startBcoin({ name: 'bcoin A' });
    stops.push(() => a.stop());
    await a.mine(12);
    const recorder = await TcpRecorder.start('127.0.0.1', a.port);
    stops.push(() => recorder.close());
    const b = await startBcoin({ name: 'bcoin B', listen: false });
    stops.push(() => b.stop());
    b.connectTo('127.0.0.1', recorder.port);
    await b.waitForHeight(12, 30_000);
    const [h13] = await a.mine(1);
    await waitFor(() => b.tipHash() === h13, 30_000, 'bcoin B to get block 13');
    await sleep(500);
    await b.stop();
    stops.pop();
    await waitFor(() => recorder.connections[0]?.closed, 10_000, 'the relayed connection to close');
    save(recorder, {
      name: 'bcoin-1.0.2 block sync',
      description:
        'bcoin B (outbound, its loader peer is the recorder) syncs 12 regtest blocks (segwit coinbase with witness commitment) from bcoin A, then A mines block 13 and announces it; then B closes.',
      client: 'bcoin B',
      target: 'bcoin A',
      clientToTargetFile: 'bcoin-1.0.2-b-to-a.bin',
      targetToClientFile: 'bcoin-1.0.2-a-to-b.bin',
      facts: { blocks: 13, block13: h13 },
    });
    await cleanup();
  }

  // 3. bcoin (outbound) meets litecoind: handshake across implementations; chains differ.
  {
    const ltc = await startLitecoind({ name: 'ltc', disableWallet: true });
    stops.push(() => ltc.stop());
    await ltc.generate(3, 'rltc1qum065ufgfxczah04xzs8t6rln3dc4vf2s9wssv');
    const recorder = await TcpRecorder.start('127.0.0.1', ltc.p2pPort);
    stops.push(() => recorder.close());
    const bc = await startBcoin({ name: 'bcoin' });
    stops.push(() => bc.stop());
    bc.connectTo('127.0.0.1', recorder.port);
    await bc.waitForPeers(1, 20_000);
    await ltc.waitForPeers(1, 20_000);
    await sleep(2000); // let the post-handshake messages (getheaders, headers, sendcmpct, ...) pass
    await bc.stop();
    stops.pop();
    await waitFor(() => recorder.connections[0]?.closed, 10_000, 'the relayed connection to close');
    save(recorder, {
      name: 'bcoin-1.0.2 meets litecoind-0.21',
      description:
        'bcoin (outbound) connects to litecoind, which has mined 3 blocks. Both finish the version handshake and exchange their post-handshake messages; they cannot sync because litecoin regtest has another genesis block. bcoin then closes.',
      client: 'bcoin',
      target: 'litecoind',
      clientToTargetFile: 'bcoin-to-litecoind.bin',
      targetToClientFile: 'litecoind-to-bcoin.bin',
      facts: {},
    });
    await cleanup();
  }

  writeFileSync(path.join(outdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${manifest.sessions.length * 2} streams and manifest.json to ${outdir}`);
} finally {
  await cleanup();
}
