export * from '../storage/audit-chain.js';
