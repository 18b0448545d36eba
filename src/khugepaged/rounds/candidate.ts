// The rounds design's candidate windows (struct collapse_candidate in mm/collapse.c): an
// (address, order) window of one PTE table, how far it got, and what it holds on the way.

import type { ScanResult } from '../scan-result.ts';

/** Collected; nothing held on its behalf yet. */
export const CAND_SELECTED = 0;
/** Refused; nothing of it left to undo. */
export const CAND_SKIPPED = 1;
/** Sources replaced by migration entries and their folios frozen. */
export const CAND_FROZEN = 2;
/** The new folio is mapped. */
export const CAND_INSTALLED = 3;

/** The cap on what one round holds in flight (COLLAPSE_BATCH_BYTES). */
export const COLLAPSE_BATCH_BYTES = 32 << 20;
/** How often a round re-runs the fault-in pass after a dropped lock (COLLAPSE_FAULTIN_PASSES). */
export const COLLAPSE_FAULTIN_PASSES = 8;
/** The smallest order collapse cuts (anon mTHP starts at order 2). */
export const COLLAPSE_MIN_MTHP_ORDER = 2;

/** The passes, for the mm_collapse_candidate tracepoint (enum collapse_pass). */
export type CollapsePass = 'alloc' | 'revalidate' | 'faultin' | 'freeze' | 'copy' | 'install';

export interface Candidate {
  /** First page (vpn) and order of the window. */
  vpn: number;
  order: number;
  /** The light allocation missed last round: reserve allocates with reclaim first. */
  reclaim: boolean;
  state: number;
  result: ScanResult;
  /** The destination folio, or -1. */
  folio: number;
  /** PMD order: the fresh PTE table to deposit under the huge PMD, or 0. */
  deposit: number;
  /** Where the window's saved PTEs start in the round's pool (RoundPool). */
  slot: number;
}

/** The saved-PTE pool of a round: one table's worth (COLLAPSE_SAVED_PTES). */
export class RoundPool {
  readonly bits: Uint16Array;
  readonly val: Int32Array;
  readonly candidates: Candidate[] = [];

  constructor(nr: number) {
    this.bits = new Uint16Array(nr);
    this.val = new Int32Array(nr);
  }

  /** collapse_add_candidate: every field set, the slot may hold a previous round's values. */
  add(vpn: number, order: number, reclaim: boolean, slot: number): void {
    this.candidates.push({
      vpn,
      order,
      reclaim,
      state: CAND_SELECTED,
      result: 'SCAN_FAIL',
      folio: -1,
      deposit: 0,
      slot,
    });
  }
}
