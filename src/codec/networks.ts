/** Network magic bytes and default ports, as in Bitcoin Core's chainparams.cpp. */
export interface Network {
  readonly name: string;
  /** the 4 magic bytes as they appear on the wire */
  readonly magic: Buffer;
  readonly defaultPort: number;
}

function net(name: string, magicHex: string, defaultPort: number): Network {
  return Object.freeze({ name, magic: Buffer.from(magicHex, 'hex'), defaultPort });
}

export const NETWORKS = Object.freeze({
  mainnet: net('mainnet', 'f9beb4d9', 8333),
  testnet3: net('testnet3', '0b110907', 18333),
  testnet4: net('testnet4', '1c163f28', 48333),
  signet: net('signet', '0a03cf40', 38333),
  regtest: net('regtest', 'fabfb5da', 18444),
});

export type NetworkName = keyof typeof NETWORKS;

export function isNetworkName(name: string): name is NetworkName {
  return Object.prototype.hasOwnProperty.call(NETWORKS, name);
}

/**
 * Resolve a network by name, or a custom network from 8 hex digits of magic
 * (for a custom signet or a test harness); custom networks need an explicit port.
 */
export function resolveNetwork(nameOrMagic: string, customPort = 0): Network {
  if (isNetworkName(nameOrMagic)) return NETWORKS[nameOrMagic];
  const hex = nameOrMagic.startsWith('0x') ? nameOrMagic.slice(2) : nameOrMagic;
  if (/^[0-9a-fA-F]{8}$/.test(hex)) return net(`custom-${hex.toLowerCase()}`, hex, customPort);
  throw new Error(
    `unknown network "${nameOrMagic}": expected one of ${Object.keys(NETWORKS).join(', ')} or 8 hex digits of magic`,
  );
}
