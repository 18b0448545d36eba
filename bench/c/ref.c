/*
 * C reference for the thpsim benchmarks: the same work as the model, on the same data layout,
 * without the model's step/generator machinery. Built at bench time (cc -O2) by bench/run.ts.
 *
 *   ref <nPages> <ramPages> <startVpn> <faultReps> <readReps>
 *
 * (a) fault: for each of nPages pages, starting at startVpn, do what the model does for a first
 *     write to an untouched page with THP disabled (userAccess -> hwAccess miss -> faultUser ->
 *     handleMmFault -> handlePteFault -> doAnonymousPage -> hwAccess hit):
 *       - hardware walk over four levels of tables (int32 val[] + uint16 bits[], id * 512 + idx),
 *         which misses;
 *       - the fault: pgfault counter, lock-depth counting (the BalanceSink the model runs on), VMA
 *         lookup and permission check, pud/pmd table allocation when missing, the THP-order check,
 *         a PTE table from the pool when the PMD entry is none (zeroed, linked, used count);
 *       - a page from a buddy allocator with the model's layout (per-order intrusive free lists
 *         in next[]/prev[]/freeOrder[] arrays, split on allocation);
 *       - folio prep and rmap accounting on the same struct-of-arrays (flags, order, refcount,
 *         pincount, mapcount, entire/ nr-pages-mapped / per-page PTE mapcount, mm-id slots,
 *         mapping, index, swap slot, data), anon stats and the rss counter;
 *       - the PTE write (val = pfn, bits = present|young|dirty|write, used count);
 *       - the retried hardware walk, which hits, sets young/dirty and stores a fresh data token.
 *     Every repetition starts from freshly allocated (calloc'd) arrays and an initialised buddy
 *     allocator, as the JavaScript benchmark does with a fresh Kernel; only the loop is timed.
 * (b) read: after (a), walk the range as walkRange/smapsCounts do (upper levels once per PMD,
 *     then every entry of each PTE table) reading each entry's type bits and val:
 *       - "pte":   type bits + val of every entry, counting present/swap entries and summing val;
 *       - "smaps": additionally what smapsCounts does per present entry (compound head through
 *                  flags/mapping, folio order, PG_ANON, per-order page counts).
 * Prints one JSON object; times in seconds, each the median of the repetitions.
 *
 *   ref scan <nPages> <ramPages> <startVpn> <reps>
 *
 * (c) scan (bench/khugepaged.ts): fault the range in as in (a), once, untimed; then, reps times
 *     after one warm-up pass, run khugepaged's PMD scan (collapse_scan_pmd) over every PMD range
 *     of it: the PMD lookup of find_pmd_or_thp_or_none, then for each of the 512 PTEs the checks
 *     the model makes in the same order (none or zero page through compound_head, present,
 *     uffd-wp, compound_head, clean lazy-free, PG_ANON, maybe mapped shared, PG_LRU, PG_LOCKED,
 *     refcount == mapcount + pincount (+ swap cache) with no pin, young PTE or PG_young /
 *     PG_referenced), then the referenced rule. Prints the results (median time, per-result
 *     counts, inspected and referenced totals, a checksum of the last folio of each range) so
 *     bench/khugepaged.ts can check that the JavaScript scan saw the same thing.
 *
 *   ref walk <nBitmaps> <seed> <maxPtesNone> <enabledMask> <reps>
 *
 * (d) walk (bench/mthp-walk.ts): mTHP collapse's merged (v19) forward walk over the orders of one
 *     PMD range (forwardWalk in src/khugepaged/mthp/order-walk.ts) for nBitmaps random 512-bit
 *     occupancy bitmaps (uint32 words, made by the same seeded xorshift32 generator as the
 *     script): per region max_order_from_offset (ctz), the order's enable bit, the bitmap weight
 *     of the region (bit by bit in partial words, __builtin_popcount over whole words, as
 *     PteBitmap.count), collapse_max_ptes_none of the v19 rule, the outcome (SCAN_SUCCEED if the
 *     region's first bit is set, else SCAN_ALLOC_HUGE_PAGE_FAIL, a soft failure) and the
 *     soft/hard classes. Prints the median time and a checksum of the (offset, order) attempts.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PTRS 512
#define LVL_SHIFT 9

enum { E_NONE = 0, E_TABLE = 1, E_PRESENT = 2, E_SWAP = 3, E_MARKER = 5, E_TYPE_MASK = 7 };
#define MARKER_UFFD_WP 1
#define B_YOUNG (1 << 3)
#define B_DIRTY (1 << 4)
#define B_WRITE (1 << 5)
#define B_UFFD_WP (1 << 6)
#define B_SPECIAL (1 << 9)
#define B_PROTNONE (1 << 11)
enum { T_FREE = 0, T_ALLOCATED = 1, T_LINKED = 2 };

#define PG_HEAD (1 << 0)
#define PG_TAIL (1 << 1)
#define PG_ANON (1 << 2)
#define PG_LRU (1 << 3)
#define PG_LOCKED (1 << 4)
#define PG_SWAPCACHE (1 << 5)
#define PG_DIRTY (1 << 6)
#define PG_REFERENCED (1 << 7)
#define PG_YOUNG (1 << 8)
#define PG_LAZYFREE (1 << 9)
#define PG_MAYBE_SHARED (1 << 11)
#define PG_ZERO (1 << 13)
#define PG_ANON_EXCLUSIVE (1 << 15)
#define NO_MM (-1)
#define NIL (-1)
#define MAX_ORDER 10

#define VM_READ 1
#define VM_WRITE 2
#define VM_UFFD_MISSING (1 << 7)
#define VM_UFFD_WP (1 << 8)
#define VM_DROPPABLE (1 << 10)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the process (user + system), to tell contention on a shared machine apart. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  if (!p) {
    fprintf(stderr, "out of memory (%zu x %zu)\n", n, sz);
    exit(1);
  }
  return p;
}

/* One level of page tables: a pool of tables, entries at id * PTRS + idx. */
typedef struct {
  int32_t *val;
  uint16_t *bits;
  uint8_t *state;
  int32_t *owner;
  int32_t *used;
  int32_t top;
  int32_t cap;
} level_t;

static void level_init(level_t *l, int32_t cap) {
  l->val = xcalloc((size_t)cap * PTRS, sizeof(int32_t));
  l->bits = xcalloc((size_t)cap * PTRS, sizeof(uint16_t));
  l->state = xcalloc(cap, 1);
  l->owner = xcalloc(cap, sizeof(int32_t));
  l->used = xcalloc(cap, sizeof(int32_t));
  l->top = 0;
  l->cap = cap;
}

static void level_free(level_t *l) {
  free(l->val);
  free(l->bits);
  free(l->state);
  free(l->owner);
  free(l->used);
}

/* pte_alloc_one: a zeroed table from the pool (id 0 is never used). */
static inline int32_t level_alloc(level_t *l, int32_t owner) {
  if (l->top + 1 >= l->cap) {
    fprintf(stderr, "table pool exhausted\n");
    exit(1);
  }
  int32_t id = ++l->top;
  size_t base = (size_t)id * PTRS;
  memset(l->val + base, 0, PTRS * sizeof(int32_t));
  memset(l->bits + base, 0, PTRS * sizeof(uint16_t));
  l->state[id] = T_ALLOCATED;
  l->owner[id] = owner;
  l->used[id] = 0;
  return id;
}

/* TableLevel.set: write an entry, keeping the per-table count of non-none entries. */
static inline void level_set(level_t *l, int32_t id, int32_t idx, int32_t val, uint16_t bits) {
  size_t i = (size_t)id * PTRS + idx;
  int was_none = (l->bits[i] & E_TYPE_MASK) == E_NONE;
  int is_none = (bits & E_TYPE_MASK) == E_NONE;
  if (was_none != is_none) l->used[id] += is_none ? -1 : 1;
  l->val[i] = val;
  l->bits[i] = bits;
}

/* Folio metadata, struct of arrays indexed by pfn (FolioTable). */
typedef struct {
  uint16_t *flags;
  uint8_t *order;
  int32_t *refcount, *pincount, *mapcount, *entire, *nr_mapped, *pte_mapcount;
  int32_t *mm_id0, *mm_id1, *mm_count0, *mm_count1, *mapping, *swap_slot, *data;
  double *index;
} folios_t;

/* Buddy allocator with the model's layout. */
typedef struct {
  int64_t nr_pages;
  int8_t *free_order;
  int32_t *next, *prev;
  int32_t head[MAX_ORDER + 1];
  double nr_free[MAX_ORDER + 1];
  int64_t free_pages;
} buddy_t;

static inline void buddy_push(buddy_t *b, int32_t pfn, int order) {
  int32_t h = b->head[order];
  b->next[pfn] = h;
  b->prev[pfn] = NIL;
  if (h != NIL) b->prev[h] = pfn;
  b->head[order] = pfn;
  b->free_order[pfn] = (int8_t)order;
  b->nr_free[order]++;
}

static inline void buddy_remove(buddy_t *b, int32_t pfn, int order) {
  int32_t n = b->next[pfn], p = b->prev[pfn];
  if (p != NIL) b->next[p] = n;
  else b->head[order] = n;
  if (n != NIL) b->prev[n] = p;
  b->free_order[pfn] = -1;
  b->nr_free[order]--;
}

static void buddy_free_block(buddy_t *b, int32_t pfn, int order) {
  int32_t p = pfn;
  int o = order;
  while (o < MAX_ORDER) {
    int32_t buddy = p ^ (1 << o);
    if (buddy >= b->nr_pages || b->free_order[buddy] != o) break;
    buddy_remove(b, buddy, o);
    if (buddy < p) p = buddy;
    o++;
  }
  buddy_push(b, p, o);
}

/* memblock_free_all: every page but pfn 0 (the zero page) in the largest aligned blocks. */
static void buddy_init(buddy_t *b, int64_t nr_pages) {
  b->nr_pages = nr_pages;
  b->free_order = malloc(nr_pages);
  b->next = malloc(nr_pages * sizeof(int32_t));
  b->prev = malloc(nr_pages * sizeof(int32_t));
  memset(b->free_order, 0xff, nr_pages);
  memset(b->next, 0xff, nr_pages * sizeof(int32_t));
  memset(b->prev, 0xff, nr_pages * sizeof(int32_t));
  for (int o = 0; o <= MAX_ORDER; o++) {
    b->head[o] = NIL;
    b->nr_free[o] = 0;
  }
  b->free_pages = 0;
  int64_t pfn = 0;
  while (pfn < nr_pages) {
    if (pfn == 0) {
      pfn++;
      continue;
    }
    int order = MAX_ORDER;
    while (order > 0 && (pfn % (1 << order) != 0 || pfn + (1 << order) > nr_pages)) order--;
    buddy_free_block(b, (int32_t)pfn, order);
    b->free_pages += 1 << order;
    pfn += 1 << order;
  }
}

static inline int32_t buddy_alloc(buddy_t *b, int order) {
  int o = order;
  while (o <= MAX_ORDER && b->head[o] == NIL) o++;
  if (o > MAX_ORDER) return NIL;
  int32_t pfn = b->head[o];
  buddy_remove(b, pfn, o);
  while (o > order) {
    o--;
    buddy_push(b, pfn + (1 << o), o);
  }
  b->free_pages -= 1 << order;
  return pfn;
}

typedef struct {
  level_t pgd, pud, pmd, pte;
  folios_t f;
  buddy_t buddy;
  int64_t nr_pages;
  int32_t mm_id, mm_pgd;
  /* The one VMA and the mm/stat counters the fault touches. */
  int64_t vma_start, vma_end;
  int vma_flags;
  int32_t anon_vma;
  int64_t pgfault, anon_mapped, rss_anon;
  int32_t data_token;
  int64_t lock_depth;
  int thp_enabled;
} kernel_t;

static void kernel_init(kernel_t *k, int64_t nr_pages, int64_t n_pte_tables) {
  memset(k, 0, sizeof(*k));
  k->nr_pages = nr_pages;
  /* Pools sized for the range (the model grows its pools by doubling instead). */
  level_init(&k->pgd, 4);
  level_init(&k->pud, (int32_t)(n_pte_tables / (PTRS * PTRS) + 4));
  level_init(&k->pmd, (int32_t)(n_pte_tables / PTRS + 4));
  level_init(&k->pte, (int32_t)(n_pte_tables + 4));
  folios_t *f = &k->f;
  f->flags = xcalloc(nr_pages, 2);
  f->order = xcalloc(nr_pages, 1);
  f->refcount = xcalloc(nr_pages, 4);
  f->pincount = xcalloc(nr_pages, 4);
  f->mapcount = xcalloc(nr_pages, 4);
  f->entire = xcalloc(nr_pages, 4);
  f->nr_mapped = xcalloc(nr_pages, 4);
  f->pte_mapcount = xcalloc(nr_pages, 4);
  f->mm_id0 = malloc(nr_pages * 4);
  f->mm_id1 = malloc(nr_pages * 4);
  memset(f->mm_id0, 0xff, nr_pages * 4);
  memset(f->mm_id1, 0xff, nr_pages * 4);
  f->mm_count0 = xcalloc(nr_pages, 4);
  f->mm_count1 = xcalloc(nr_pages, 4);
  f->mapping = xcalloc(nr_pages, 4);
  f->index = xcalloc(nr_pages, 8);
  f->swap_slot = malloc(nr_pages * 4);
  memset(f->swap_slot, 0xff, nr_pages * 4);
  f->data = xcalloc(nr_pages, 4);
  buddy_init(&k->buddy, nr_pages);
  /* The zero page. */
  f->flags[0] = PG_HEAD | PG_ZERO;
  f->refcount[0] = 1;
  k->mm_id = 1;
  k->mm_pgd = level_alloc(&k->pgd, k->mm_id);
  k->pgd.state[k->mm_pgd] = T_LINKED;
}

static void kernel_free(kernel_t *k) {
  level_free(&k->pgd);
  level_free(&k->pud);
  level_free(&k->pmd);
  level_free(&k->pte);
  folios_t *f = &k->f;
  void *ps[] = {f->flags,     f->order,     f->refcount,  f->pincount, f->mapcount,
                f->entire,    f->nr_mapped, f->pte_mapcount, f->mm_id0,  f->mm_id1,
                f->mm_count0, f->mm_count1, f->mapping,   f->index,    f->swap_slot,
                f->data,      k->buddy.free_order, k->buddy.next, k->buddy.prev};
  for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) free(ps[i]);
}

static inline int idx_of(int64_t vpn, int level) {
  return (int)((vpn >> (LVL_SHIFT * (3 - level))) & (PTRS - 1));
}

/* hwAccess: walk, check, set young/dirty, store a fresh value; pfn or -1 on a miss. */
static inline int32_t hw_access(kernel_t *k, int64_t vpn, int write) {
  size_t i = (size_t)k->mm_pgd * PTRS + idx_of(vpn, 0);
  if ((k->pgd.bits[i] & E_TYPE_MASK) != E_TABLE) return -1;
  i = (size_t)k->pgd.val[i] * PTRS + idx_of(vpn, 1);
  if ((k->pud.bits[i] & E_TYPE_MASK) != E_TABLE) return -1;
  i = (size_t)k->pud.val[i] * PTRS + idx_of(vpn, 2);
  uint16_t pmd_bits = k->pmd.bits[i];
  if ((pmd_bits & E_TYPE_MASK) == E_PRESENT) {
    if (pmd_bits & B_PROTNONE || (write && !(pmd_bits & B_WRITE))) return -1;
    k->pmd.bits[i] |= write ? B_YOUNG | B_DIRTY : B_YOUNG;
    int32_t pfn = k->pmd.val[i] + (int32_t)(vpn & (PTRS - 1));
    if (write) k->f.data[pfn] = ++k->data_token;
    return pfn;
  }
  if ((pmd_bits & E_TYPE_MASK) != E_TABLE) return -1;
  i = (size_t)k->pmd.val[i] * PTRS + idx_of(vpn, 3);
  uint16_t bits = k->pte.bits[i];
  if ((bits & E_TYPE_MASK) != E_PRESENT || bits & B_PROTNONE) return -1;
  if (write && !(bits & B_WRITE)) return -1;
  k->pte.bits[i] = bits | (write ? B_YOUNG | B_DIRTY : B_YOUNG);
  int32_t pfn = k->pte.val[i];
  if (write) k->f.data[pfn] = ++k->data_token;
  return pfn;
}

/* __pud_alloc / __pmd_alloc. */
static inline int32_t alloc_lower(kernel_t *k, level_t *upper, level_t *lower, int32_t table,
                                  int idx) {
  size_t i = (size_t)table * PTRS + idx;
  if ((upper->bits[i] & E_TYPE_MASK) == E_TABLE) return upper->val[i];
  int32_t fresh = level_alloc(lower, k->mm_id);
  k->lock_depth++;
  level_set(upper, table, idx, fresh, E_TABLE);
  lower->state[fresh] = T_LINKED;
  k->lock_depth--;
  return fresh;
}

/* folio_alloc(0) + prep. */
static inline int32_t alloc_folio0(kernel_t *k) {
  int32_t pfn = buddy_alloc(&k->buddy, 0);
  if (pfn == NIL) return NIL;
  folios_t *f = &k->f;
  f->order[pfn] = 0;
  f->flags[pfn] = PG_HEAD;
  f->refcount[pfn] = 1;
  f->pincount[pfn] = 0;
  f->mapcount[pfn] = 0;
  f->entire[pfn] = 0;
  f->nr_mapped[pfn] = 0;
  f->mm_id0[pfn] = NO_MM;
  f->mm_id1[pfn] = NO_MM;
  f->mm_count0[pfn] = 0;
  f->mm_count1[pfn] = 0;
  f->mapping[pfn] = 0;
  f->index[pfn] = 0;
  f->swap_slot[pfn] = -1;
  f->pte_mapcount[pfn] = 0;
  f->data[pfn] = 0;
  return pfn;
}

/* faultUser -> handleMmFault -> handlePteFault -> doAnonymousPage, order 0, write. */
static inline int fault(kernel_t *k, int64_t vpn, int write) {
  k->pgfault++;
  k->lock_depth++; /* rcu */
  if (vpn < k->vma_start || vpn >= k->vma_end) return -1;
  if (write && !(k->vma_flags & VM_WRITE)) return -1;
  k->lock_depth++; /* vma read lock */
  k->lock_depth--; /* rcu */
  int32_t pud = alloc_lower(k, &k->pgd, &k->pud, k->mm_pgd, idx_of(vpn, 0));
  int32_t pmdT = alloc_lower(k, &k->pud, &k->pmd, pud, idx_of(vpn, 1));
  int pmdI = idx_of(vpn, 2);
  size_t pi = (size_t)pmdT * PTRS + pmdI;
  if ((k->pmd.bits[pi] & E_TYPE_MASK) == E_NONE && k->thp_enabled) return -1; /* not modelled */
  int32_t pteT;
  if ((k->pmd.bits[pi] & E_TYPE_MASK) == E_NONE) {
    int32_t fresh = level_alloc(&k->pte, k->mm_id);
    k->lock_depth++;
    level_set(&k->pmd, pmdT, pmdI, fresh, E_TABLE);
    k->pte.state[fresh] = T_LINKED;
    k->lock_depth--;
    pteT = fresh;
  } else if ((k->pmd.bits[pi] & E_TYPE_MASK) == E_TABLE) {
    pteT = k->pmd.val[pi];
  } else
    return 0;
  int pteI = (int)(vpn & (PTRS - 1));
  size_t ei = (size_t)pteT * PTRS + pteI;
  if ((k->pte.bits[ei] & E_TYPE_MASK) != E_NONE) return 0;
  if (!k->anon_vma) k->anon_vma = 1; /* anon_vma_prepare, once */
  int32_t folio = alloc_folio0(k);
  if (folio == NIL) return -2;
  k->lock_depth++; /* pte lock */
  if (k->pmd.val[pi] != pteT || (k->pte.bits[ei] & E_TYPE_MASK) != E_NONE) {
    k->lock_depth--;
    return 0;
  }
  folios_t *f = &k->f;
  /* folio_add_new_anon_rmap */
  f->flags[folio] |= PG_ANON | PG_LRU;
  f->mapping[folio] = k->anon_vma;
  f->index[folio] = (double)vpn; /* vm_pgoff + (vpn - vm_start), pgoff == start */
  f->flags[folio] |= PG_ANON_EXCLUSIVE;
  /* folio_add_anon_rmap_ptes */
  int32_t before = f->entire[folio] > 0 ? 1 : f->nr_mapped[folio];
  if (f->pte_mapcount[folio]++ == 0) f->nr_mapped[folio]++;
  f->mapcount[folio] += 1;
  k->anon_mapped += (f->entire[folio] > 0 ? 1 : f->nr_mapped[folio]) - before;
  k->rss_anon += 1;
  uint16_t w = k->vma_flags & VM_WRITE ? B_WRITE | B_DIRTY : 0;
  level_set(&k->pte, pteT, pteI, folio, E_PRESENT | B_YOUNG | w);
  k->lock_depth--; /* pte lock */
  k->lock_depth--; /* vma read lock */
  return 0;
}

/* userAccess. */
static inline int user_access(kernel_t *k, int64_t vpn, int write) {
  if (hw_access(k, vpn, write) != -1) return 0;
  for (int attempt = 0; attempt < 4; attempt++) {
    int r = fault(k, vpn, write);
    if (r < 0) return r;
    if (hw_access(k, vpn, write) != -1) return 1;
  }
  return -3;
}

/* The PMD table covering vpn, or 0 (pmdTableOf). */
static inline int32_t pmd_table_of(kernel_t *k, int64_t vpn) {
  size_t i = (size_t)k->mm_pgd * PTRS + idx_of(vpn, 0);
  if ((k->pgd.bits[i] & E_TYPE_MASK) != E_TABLE) return 0;
  i = (size_t)k->pgd.val[i] * PTRS + idx_of(vpn, 1);
  if ((k->pud.bits[i] & E_TYPE_MASK) != E_TABLE) return 0;
  return k->pud.val[i];
}

typedef struct {
  int64_t present, swap, other;
  int64_t sum;
} pte_counts_t;

/* Read every PTE of [start, end): type bits and val of each entry. */
static __attribute__((noinline)) void read_ptes(kernel_t *k, int64_t start, int64_t end,
                                                pte_counts_t *c) {
  int64_t present = 0, swap = 0, other = 0, sum = 0;
  for (int64_t s = start; s < end;) {
    int64_t base = s & ~(int64_t)(PTRS - 1);
    int64_t e = base + PTRS < end ? base + PTRS : end;
    int32_t pmdT = pmd_table_of(k, s);
    if (pmdT) {
      size_t pi = (size_t)pmdT * PTRS + idx_of(s, 2);
      uint16_t pb = k->pmd.bits[pi];
      if ((pb & E_TYPE_MASK) == E_PRESENT) {
        present += PTRS;
        sum += k->pmd.val[pi];
      } else if ((pb & E_TYPE_MASK) == E_TABLE) {
        size_t off = (size_t)k->pmd.val[pi] * PTRS;
        const uint16_t *bits = k->pte.bits + off;
        const int32_t *val = k->pte.val + off;
        for (int i = (int)(s - base); i < (int)(e - base); i++) {
          uint16_t b = bits[i];
          int t = b & E_TYPE_MASK;
          if (t == E_NONE) continue;
          if (t == E_SWAP) swap++;
          if (t == E_PRESENT && !(b & B_SPECIAL)) {
            present++;
            sum += val[i];
          } else
            other++;
        }
      }
    }
    s = e;
  }
  c->present = present;
  c->swap = swap;
  c->other = other;
  c->sum = sum;
}

typedef struct {
  int64_t rss, anonymous, swap;
  int64_t by_order[32];
} smaps_counts_t;

/* read_ptes plus the per-entry folio work of smapsCounts. */
static __attribute__((noinline)) void read_smaps(kernel_t *k, int64_t start, int64_t end,
                                                 smaps_counts_t *c) {
  const uint16_t *fflags = k->f.flags;
  const uint8_t *forder = k->f.order;
  const int32_t *fmapping = k->f.mapping;
  memset(c, 0, sizeof(*c));
  for (int64_t s = start; s < end;) {
    int64_t base = s & ~(int64_t)(PTRS - 1);
    int64_t e = base + PTRS < end ? base + PTRS : end;
    int32_t pmdT = pmd_table_of(k, s);
    if (pmdT) {
      size_t pi = (size_t)pmdT * PTRS + idx_of(s, 2);
      uint16_t pb = k->pmd.bits[pi];
      if ((pb & E_TYPE_MASK) == E_PRESENT) {
        int32_t head = k->pmd.val[pi];
        if (!(fflags[head] & PG_ZERO)) {
          c->rss += PTRS;
          c->by_order[forder[head]] += PTRS;
          if (fflags[head] & PG_ANON) c->anonymous += PTRS;
        }
      } else if ((pb & E_TYPE_MASK) == E_TABLE) {
        size_t off = (size_t)k->pmd.val[pi] * PTRS;
        const uint16_t *bits = k->pte.bits + off;
        const int32_t *val = k->pte.val + off;
        for (int i = (int)(s - base); i < (int)(e - base); i++) {
          uint16_t b = bits[i];
          int t = b & E_TYPE_MASK;
          if (t == E_SWAP) c->swap++;
          if (t != E_PRESENT || (b & B_SPECIAL)) continue;
          int32_t pfn = val[i];
          int32_t head = (fflags[pfn] & PG_TAIL) ? fmapping[pfn] : pfn;
          c->rss++;
          c->by_order[forder[head]]++;
          if (fflags[head] & PG_ANON) c->anonymous++;
        }
      }
    }
    s = e;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *samples, int n) {
  double xs[64];
  memcpy(xs, samples, n * sizeof(double));
  qsort(xs, n, sizeof(double), cmp_double);
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

static void print_list(const double *xs, int n) {
  printf("[");
  for (int i = 0; i < n; i++) printf("%s%.9f", i ? ", " : "", xs[i]);
  printf("]");
}

/* ---- (c) khugepaged's PMD scan ---------------------------------------------------------- */

/* The scan results the benchmark can meet (the rest of enum scan_result is not reachable here). */
enum {
  R_SUCCEED,
  R_NO_PTE_TABLE,
  R_PMD_MAPPED,
  R_EXCEED_NONE_PTE,
  R_EXCEED_SWAP_PTE,
  R_PTE_UFFD_WP,
  R_PAGE_LAZYFREE,
  R_PAGE_ANON,
  R_EXCEED_SHARED_PTE,
  R_PAGE_LRU,
  R_PAGE_LOCK,
  R_PAGE_COUNT,
  R_LACK_REFERENCED_PAGE,
  R_COUNT
};
static const char *const R_NAMES[R_COUNT] = {
    "SCAN_SUCCEED",        "SCAN_NO_PTE_TABLE",    "SCAN_PMD_MAPPED",  "SCAN_EXCEED_NONE_PTE",
    "SCAN_EXCEED_SWAP_PTE", "SCAN_PTE_UFFD_WP",    "SCAN_PAGE_LAZYFREE", "SCAN_PAGE_ANON",
    "SCAN_EXCEED_SHARED_PTE", "SCAN_PAGE_LRU",     "SCAN_PAGE_LOCK",   "SCAN_PAGE_COUNT",
    "SCAN_LACK_REFERENCED_PAGE"};

/* The khugepaged knobs the scan reads (defaults for 4K pages) and the 7.2 profile's lazy-free
 * check; kept in a struct the compiler cannot see through, as the model reads them per PMD. */
typedef struct {
  int max_ptes_none, max_ptes_swap, max_ptes_shared;
  int is_khugepaged, scan_page_lazyfree;
} scan_knobs_t;

typedef struct {
  int64_t result[R_COUNT];
  int64_t inspected, referenced, none_or_zero, unmapped, shared;
  int64_t last_folio_sum;
} scan_tally_t;

static inline int32_t head_of(const folios_t *f, int32_t pfn) {
  return (f->flags[pfn] & PG_TAIL) ? f->mapping[pfn] : pfn;
}

/* collapse_scan_pmd for the PMD range at vpn, with the caller holding the mmap read lock. */
static inline void scan_pmd(kernel_t *k, int64_t vpn, const scan_knobs_t *kn, scan_tally_t *t) {
  /* find_pmd_or_thp_or_none */
  int32_t pmdT = pmd_table_of(k, vpn);
  if (!pmdT) {
    t->result[R_NO_PTE_TABLE]++;
    return;
  }
  size_t pi = (size_t)pmdT * PTRS + idx_of(vpn, 2);
  int ptype = k->pmd.bits[pi] & E_TYPE_MASK;
  if (ptype == E_PRESENT) {
    t->result[R_PMD_MAPPED]++;
    return;
  }
  if (ptype != E_TABLE) {
    t->result[R_NO_PTE_TABLE]++;
    return;
  }
  /* the limits: collapse_max_ptes_none / _swap / _shared */
  int uffd = (k->vma_flags & (VM_UFFD_MISSING | VM_UFFD_WP)) != 0;
  int khugepaged = kn->is_khugepaged;
  int lim_none = uffd ? 0 : khugepaged ? kn->max_ptes_none : PTRS;
  int lim_swap = khugepaged ? kn->max_ptes_swap : PTRS;
  int lim_shared = khugepaged ? kn->max_ptes_shared : PTRS;
  int lazy = khugepaged && kn->scan_page_lazyfree;
  const folios_t *f = &k->f;
  const uint16_t *fl = f->flags;
  size_t off = (size_t)k->pmd.val[pi] * PTRS;
  const uint16_t *bits = k->pte.bits + off;
  const int32_t *val = k->pte.val + off;
  k->lock_depth += 2; /* rcu, pte lock */
  int result = R_SUCCEED;
  int inspected = 0, none_or_zero = 0, unmapped = 0, shared = 0, referenced = 0;
  int32_t last = -1;
  for (int i = 0; i < PTRS; i++) {
    inspected++;
    uint16_t b = bits[i];
    int32_t v = val[i];
    int type = b & E_TYPE_MASK;
    /* pte_none_or_zero */
    if (type == E_NONE ||
        (type == E_PRESENT && ((b & B_SPECIAL) || (fl[head_of(f, v)] & PG_ZERO)))) {
      if (++none_or_zero <= lim_none) continue;
      result = R_EXCEED_NONE_PTE;
      break;
    }
    if (type != E_PRESENT) {
      if (++unmapped <= lim_swap) {
        if ((type == E_SWAP && (b & B_UFFD_WP)) || (type == E_MARKER && v == MARKER_UFFD_WP)) {
          result = R_PTE_UFFD_WP;
          break;
        }
        continue;
      }
      result = R_EXCEED_SWAP_PTE;
      break;
    }
    if (b & B_UFFD_WP) {
      result = R_PTE_UFFD_WP;
      break;
    }
    int32_t head = head_of(f, v);
    last = head;
    uint16_t hf = fl[head];
    if (lazy && (hf & PG_LAZYFREE) && !(hf & PG_DIRTY) && !(b & B_DIRTY) &&
        !(k->vma_flags & VM_DROPPABLE)) {
      result = R_PAGE_LAZYFREE;
      break;
    }
    if (!(hf & PG_ANON)) {
      result = R_PAGE_ANON;
      break;
    }
    /* folio_maybe_mapped_shared */
    if (f->order[head] == 0 ? f->mapcount[head] > 1 : (hf & PG_MAYBE_SHARED) != 0) {
      if (++shared > lim_shared) {
        result = R_EXCEED_SHARED_PTE;
        break;
      }
    }
    if (!(hf & PG_LRU)) {
      result = R_PAGE_LRU;
      break;
    }
    if (hf & PG_LOCKED) {
      result = R_PAGE_LOCK;
      break;
    }
    /* is_refcount_suitable */
    int32_t expected = f->mapcount[head] + f->pincount[head];
    if (hf & PG_SWAPCACHE) expected += 1 << f->order[head];
    if (f->refcount[head] != expected || f->pincount[head] != 0) {
      result = R_PAGE_COUNT;
      break;
    }
    if (khugepaged && ((b & B_YOUNG) || (hf & (PG_YOUNG | PG_REFERENCED)))) referenced++;
  }
  if (result == R_SUCCEED && khugepaged &&
      (referenced == 0 || (unmapped > 0 && referenced < PTRS / 2)))
    result = R_LACK_REFERENCED_PAGE;
  k->lock_depth -= 2;
  t->result[result]++;
  t->inspected += inspected;
  t->referenced += referenced;
  t->none_or_zero += none_or_zero;
  t->unmapped += unmapped;
  t->shared += shared;
  t->last_folio_sum += last;
}

/* Every PMD range of [start, end) (both PMD aligned), as one khugepaged pass would with no budget. */
static __attribute__((noinline)) void scan_range(kernel_t *k, int64_t start, int64_t end,
                                                 const scan_knobs_t *kn, scan_tally_t *t) {
  memset(t, 0, sizeof(*t));
  k->lock_depth++; /* mmap read lock */
  for (int64_t vpn = start; vpn < end; vpn += PTRS) scan_pmd(k, vpn, kn, t);
  k->lock_depth--;
}

static int main_scan(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s scan nPages ramPages startVpn reps\n", argv[0]);
    return 2;
  }
  int64_t n = atoll(argv[2]);
  int64_t ram = atoll(argv[3]);
  int64_t start = atoll(argv[4]);
  int reps = atoi(argv[5]);
  if (n <= 0 || n % PTRS || start % PTRS || ram <= n || reps < 1 || reps > 64) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  int64_t tables = n / PTRS + 1;
  kernel_t k;
  kernel_init(&k, ram, tables);
  k.vma_start = start;
  k.vma_end = start + n;
  k.vma_flags = VM_READ | VM_WRITE;
  double t0 = now();
  for (int64_t vpn = start; vpn < start + n; vpn++) {
    if (user_access(&k, vpn, 1) != 1) {
      fprintf(stderr, "fault failed at %lld\n", (long long)vpn);
      return 1;
    }
  }
  double fault_s = now() - t0;
  /* Read from a volatile so the compiler cannot fold the knobs into the loop. */
  volatile int knob_src[5] = {PTRS - 1, PTRS / 8, PTRS / 2, 1, 1};
  scan_knobs_t kn = {knob_src[0], knob_src[1], knob_src[2], knob_src[3], knob_src[4]};
  scan_tally_t t;
  double scan_s[64], scan_cpu[64];
  int64_t checksum = 0;
  for (int r = 0; r < reps + 1; r++) {
    double c0 = cpu_now(), w0 = now();
    scan_range(&k, start, start + n, &kn, &t);
    double c1 = cpu_now(), w1 = now();
    checksum += t.referenced + t.last_folio_sum;
    if (r == 0) continue; /* warm-up */
    scan_s[r - 1] = w1 - w0;
    scan_cpu[r - 1] = c1 - c0;
  }
  if (k.lock_depth != 0) {
    fprintf(stderr, "unbalanced lock depth\n");
    return 1;
  }
  printf("{\"n\": %lld, \"ramPages\": %lld, \"startVpn\": %lld, \"fault_s\": %.9f, ", (long long)n,
         (long long)ram, (long long)start, fault_s);
  printf("\"scan\": {\"median_s\": %.9f, \"samples_s\": ", median(scan_s, reps));
  print_list(scan_s, reps);
  printf(", \"cpu_median_s\": %.9f, \"results\": {", median(scan_cpu, reps));
  int first = 1;
  for (int i = 0; i < R_COUNT; i++)
    if (t.result[i]) {
      printf("%s\"%s\": %lld", first ? "" : ", ", R_NAMES[i], (long long)t.result[i]);
      first = 0;
    }
  printf("}, \"inspected\": %lld, \"referenced\": %lld, \"noneOrZero\": %lld, \"unmapped\": %lld, "
         "\"shared\": %lld, \"lastFolioSum\": %lld}, \"checksum\": %lld}\n",
         (long long)t.inspected, (long long)t.referenced, (long long)t.none_or_zero,
         (long long)t.unmapped, (long long)t.shared, (long long)t.last_folio_sum,
         (long long)checksum);
  kernel_free(&k);
  return 0;
}

/* ---- (d) walk: the v19 forward walk over the orders of one PMD range ---- */

#define WALK_PMD_ORDER 9
enum {
  W_FAIL,
  W_SUCCEED,
  W_PTE_MAPPED_HUGEPAGE,
  W_ALLOC_HUGE_PAGE_FAIL,
  W_LACK_REFERENCED_PAGE,
  W_EXCEED_NONE_PTE,
  W_EXCEED_SWAP_PTE,
  W_EXCEED_SHARED_PTE,
  W_PAGE_LOCK,
  W_PAGE_COUNT,
  W_PAGE_NULL,
  W_DEL_PAGE_LRU,
  W_PTE_NON_PRESENT,
  W_PTE_UFFD_WP,
  W_PAGE_LAZYFREE,
  W_COUNT
};
static const char *const W_NAMES[W_COUNT] = {
    "SCAN_FAIL",          "SCAN_SUCCEED",           "SCAN_PTE_MAPPED_HUGEPAGE",
    "SCAN_ALLOC_HUGE_PAGE_FAIL", "SCAN_LACK_REFERENCED_PAGE", "SCAN_EXCEED_NONE_PTE",
    "SCAN_EXCEED_SWAP_PTE", "SCAN_EXCEED_SHARED_PTE", "SCAN_PAGE_LOCK",
    "SCAN_PAGE_COUNT",    "SCAN_PAGE_NULL",         "SCAN_DEL_PAGE_LRU",
    "SCAN_PTE_NON_PRESENT", "SCAN_PTE_UFFD_WP",     "SCAN_PAGE_LAZYFREE"};

/* The SOFT set of order-walk.ts: failures after which a smaller order is worth a try. */
static inline int walk_soft(int r) { return r >= W_ALLOC_HUGE_PAGE_FAIL && r <= W_PAGE_LAZYFREE; }

static uint32_t xs_state;
static inline uint32_t xs_next(void) {
  uint32_t x = xs_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return xs_state = x;
}

/* The bitmaps of bench/mthp-walk.ts (makeBitmaps): 16 words of 32 bits each. */
static void make_bitmaps(uint32_t *words, int n, uint32_t seed) {
  xs_state = seed ? seed : 1;
  for (int b = 0; b < n; b++) {
    uint32_t r = xs_next();
    uint32_t kind = r & 3, base = (r >> 2) % 17;
    for (int w = 0; w < PTRS / 32; w++) {
      uint32_t k = kind == 0   ? base
                   : kind == 1 ? xs_next() % 17
                   : kind == 2 ? ((xs_next() & 1) ? 16 : 0)
                               : 12 + xs_next() % 5;
      uint32_t word = 0;
      for (int bit = 0; bit < 32; bit++)
        if ((xs_next() & 15) < k) word |= 1u << bit;
      words[b * (PTRS / 32) + w] = word;
    }
  }
}

static inline int bm_test(const uint32_t *w, int i) { return (w[i >> 5] >> (i & 31)) & 1; }

/* PteBitmap.count: leading partial word bit by bit, whole words by popcount, trailing bits. */
static inline int bm_count(const uint32_t *w, int start, int n) {
  int total = 0, i = start, end = start + n;
  while (i < end && (i & 31)) total += bm_test(w, i++);
  while (i + 32 <= end) {
    total += __builtin_popcount(w[i >> 5]);
    i += 32;
  }
  while (i < end) total += bm_test(w, i++);
  return total;
}

/* maxPtesNoneV19 for khugepaged (not MADV_COLLAPSE), no uffd. */
static inline int max_ptes_none_v19(int sysfs, int order) {
  if (order == WALK_PMD_ORDER) return sysfs;
  if (sysfs == PTRS - 1) return (1 << order) - 1;
  return 0;
}

static inline int max_order_from_offset(int offset) {
  if (offset == 0) return WALK_PMD_ORDER;
  int o = __builtin_ctz((unsigned)offset);
  return o < WALK_PMD_ORDER ? o : WALK_PMD_ORDER;
}

typedef struct {
  int64_t result[W_COUNT];
  int64_t attempts, collapsed;
  uint32_t hash;
} walk_tally_t;

static inline void walk_pmd(const uint32_t *bits, int enabled, int sysfs, int unmapped,
                            walk_tally_t *t) {
  int offset = 0, order = WALK_PMD_ORDER, collapsed = 0, alloc_failed = 0, last = W_FAIL;
  int result = -1;
  uint32_t h = t->hash;
  while (offset < PTRS) {
    int n = 1 << order;
    int advance = 0;
    if (enabled & (1 << order)) {
      int occupied = bm_count(bits, offset, n) + (order == WALK_PMD_ORDER ? unmapped : 0);
      if (occupied >= n - max_ptes_none_v19(sysfs, order)) {
        /* The attempt: recorded, then the deterministic outcome. */
        t->attempts++;
        h = h * 31u + (uint32_t)((offset << 4) | order);
        int r = bm_test(bits, offset) ? W_SUCCEED : W_ALLOC_HUGE_PAGE_FAIL;
        if (r == W_SUCCEED) {
          collapsed += n;
          advance = 1;
        } else if (r == W_PTE_MAPPED_HUGEPAGE)
          advance = 1;
        else if (walk_soft(r)) {
          last = r;
          if (r == W_ALLOC_HUGE_PAGE_FAIL) alloc_failed = 1;
        } else {
          result = r;
          break;
        }
      }
    }
    if (!advance && order > 2 && (enabled & ((1 << order) - 1) & ~3)) {
      order--;
      continue;
    }
    offset += 1 << order;
    order = max_order_from_offset(offset);
  }
  if (result < 0) result = collapsed ? W_SUCCEED : alloc_failed ? W_ALLOC_HUGE_PAGE_FAIL : last;
  t->hash = h;
  t->result[result]++;
  t->collapsed += collapsed;
}

static __attribute__((noinline)) void walk_all(const uint32_t *words, int n, int enabled,
                                               int sysfs, walk_tally_t *t) {
  memset(t, 0, sizeof(*t));
  for (int b = 0; b < n; b++) walk_pmd(words + (int64_t)b * (PTRS / 32), enabled, sysfs, 0, t);
}

static int main_walk(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s walk nBitmaps seed maxPtesNone enabledMask reps\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[2]);
  uint32_t seed = (uint32_t)strtoul(argv[3], NULL, 10);
  volatile int knob_src[2] = {atoi(argv[4]), atoi(argv[5])};
  int sysfs = knob_src[0], enabled = knob_src[1];
  int reps = atoi(argv[6]);
  if (n <= 0 || reps < 1 || reps > 64 || sysfs < 0 || sysfs > PTRS - 1) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  uint32_t *words = xcalloc((size_t)n * (PTRS / 32), sizeof(uint32_t));
  make_bitmaps(words, n, seed);
  uint32_t bitmap_hash = 0;
  for (int64_t i = 0; i < (int64_t)n * (PTRS / 32); i++) bitmap_hash = bitmap_hash * 31u + words[i];
  double *wall = xcalloc((size_t)reps, sizeof(double));
  double *cpu = xcalloc((size_t)reps, sizeof(double));
  walk_tally_t t, first;
  for (int r = 0; r < reps + 1; r++) {
    double c0 = cpu_now(), w0 = now();
    walk_all(words, n, enabled, sysfs, &t);
    double c1 = cpu_now(), w1 = now();
    if (r == 0) {
      first = t; /* warm-up */
      continue;
    }
    if (t.hash != first.hash || t.attempts != first.attempts) {
      fprintf(stderr, "walk results changed\n");
      return 1;
    }
    wall[r - 1] = w1 - w0;
    cpu[r - 1] = c1 - c0;
  }
  printf("{\"n\": %d, \"maxPtesNone\": %d, \"enabled\": %d, \"bitmapHash\": %u, ", n, sysfs,
         enabled, bitmap_hash);
  printf("\"median_s\": %.9f, \"cpu_median_s\": %.9f, \"samples_s\": ", median(wall, reps),
         median(cpu, reps));
  print_list(wall, reps);
  printf(", \"attempts\": %lld, \"collapsed\": %lld, \"hash\": %u, \"results\": {",
         (long long)t.attempts, (long long)t.collapsed, t.hash);
  int firstName = 1;
  for (int i = 0; i < W_COUNT; i++)
    if (t.result[i]) {
      printf("%s\"%s\": %lld", firstName ? "" : ", ", W_NAMES[i], (long long)t.result[i]);
      firstName = 0;
    }
  printf("}}\n");
  free(words);
  free(wall);
  free(cpu);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "walk") == 0) return main_walk(argc, argv);
  if (argc > 1 && strcmp(argv[1], "scan") == 0) return main_scan(argc, argv);
  if (argc != 6) {
    fprintf(stderr, "usage: %s nPages ramPages startVpn faultReps readReps\n", argv[0]);
    return 2;
  }
  int64_t n = atoll(argv[1]);
  int64_t ram = atoll(argv[2]);
  int64_t start = atoll(argv[3]);
  int fault_reps = atoi(argv[4]);
  int read_reps = atoi(argv[5]);
  if (n <= 0 || ram <= n || fault_reps < 1 || read_reps < 1 || fault_reps > 64 || read_reps > 64) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  int64_t tables = (start + n + PTRS - 1) / PTRS - start / PTRS + 1;
  double fault_s[64], pte_s[64], smaps_s[64], fault_cpu[64], pte_cpu[64], smaps_cpu[64];
  kernel_t k;
  int64_t checksum = 0;
  for (int r = 0; r < fault_reps; r++) {
    kernel_init(&k, ram, tables);
    k.vma_start = start;
    k.vma_end = start + n;
    k.vma_flags = VM_READ | VM_WRITE;
    double c0 = cpu_now();
    double t0 = now();
    for (int64_t vpn = start; vpn < start + n; vpn++) {
      if (user_access(&k, vpn, 1) != 1) {
        fprintf(stderr, "fault failed at %lld\n", (long long)vpn);
        return 1;
      }
    }
    fault_s[r] = now() - t0;
    fault_cpu[r] = cpu_now() - c0;
    if (k.pgfault != n || k.rss_anon != n || k.anon_mapped != n || k.lock_depth != 0) {
      fprintf(stderr, "fault accounting mismatch\n");
      return 1;
    }
    checksum += k.data_token;
    if (r + 1 < fault_reps) kernel_free(&k);
  }
  pte_counts_t pc;
  smaps_counts_t sc;
  for (int r = 0; r < read_reps + 1; r++) {
    double c0 = cpu_now(), t0 = now();
    read_ptes(&k, start, start + n, &pc);
    double c1 = cpu_now(), t1 = now();
    read_smaps(&k, start, start + n, &sc);
    double c2 = cpu_now(), t2 = now();
    if (r == 0) continue; /* warm-up */
    pte_s[r - 1] = t1 - t0;
    smaps_s[r - 1] = t2 - t1;
    pte_cpu[r - 1] = c1 - c0;
    smaps_cpu[r - 1] = c2 - c1;
    checksum += pc.present + pc.sum + sc.rss + sc.anonymous;
  }
  if (pc.present != n || sc.rss != n || sc.anonymous != n || sc.by_order[0] != n) {
    fprintf(stderr, "read mismatch: present %lld rss %lld\n", (long long)pc.present,
            (long long)sc.rss);
    return 1;
  }
  printf("{\"n\": %lld, \"ramPages\": %lld, \"startVpn\": %lld, ", (long long)n, (long long)ram,
         (long long)start);
  printf("\"fault\": {\"median_s\": %.9f, \"samples_s\": ", median(fault_s, fault_reps));
  print_list(fault_s, fault_reps);
  printf(", \"cpu_median_s\": %.9f, \"cpu_s\": ", median(fault_cpu, fault_reps));
  print_list(fault_cpu, fault_reps);
  printf(", \"freePages\": %lld, \"pteTables\": %d, \"pgfault\": %lld}, ",
         (long long)k.buddy.free_pages, k.pte.top, (long long)k.pgfault);
  printf("\"readPte\": {\"median_s\": %.9f, \"samples_s\": ", median(pte_s, read_reps));
  print_list(pte_s, read_reps);
  printf(", \"cpu_median_s\": %.9f", median(pte_cpu, read_reps));
  printf(", \"present\": %lld, \"valSum\": %lld}", (long long)pc.present, (long long)pc.sum);
  printf(", \"readSmaps\": {\"median_s\": %.9f, \"samples_s\": ", median(smaps_s, read_reps));
  print_list(smaps_s, read_reps);
  printf(", \"cpu_median_s\": %.9f", median(smaps_cpu, read_reps));
  printf(", \"rss\": %lld}, \"checksum\": %lld}\n", (long long)sc.rss, (long long)checksum);
  kernel_free(&k);
  return 0;
}
