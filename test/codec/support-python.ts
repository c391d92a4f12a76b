import { spawnSync } from 'node:child_process';
import { simulatedMissing } from '../support/without.js';

/**
 * python3-bitcoinlib (Debian package python3-bitcoinlib) as an independent implementation.
 * Each case is a command and a payload; python deserializes it with its own classes, reports
 * the fields it read, serializes them again and reports the bytes it left unread.
 */
const SCRIPT = String.raw`
import json, socket, sys
from io import BytesIO
from bitcoin.core import CBlock, CBlockHeader, CTransaction, b2x
import bitcoin.messages as M

V4 = b"\x00" * 10 + b"\xff" * 2
def ip16(ip):
    return socket.inet_pton(socket.AF_INET6, ip) if ":" in ip else V4 + socket.inet_pton(socket.AF_INET, ip)
def addr(a, with_time=True):
    d = {"services": str(a.nServices), "ip": b2x(ip16(a.ip)), "port": a.port}
    if with_time: d["time"] = a.nTime
    return d
def invs(m):
    return [{"type": i.type & 0xffffffff, "hash": b2x(i.hash)} for i in m.inv]
def locator(m):
    return {"version": m.locator.nVersion & 0xffffffff, "locator": [b2x(h) for h in m.locator.vHave], "hashStop": b2x(m.hashstop)}
def header(h):
    return {"version": h.nVersion, "prevBlock": b2x(h.hashPrevBlock), "merkleRoot": b2x(h.hashMerkleRoot), "time": h.nTime, "bits": h.nBits, "nonce": h.nNonce, "hash": b2x(h.GetHash())}

def fields(cmd, f):
    if cmd == "blockheader":
        h = CBlockHeader.stream_deserialize(f); return header(h), h.serialize()
    if cmd == "tx":
        t = CTransaction.stream_deserialize(f); return {"txid": b2x(t.GetTxid()), "wtxid": b2x(t.GetHash())}, t.serialize()
    if cmd == "block":
        b = CBlock.stream_deserialize(f)
        return {"hash": b2x(b.GetHash()), "txids": [b2x(t.GetTxid()) for t in b.vtx], "wtxids": [b2x(t.GetHash()) for t in b.vtx]}, b.serialize()
    m = M.messagemap[cmd.encode()].msg_deser(f)
    out = BytesIO(); m.msg_ser(out); ser = out.getvalue()
    if cmd == "version":
        return {"version": m.nVersion, "services": str(m.nServices), "timestamp": str(m.nTime), "addrRecv": addr(m.addrTo, False), "addrFrom": addr(m.addrFrom, False),
                "nonce": str(m.nNonce), "userAgent": b2x(m.strSubVer), "startHeight": m.nStartingHeight, "relay": m.fRelay}, ser
    if cmd in ("inv", "getdata", "notfound"): return invs(m), ser
    if cmd in ("getheaders", "getblocks"): return locator(m), ser
    if cmd == "addr": return [addr(a) for a in m.addrs], ser
    if cmd in ("ping", "pong"): return {"nonce": str(m.nonce)}, ser
    if cmd == "reject": return {"message": b2x(m.message), "code": m.ccode[0], "reason": b2x(m.reason)}, ser
    return {}, ser

results = []
for case in json.load(sys.stdin):
    f = BytesIO(bytes.fromhex(case["hex"]))
    try:
        got, ser = fields(case["cmd"], f)
        results.append({"fields": got, "reserialized": b2x(ser), "rest": b2x(f.read())})
    except Exception as e:
        results.append({"error": "%s: %s" % (type(e).__name__, e)})
json.dump(results, sys.stdout)
`;

export interface PythonCase {
  cmd: string;
  payload: Buffer;
}

export interface PythonResult {
  fields?: unknown;
  reserialized?: string;
  rest?: string;
  error?: string;
}

/** The first python3 that has python3-bitcoinlib (Debian installs it for /usr/bin/python3, which a pyenv shim may hide). */
export function findPython(): string | undefined {
  if (simulatedMissing('python3-bitcoinlib')) return undefined;
  for (const exe of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(exe, ['-c', 'import bitcoin.messages'], { encoding: 'utf8' });
    if (r.status === 0) return exe;
  }
  return undefined;
}

export function runPython(exe: string, cases: PythonCase[]): PythonResult[] {
  const input = JSON.stringify(cases.map((c) => ({ cmd: c.cmd, hex: c.payload.toString('hex') })));
  const r = spawnSync(exe, ['-c', SCRIPT], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python3-bitcoinlib script failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PythonResult[];
}
