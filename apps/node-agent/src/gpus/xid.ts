/**
 * XID errors from the NVIDIA driver's kernel log lines (`NVRM: Xid ...`). Pure: what reads the
 * log is xid-reader.ts. The formats seen across driver versions:
 *
 *   NVRM: Xid (0000:03:00): 14, Channel 00000001                                  (older drivers)
 *   NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.                    (no pid/name)
 *   NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.
 *   NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception ...
 *
 * each possibly behind a `[ 1234.567890] ` dmesg timestamp or a /dev/kmsg record prefix
 * (`priority,seq,timestamp,flags;`). Anything else (SXid lines from NVSwitches, "GPU at ..." lines,
 * other drivers) is not an XID and yields undefined.
 */
export interface XidEvent {
  /** The GPU's PCI address as `dddd:bb:dd` (domain:bus:device, lower-case hex), see pciKey. */
  pciBusId: string;
  xid: number;
  /** The process the driver names, when it names one (absent as `'<unknown>'` or in older formats). */
  pid?: number;
  processName?: string;
  /** The rest of the message (at most 500 characters). */
  detail: string;
}

const XID_LINE = /\bNVRM: Xid \((?:PCI:)?([0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{1,2}:[0-9A-Fa-f]{1,2})(?:\.[0-7])?\): (\d{1,5})(?:,\s*(.*))?$/;
const PID_NAME = /^pid=(?:'?<unknown>'?|'?(\d{1,10})'?),\s*name=(?:<unknown>|([^,]*)),\s*/;
const DETAIL_LENGTH_MAX = 500;

/**
 * The key a PCI address is compared by: domain (4 hex digits), bus and device, lower case, no
 * function. nvidia-smi prints `00000000:3B:00.0` (or `0000:3B:00.0` on older drivers), the
 * kernel log `0000:3b:00`: both become `0000:3b:00`. Undefined when it is not a PCI address.
 */
export function pciKey(address: string): string | undefined {
  const match = /^(?:PCI:)?([0-9A-Fa-f]{1,8}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2})(?:\.[0-7])?$/.exec(address.trim());
  if (!match) return undefined;
  const [, domain, bus, device] = match as unknown as [string, string, string, string];
  const domainValue = Number.parseInt(domain, 16);
  if (domainValue > 0xffff) return undefined;
  return `${domainValue.toString(16).padStart(4, '0')}:${bus.toLowerCase().padStart(2, '0')}:${device.toLowerCase().padStart(2, '0')}`;
}

/** Strips a /dev/kmsg record prefix (`6,1234,5678901,-;`) or a dmesg timestamp (`[ 12.345678] `). */
function messageOf(line: string): string {
  const kmsg = /^\d{1,3},\d{1,20},\d{1,20},[^;]*;/.exec(line);
  if (kmsg) return line.slice(kmsg[0].length);
  return line.replace(/^\[\s*\d+\.\d+\]\s*/, '');
}

/** One kernel log line (or /dev/kmsg record) to an XID, or undefined when it is not one. */
export function parseXidLine(line: string): XidEvent | undefined {
  // A kmsg record's continuation lines (" KEY=value") follow a newline: only the first line is the message.
  const message = messageOf(line.split('\n', 1)[0]!.replace(/\r$/, ''));
  const match = XID_LINE.exec(message);
  if (!match) return undefined;
  const [, address, xidText, rest = ''] = match as unknown as [string, string, string, string | undefined];
  const pciBusId = pciKey(address);
  const xid = Number(xidText);
  if (!pciBusId || xid <= 0) return undefined;
  const event: XidEvent = { pciBusId, xid, detail: '' };
  let detail = rest;
  const pidName = PID_NAME.exec(detail);
  if (pidName) {
    if (pidName[1] !== undefined) event.pid = Number(pidName[1]);
    const name = pidName[2]?.trim();
    if (name) event.processName = name;
    detail = detail.slice(pidName[0].length);
  }
  event.detail = detail.trim().slice(0, DETAIL_LENGTH_MAX);
  return event;
}
