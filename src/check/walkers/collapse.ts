// Walkers that build huge pages or take page tables away behind a file: khugepaged's collapse
// (collapse_huge_page directly, or the whole scan path), MADV_COLLAPSE and retract_page_tables.

import { z } from 'zod';
import { collapseHugePage } from '../../khugepaged/collapse-anon.ts';
import {
  collapseScanFile,
  retractPageTables,
  tryCollapsePteMappedThp,
} from '../../khugepaged/collapse-file.ts';
import { newCollapseControl } from '../../khugepaged/control.ts';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../../khugepaged/mthp/thresholds.ts';
import { scanMmSlot } from '../../khugepaged/daemon.ts';
import { findPmdOrThpOrNone } from '../../khugepaged/find-pmd.ts';
import { doMadviseCollapse, madviseCollapse } from '../../khugepaged/madvise-collapse.ts';
import { mthpCollapse } from '../../khugepaged/mthp/collapse.ts';
import { collapseScanPmd } from '../../khugepaged/scan-pmd.ts';
import { collapseSinglePmd } from '../../khugepaged/single-pmd.ts';
import type { Step } from '../../mm/step.ts';
import type { CheckWorld } from '../world.ts';
import { RANGE_PAGES, page, rangeBase, vmaName, namedVma, vmaOfPage } from './fields.ts';
import { WalkerArgError, walker } from './types.ts';

/** collapse_huge_page of the 2^order pages at page `at`, as if the scan had passed them. */
export function* khugepagedCollapseAt(w: CheckWorld, at: number, order: number): Step<unknown> {
  const cc = newCollapseControl(true);
  return yield collapseHugePage(w.k, w.mms.p, rangeBase(w) + at, order, 1 << order, 0, cc);
}

/** One khugepaged pass over the world's mm: collapse_scan_mm_slot from the first VMA on. */
function* khugepagedScan(w: CheckWorld): Step<unknown> {
  return yield* scanMmSlot(w.k, 1 << 20, newCollapseControl(true));
}

export const COLLAPSE = walker({
  name: 'collapse',
  kernel: 'collapse_huge_page',
  summary:
    "khugepaged's collapse: `from: direct` runs collapse_huge_page of 2^order pages at `at` (the scan passed); `from: scan` runs the whole path (collapse_scan_mm_slot, collapse_scan_pmd, the order walk, the mmap lock dropped and retaken, hugepage_vma_revalidate); the design is world.policy",
  args: z.strictObject({
    from: z.enum(['direct', 'scan']).default('direct'),
    at: page.default(0),
    order: z.number().int().min(2).max(9).optional(),
    policy: z
      .enum(COLLAPSE_POLICIES as unknown as [CollapsePolicy, ...CollapsePolicy[]])
      .optional(),
  }),
  steps: {
    collapse_huge_page: collapseHugePage,
    collapse_scan_mm_slot: scanMmSlot,
    collapse_single_pmd: collapseSinglePmd,
    collapse_scan_pmd: collapseScanPmd,
    mthp_collapse: mthpCollapse,
    find_pmd_or_thp_or_none: findPmdOrThpOrNone,
    collapse_scan_file: collapseScanFile,
    try_collapse_pte_mapped_thp: tryCollapsePteMappedThp,
  },
  sample: (_w, v) => (v.kind === 'anon' ? { at: v.from, order: 4 } : { from: 'scan' as const }),
  thread: (a, info) => {
    if (a.from === 'scan') {
      if (a.order !== undefined)
        throw new WalkerArgError(
          'order',
          'the scan picks the order (from the enabled sizes); give no order with from: scan',
        );
      return {
        label: 'khugepaged scan',
        ...(a.policy ? { policy: a.policy } : {}),
        run: (w) => khugepagedScan(w),
      };
    }
    const order = a.order ?? 4;
    if (a.at % (1 << order))
      throw new WalkerArgError(
        'at',
        `page ${a.at} is not aligned to order ${order} (${1 << order} pages)`,
      );
    const v = vmaOfPage(info, a.at);
    return {
      label: `collapse ${v.name}[${a.at}..${a.at + (1 << order)}) order ${order}`,
      vma: v.name,
      ...(a.policy ? { policy: a.policy } : {}),
      run: (w) => khugepagedCollapseAt(w, a.at, order),
    };
  },
});

export const MADVISE_COLLAPSE = walker({
  name: 'madvise-collapse',
  kernel: 'madvise_collapse',
  summary:
    'MADV_COLLAPSE of a VMA (or of the whole PMD range): the scan and a PMD-order collapse per PMD range under the mmap read lock, dropped for the allocation',
  args: z.strictObject({ vma: vmaName.optional() }),
  steps: { do_madvise_collapse: doMadviseCollapse, madvise_collapse: madviseCollapse },
  sample: (_w, v) => ({ vma: v.name }),
  thread: (a, info) => {
    const v = a.vma === undefined ? undefined : namedVma(info, a.vma);
    const [from, to] = v ? [v.from, v.to] : [0, RANGE_PAGES];
    return {
      label: `madvise-collapse ${v ? v.name : 'range'}`,
      ...(v ? { vma: v.name } : {}),
      run: (w) => doMadviseCollapse(w.k, w.mms.p, rangeBase(w) + from, rangeBase(w) + to),
    };
  },
});

export const RETRACT = walker({
  name: 'retract',
  kernel: 'retract_page_tables',
  summary:
    "retract_page_tables of a file or shmem VMA's PMD range: from the file's side (i_mmap read lock, no lock of the mm), clear and free empty PTE tables",
  args: z.strictObject({ vma: vmaName }),
  steps: { retract_page_tables: retractPageTables },
  sample: (_w, v) =>
    v.kind === 'anon'
      ? { skip: 'retract_page_tables works on file and shmem VMAs' }
      : { vma: v.name },
  thread: (a, info) => {
    const v = namedVma(info, a.vma);
    if (v.kind === 'anon')
      throw new WalkerArgError('vma', `retract needs a file or shmem VMA; ${v.name} is anonymous`);
    return {
      label: `retract ${v.name}`,
      run: (w) => {
        const vma = w.vmas[v.name];
        const pgoff = vma.pgoff + (rangeBase(w) - vma.start);
        return retractPageTables(w.k, w.k.files.get(vma.file)!, pgoff);
      },
    };
  },
});

export const COLLAPSE_WALKERS = [COLLAPSE, MADVISE_COLLAPSE, RETRACT];
