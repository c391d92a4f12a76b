/** The P2P wire codec: networks, frames, the incremental decoder and typed payload codecs. */
export * from './errors.js';
export * from './networks.js';
export * from './header.js';
export * from './checksum.js';
export * from './frame.js';
export * from './decoder.js';
export * from './reader.js';
export * from './writer.js';
export * from './messages/index.js';
export * from './transport-detect.js';
export * from './capture-format.js';
