/** Types of stream-reader.frames.mjs (plain JavaScript, loaded by the reader thread as it is). */
export declare const NO_TYPE: -1;
export declare const UNREAD_TYPE: -2;
/** A nats.js message as these functions read it: its public parts, and the private raw ones when present. */
export interface FrameMessage {
  reply?: string;
  headers?: { get(name: string): string };
  _rdata?: Uint8Array;
  _msg?: { hdr?: number; reply?: Uint8Array };
}
export declare function typeReader(typeHeader: string, wantedTypes: readonly string[]): (m: FrameMessage) => number;
export declare const delivery: { streamSequence: number; consumerSequence: number; timeMs: number; pending: number };
export declare function readDelivery(m: FrameMessage): boolean;
