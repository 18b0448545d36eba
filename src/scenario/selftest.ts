// The kernel selftest harness (tools/testing/selftests/mm/khugepaged.c and its thp_settings
// helper) as the scenario runner uses it: the global settings a run starts from, the settings
// stack, the settings the madvise context pushes, and how long the khugepaged context waits.

import { sysfsList } from '../mm/sysfs.ts';
import type { Machine } from '../sim/machine.ts';
import type { VmaKind } from './run.ts';
import type { CheckField } from './schema.ts';

/** The selftest maps its areas at 1 GiB (BASE_ADDR), so the smaps VMA starts exactly there. */
export const BASE_ADDR = 2 ** 30;

/** The smaps field check_huge reads for a memory type. */
export function hugeField(kind: VmaKind): CheckField {
  return kind === 'anon' ? 'AnonHugePages' : kind === 'shmem' ? 'ShmemPmdMapped' : 'FilePmdMapped';
}

/**
 * wait_for_scan's budget: 6 ticks of 0.5 s, plus (MM-NEW, "scale khugepaged's collapse wait
 * with the PMD size") 2 ticks per 128 MiB awaited.
 */
export function khugepagedWaitMs(bytes: number): number {
  return 3000 + 1000 * Math.floor(bytes / (128 * 2 ** 20));
}

function perOrder(m: Machine, file: 'enabled' | 'shmem_enabled'): string[] {
  const re = new RegExp(`^hugepages-(\\d+)kB/${file}$`);
  return sysfsList(m.kernel)
    .filter((p) => re.test(p))
    .sort((a, b) => Number(re.exec(b)![1]) - Number(re.exec(a)![1]));
}

function has(m: Machine, path: string): boolean {
  return sysfsList(m.kernel).includes(path);
}

/**
 * The settings khugepaged.c pushes before the first test (§1.1 of the selftest notes), in
 * thp_write_settings' order: the global knobs, the khugepaged knobs, then every per-size
 * `enabled` (PMD size: inherit; the others never, as the test's zeroed defaults give) and
 * `shmem_enabled`. A file the model does not have is left out with a note.
 */
export function selftestGlobalSettings(m: Machine, notes: string[]): Array<[string, string]> {
  const nr = m.kernel.geo.ptrsPerPte;
  const pmdKb = m.kernel.geo.pmdSize / 1024;
  const out: Array<[string, string]> = [
    ['enabled', 'madvise'],
    ['defrag', 'always'],
  ];
  if (has(m, 'shmem_enabled')) out.push(['shmem_enabled', 'advise']);
  else notes.push('shmem_enabled=advise not written: the model has no shmem_enabled file');
  out.push(
    ['use_zero_page', '0'],
    ['khugepaged/defrag', '1'],
    ['khugepaged/alloc_sleep_millisecs', '10'],
    ['khugepaged/scan_sleep_millisecs', '10'],
    ['khugepaged/max_ptes_none', String(nr - 1)],
    ['khugepaged/max_ptes_swap', String(nr / 8)],
    ['khugepaged/max_ptes_shared', String(nr / 2)],
    ['khugepaged/pages_to_scan', String(nr * 8)],
  );
  for (const p of perOrder(m, 'enabled'))
    out.push([p, p === `hugepages-${pmdKb}kB/enabled` ? 'inherit' : 'never']);
  for (const p of perOrder(m, 'shmem_enabled'))
    out.push([p, p === `hugepages-${pmdKb}kB/shmem_enabled` ? 'inherit' : 'never']);
  return out;
}

/** What the madvise context pushes: THP off everywhere (MM-NEW: every size too). */
export function madviseContextSettings(m: Machine): Array<[string, string]> {
  const out: Array<[string, string]> = [['enabled', 'never']];
  if (has(m, 'shmem_enabled')) out.push(['shmem_enabled', 'never']);
  for (const p of perOrder(m, 'enabled')) out.push([p, 'never']);
  for (const p of perOrder(m, 'shmem_enabled')) out.push([p, 'never']);
  return out;
}

/** thp_push_settings / thp_pop_settings: each frame remembers the values it replaced. */
export type SysfsStack = Array<Array<[string, string]>>;

/** The value a sysfs file holds: the [selected] word of a choice list, else the whole text. */
export function sysfsValueOf(text: string): string {
  const m = /\[([^\]]+)\]/.exec(text);
  return (m ? m[1] : text).trim();
}

export function sysfsPush(m: Machine, stack: SysfsStack, values: Array<[string, string]>): void {
  const frame: Array<[string, string]> = [];
  stack.push(frame);
  for (const [path, value] of values) {
    frame.push([path, sysfsValueOf(m.sysfsRead(path))]);
    m.sysfsWrite(path, value);
  }
}

export function sysfsPop(m: Machine, stack: SysfsStack): void {
  const frame = stack.pop();
  if (!frame) return;
  for (const [path, value] of [...frame].reverse()) m.sysfsWrite(path, value);
}
