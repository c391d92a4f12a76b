/**
 * BHP_TEST_WITHOUT=litecoind,python3-bitcoinlib makes the test support act as on a machine
 * without those Debian packages, so the skip paths (and the seeds' independence from them) can
 * be checked on a machine that has them: `BHP_TEST_WITHOUT=litecoind,python3-bitcoinlib npm test`.
 */
export function simulatedMissing(pkg: 'litecoind' | 'python3-bitcoinlib'): boolean {
  return (process.env.BHP_TEST_WITHOUT ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(pkg);
}
