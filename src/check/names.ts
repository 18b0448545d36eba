// Kernel function names for trace lines: a generator object's prototype is its function's
// `prototype`, so registering the step functions of a module lets a suspended step be named.

const names = new WeakMap<object, string>();

/** Register every exported generator function of a module under its own name. */
export function registerSteps(mod: Record<string, unknown>): void {
  for (const [name, v] of Object.entries(mod)) {
    if (typeof v !== 'function' || v.constructor?.name !== 'GeneratorFunction') continue;
    const proto = (v as { prototype?: object }).prototype;
    if (proto) names.set(proto, SNAKE[name] ?? name);
  }
}

/** The registered name of a generator object, if its function was registered. */
export function stepName(gen: object): string | undefined {
  return names.get(Object.getPrototypeOf(gen) as object);
}

/** camelCase model names of the functions whose kernel names differ in more than case. */
const SNAKE: Record<string, string> = {
  collapseHugePage: 'collapse_huge_page',
  faultUser: 'do_user_addr_fault',
  handleMmFault: 'handle_mm_fault',
  handlePteFault: 'handle_pte_fault',
  hwAccess: 'hw_walk',
  userAccess: 'user_access',
  pteAlloc: 'pmd_install',
  pmdAlloc: 'pmd_alloc',
  zapRange: 'unmap_page_range',
  doMadvise: 'do_madvise',
  gupFast: 'gup_fast',
  rmapWalkAnon: 'rmap_walk_anon',
  migrateFolio: 'migrate_pages',
  vmaStartWrite: 'vma_start_write',
  mmapWriteUnlock: 'mmap_write_unlock',
  doAnonymousPage: 'do_anonymous_page',
  doHugePmdAnonymousPage: 'do_huge_pmd_anonymous_page',
  collapseScanPmd: 'collapse_scan_pmd',
  findPmdOrThpOrNone: 'find_pmd_or_thp_or_none',
  tlbUserWrite: 'user_write',
  gupSlow: 'get_user_pages',
  uffdCopy: 'mfill_atomic_copy',
  changeHugePmdNuma: 'change_huge_pmd',
  mincoreWalk: 'mincore_walk',
  guardInstall: 'madvise_guard_install',
  oomReap: 'oom_reap_task_mm',
  retractPageTables: 'retract_page_tables',
  pteOffsetMapLock: 'pte_offset_map_lock',
  doMunmap: 'do_munmap',
  unmapRegion: 'unmap_region',
};
