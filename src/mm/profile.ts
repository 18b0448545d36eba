// Kernel profiles: each behavioural difference between kernel versions is one named switch here,
// read by the single copy of the model code.

export type ProfileName = 'linux-6.18' | 'linux-7.2';

export const PROFILE_NAMES: readonly ProfileName[] = ['linux-6.18', 'linux-7.2'];

export interface KernelProfile {
  readonly name: ProfileName;
  /** khugepaged collapses to orders below PMD (the mTHP collapse series, 7.2). */
  readonly mthpCollapse: boolean;
  /** hugepages-<size>kB/stats/collapse_* files exist (added by the mTHP collapse series). */
  readonly mthpCollapseStats: boolean;
  /** khugepaged runs when any anon order is enabled, not only PMD order (hugepage_enabled()). */
  readonly khugepagedAnyOrder: boolean;
  /** MADV_COLLAPSE stops (EINVAL) at a PMD entry that is none (SCAN_PMD_NONE in 6.18). */
  readonly madvCollapseStopsAtEmptyPmd: boolean;
  /** One SCAN_NO_PTE_TABLE result instead of SCAN_PMD_NULL / SCAN_PMD_NONE (2026 tree). */
  readonly scanNoPteTable: boolean;
  /** Scan progress is charged per PTE inspected instead of HPAGE_PMD_NR per PMD. */
  readonly perPteScanProgress: boolean;
  /** SCAN_PAGE_LAZYFREE exists: khugepaged skips clean lazy-free folios. */
  readonly scanPageLazyfree: boolean;
  /**
   * CONFIG_READ_ONLY_THP_FOR_FS: khugepaged and MADV_COLLAPSE may put PMD-sized folios into the
   * page cache of regular files that nobody has open for writing. Built in both profiles; the
   * option is on its way out of the 7.2 cycle (linux-next, June 2026) but still present.
   */
  readonly readOnlyThpForFs: boolean;
}

const PROFILES: Record<ProfileName, KernelProfile> = {
  'linux-6.18': {
    name: 'linux-6.18',
    mthpCollapse: false,
    mthpCollapseStats: false,
    khugepagedAnyOrder: false,
    madvCollapseStopsAtEmptyPmd: true,
    scanNoPteTable: false,
    perPteScanProgress: false,
    scanPageLazyfree: false,
    readOnlyThpForFs: true,
  },
  'linux-7.2': {
    name: 'linux-7.2',
    mthpCollapse: true,
    mthpCollapseStats: true,
    khugepagedAnyOrder: true,
    madvCollapseStopsAtEmptyPmd: false,
    scanNoPteTable: true,
    perPteScanProgress: true,
    scanPageLazyfree: true,
    readOnlyThpForFs: true,
  },
};

export const DEFAULT_PROFILE: ProfileName = 'linux-7.2';

export function profile(name: ProfileName): KernelProfile {
  const p = PROFILES[name];
  if (!p)
    throw new Error(
      `unknown kernel profile '${name}' (expected one of ${PROFILE_NAMES.join(', ')})`,
    );
  return p;
}
