// How many none/zero PTEs a region of each order may hold (collapse_max_ptes_none), under the
// merged rule and the designs from the review history.

export type CollapsePolicy =
  'v19' | 'v11-stack' | 'v10-scaled' | 'v11-cap' | 'pte-level' | 'rounds';

export const COLLAPSE_POLICIES: readonly CollapsePolicy[] = [
  'v19',
  'v11-stack',
  'v10-scaled',
  'v11-cap',
  'pte-level',
  'rounds',
];

/** One line per policy, for --help and reports. */
export const COLLAPSE_POLICY_DESCRIPTIONS: Record<CollapsePolicy, string> = {
  v19: 'merged design: per-PTE bitmap, forward walk, max_ptes_none 0 or HPAGE_PMD_NR-1 below PMD',
  'v11-stack': 'v11..v18 explicit-stack search (chooses what v19 chooses)',
  'v10-scaled': 'v4..v10: 4-PTE chunk bitmap, max_ptes_none scaled per order (creeps)',
  'v11-cap': 'v11/v12: max_ptes_none scaled per order, silently capped at HPAGE_PMD_NR/2-1',
  'pte-level': 'proposed: mTHP collapse inside the attached table, VMAs smaller than a PMD',
  rounds:
    'mm/collapse.c: sources frozen with migration entries + folio_ref_freeze under mmap_read, batched rounds',
};

export interface ThresholdInput {
  /** khugepaged/max_ptes_none. */
  sysfs: number;
  /** HPAGE_PMD_NR and HPAGE_PMD_ORDER. */
  nr: number;
  pmdOrder: number;
  /** userfaultfd-armed VMA (known only after revalidation; the v19 pre-check passes none). */
  uffd: boolean;
  /** MADV_COLLAPSE rather than khugepaged. */
  madvise: boolean;
}

/**
 * collapse_max_ptes_none(cc, vma, order) of the merged series: PMD order keeps the sysfs value;
 * mTHP orders honour only 0 and HPAGE_PMD_NR-1, every other value behaves as 0 (with a warning).
 */
export function maxPtesNoneV19(t: ThresholdInput, order: number): number {
  if (t.uffd) return 0;
  if (t.madvise) return t.nr;
  if (order === t.pmdOrder) return t.sysfs;
  if (t.sysfs === t.nr - 1) return (1 << order) - 1;
  return 0;
}

/** v4..v10: the value scaled to the order (max_ptes_none >> (PMD_ORDER - order)), no cap. */
export function maxPtesNoneV10Scaled(t: ThresholdInput, order: number): number {
  if (t.uffd) return 0;
  if (t.madvise) return t.nr;
  if (order === t.pmdOrder) return t.sysfs;
  return t.sysfs >>> (t.pmdOrder - order);
}

/** Whether the v19 rule ignores (and warns about) the sysfs value for mTHP orders. */
export function mthpMaxPtesNoneUnsupported(t: ThresholdInput): boolean {
  return t.sysfs !== 0 && t.sysfs !== t.nr - 1;
}

/** v11/v12: the value scaled to the order, silently capped at HPAGE_PMD_NR/2 - 1 (no creep). */
export function maxPtesNoneV11Cap(t: ThresholdInput, order: number): number {
  if (t.uffd) return 0;
  if (t.madvise) return t.nr;
  if (order === t.pmdOrder) return t.sysfs;
  return Math.min(t.sysfs, t.nr / 2 - 1) >>> (t.pmdOrder - order);
}

export function maxPtesNoneFor(
  policy: CollapsePolicy,
): (t: ThresholdInput, order: number) => number {
  switch (policy) {
    case 'v19':
    case 'v11-stack':
    case 'pte-level':
    case 'rounds':
      return maxPtesNoneV19;
    case 'v10-scaled':
      return maxPtesNoneV10Scaled;
    case 'v11-cap':
      return maxPtesNoneV11Cap;
  }
}

/** Policies that follow the 0-or-HPAGE_PMD_NR-1 rule (and warn once about other values). */
export function policyWarnsUnsupported(policy: CollapsePolicy): boolean {
  return maxPtesNoneFor(policy) === maxPtesNoneV19;
}

/** Policies whose order walk is the explicit stack (v4..v18). */
export function policyUsesStack(policy: CollapsePolicy): boolean {
  return policy === 'v11-stack' || policy === 'v10-scaled';
}

/**
 * Designs that never detach a page table another VMA may use, and so reach the parts of PMD
 * ranges a VMA covers only in part (VMAs smaller than a PMD, ranges shared by several VMAs).
 */
export function policyReachesSubPmd(policy: CollapsePolicy): boolean {
  return policy === 'pte-level' || policy === 'rounds';
}
