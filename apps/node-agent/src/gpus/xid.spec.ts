/**
 * Proves the XID parser reads the NVIDIA driver's kernel log lines in the formats drivers have
 * printed (with and without `PCI:`, with and without `pid=`/`name=`, `<unknown>` process), behind
 * a /dev/kmsg record prefix or a dmesg timestamp, and ignores every other line; and that PCI
 * addresses as nvidia-smi and the kernel print them compare equal.
 */
import { describe, expect, it } from 'vitest';
import { parseXidLine, pciKey } from './xid';

describe('parseXidLine', () => {
  it('reads the formats drivers print', () => {
    expect(parseXidLine('NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.')).toEqual({ pciBusId: '0000:3b:00', xid: 79, pid: 1234, processName: 'python', detail: 'GPU has fallen off the bus.' });
    expect(parseXidLine('NVRM: Xid (PCI:0000:3B:00): 79, GPU has fallen off the bus.')).toEqual({ pciBusId: '0000:3b:00', xid: 79, detail: 'GPU has fallen off the bus.' });
    expect(parseXidLine("NVRM: Xid (PCI:0000:cb:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.")).toEqual({ pciBusId: '0000:cb:00', xid: 48, detail: 'An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.' });
    expect(parseXidLine('NVRM: Xid (0000:03:00): 14, Channel 00000001')).toEqual({ pciBusId: '0000:03:00', xid: 14, detail: 'Channel 00000001' });
    expect(parseXidLine('NVRM: Xid (PCI:0000:01:00): 31, pid=2497, name=python3, Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f1e_4c000000.')).toMatchObject({ pciBusId: '0000:01:00', xid: 31, pid: 2497, processName: 'python3', detail: 'Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f1e_4c000000.' });
    expect(parseXidLine('NVRM: Xid (PCI:0000:3b:00): 94')).toEqual({ pciBusId: '0000:3b:00', xid: 94, detail: '' });
  });

  it('reads them behind a /dev/kmsg record prefix or a dmesg timestamp', () => {
    expect(parseXidLine('4,1520,8412345678,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n')).toMatchObject({ pciBusId: '0000:3b:00', xid: 79 });
    expect(parseXidLine('[ 8412.345678] NVRM: Xid (PCI:0000:3b:00): 63, pid=1234, name=python, Row Remapper: New row marked for remapping')).toMatchObject({ pciBusId: '0000:3b:00', xid: 63, detail: 'Row Remapper: New row marked for remapping' });
    expect(parseXidLine('Dec  3 14:02:11 gpu-host kernel: [ 8412.345678] NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.')).toMatchObject({ xid: 79 });
  });

  it('ignores what is not an XID', () => {
    for (const line of [
      '',
      'NVRM: GPU at PCI:0000:3b:00: GPU-0a1b2c3d-0000-4000-8000-000000000000',
      'NVRM: GPU Board Serial Number: 1234567890',
      'nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 15 egress non-posted PRIV error',
      '6,1521,8412345999,-;usb 1-1: new high-speed USB device number 2 using xhci_hcd',
      'NVRM: Xid (PCI:0000:3b:00): not-a-number, GPU has fallen off the bus.',
      'NVRM: Xid (PCI:zzzz:3b:00): 79, GPU has fallen off the bus.',
      'NVRM: Xid (PCI:0000:3b:00): 0, nothing',
    ]) expect(parseXidLine(line), line).toBeUndefined();
  });
});

describe('pciKey', () => {
  it('makes nvidia-smi\'s and the kernel\'s spelling of one address equal', () => {
    expect(pciKey('00000000:3B:00.0')).toBe('0000:3b:00');
    expect(pciKey('0000:3B:00.0')).toBe('0000:3b:00');
    expect(pciKey('0000:3b:00')).toBe('0000:3b:00');
    expect(pciKey('PCI:0001:0a:1f')).toBe('0001:0a:1f');
    expect(pciKey('3B:00.0')).toBeUndefined();
    expect(pciKey('100000000:3b:00.0')).toBeUndefined();
  });
});
