/** Tool-call ids shaped like OpenAI's: "call_" and 24 random letters and digits. */
import { randomInt } from 'node:crypto';

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const idLength = 24;

export function toolCallId(): string {
  let id = 'call_';
  for (let index = 0; index < idLength; index++) id += alphabet[randomInt(alphabet.length)];
  return id;
}
