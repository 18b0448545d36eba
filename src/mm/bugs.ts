// The bug switches: kernel forms the checker's broken variants turn on, each a historical bug or
// a design that was reviewed and rejected (docs/page-table-walkers.md). The list is data, so case
// files and `thpsim check --walkers` take it from here; KernelBug is derived from it.

/** Every bug switch, with what it changes. */
export const KERNEL_BUG_TEXT = {
  'no-full-pmd-check':
    'mTHP collapse revalidates only its own range, not that the VMA spans the PMD (v5).',
  'early-anon-vma-unlock':
    'mTHP collapse drops the anon_vma write lock after isolation, as the PMD path does (v5).',
  'no-ipi-sync': 'Collapse skips tlb_remove_table_sync_one after detaching the table.',
  'no-gup-recheck': 'GUP-fast keeps its folio reference without rechecking the PMD and PTE.',
  'copy-before-flush': 'pte-level collapse copies the old pages before flushing the TLB range.',
  'pte-level-isolate-before-clear':
    'pte-level collapse checks references before it clears the PTEs (the first version).',
  'pt-reclaim-no-rcu':
    'Empty-table reclaim frees the table at once instead of after an RCU grace period.',
  'numa-pmd-via-none':
    'NUMA hinting changes a huge PMD through none instead of pmdp_invalidate (before 2017).',
  'pmd-clear-bad':
    'A read-locked walker takes a huge PMD for a bad one and clears it (before 2012).',
  'no-psc-flush': "Page tables are freed without flushing the CPUs' paging-structure caches (R12).",
  'retract-no-i-mmap-lock':
    "retract_page_tables walks the file's VMAs without the i_mmap lock (R10).",
  'retract-no-guard-recheck':
    'retract_page_tables does not recheck for guard markers under the PTE lock (R20).',
  'pmd-install-no-recheck':
    'pmd_install publishes its table without rechecking that the entry is still none.',
  'set-pte-without-ptl':
    'do_anonymous_page writes its PTEs without the PTE lock and without rechecking them.',
  'collapse-no-vma-write-lock':
    'collapse_huge_page skips vma_start_write: per-VMA-lock faults are not excluded.',
  'pt-reclaim-pmd-lock-under-ptl':
    'Empty-table reclaim takes the PMD lock (not a trylock) while holding the PTE lock.',
  'walk-without-mmap-lock': 'A page-table walker walks without the mmap read lock (rule 1).',
  'migration-restore-populates':
    'remove_migration_ptes also fills empty entries, under the rmap lock alone (rule 2).',
  'no-stable-check':
    'The anonymous fault maps a page without checking for an OOM-reaped mm (rule 21).',
  'move-ptes-no-rmap-lock':
    'mremap moves PTEs without the rmap locks although the rmap order needs them (rule 14).',
  'anon-vma-under-vma-lock':
    'A fault under the VMA lock alone gives the VMA an anon_vma (rule 18).',
  'gup-fast-reread-pmd': 'GUP-fast reads the PMD a second time for the table pointer (rule 6).',
  'rounds-no-freeze-flush':
    'rounds: the freeze drops the PTE lock without flushing the TLB range it froze.',
  'rounds-no-verify':
    'rounds: the install maps the new folio without verifying that every slot is still its own.',
  'rounds-abort-restores-foreign':
    'rounds: an aborted candidate restores every saved slot, zapped or refilled ones too.',
  'rounds-free-old-table-now':
    'rounds: the table detached at PMD order is freed at once instead of by pte_free_defer.',
} as const;

/** A bug switch of the model (src/mm/profile.ts holds the kernel-version switches). */
export type KernelBug = keyof typeof KERNEL_BUG_TEXT;

/** The bug switches as a list, in the order above. */
export const KERNEL_BUGS = Object.keys(KERNEL_BUG_TEXT) as readonly KernelBug[];
