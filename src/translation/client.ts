// The translation client: one AF_UNIX stream connection per request, as the original (it
// never reuses a connection). The request goes out in one write; the response is framed
// by ResponseDecoder and checked by parseLoginResponse; the socket is closed as soon as END
// has arrived. Every failure, whatever its cause, is a TranslationError: the caller ends the
// login with "Configuration server failed" and logs the error's message.
import net from 'node:net';
import { localSocketPath } from '../net/unix-socket.ts';
import { DEFAULT_MAX_RESPONSE_BYTES, ResponseDecoder } from './codec.ts';
import { TranslationError } from './errors.ts';
import type { TranslationResponse } from './response.ts';
import { parseLoginResponse } from './response.ts';

/** The original waits for ever; a hung server would hold every login until the auth timer. */
export const DEFAULT_TRANSLATION_TIMEOUT_MS = 10_000;

export interface TranslateOptions {
  timeoutMs?: number;
  maxBytes?: number;
}

/** Sends one request and resolves to the parsed response; rejects with a TranslationError. */
export function translate(address: string, request: Buffer, options: TranslateOptions = {}): Promise<TranslationResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TRANSLATION_TIMEOUT_MS;
  const decoder = new ResponseDecoder({ maxBytes: options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES });
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket = net.connect({ path: localSocketPath(address) });
    const finish = (result: TranslationResponse | TranslationError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof TranslationError) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(new TranslationError('timeout', `no complete response from translation server within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(request));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish(new TranslationError('unreachable', `translation server ${address}: ${err.code ?? err.message}`));
    });
    socket.on('data', (chunk: Buffer) => {
      const state = decoder.push(chunk);
      if (state.kind === 'malformed') finish(state.error);
      else if (state.kind === 'complete') finish(parseLoginResponse(state.packets));
    });
    socket.on('end', () => {
      const state = decoder.end();
      if (state.kind === 'malformed') finish(state.error);
      else if (state.kind === 'complete') finish(parseLoginResponse(state.packets));
    });
  });
}
