import { describe, expect, it } from 'vitest';
import {
  FolioTable,
  NO_MM,
  PG_ANON,
  PG_HEAD,
  PG_MAYBE_SHARED,
  PG_SWAPCACHE,
  PG_TAIL,
} from '../src/mm/folio.ts';

const A = 11;
const B = 22;
const C = 33;

/** A table of 64 pages with an order-4 folio at 16 and a small folio at 5. */
function table(): { f: FolioTable; head: number; small: number } {
  const f = new FolioTable(64);
  f.prep(16, 4);
  f.prep(5, 0);
  return { f, head: 16, small: 5 };
}

describe('FolioTable: prep and compound_head', () => {
  it('prep makes a head with one reference and tails that point back', () => {
    const { f, head } = table();
    expect(f.nrPagesOf(head)).toBe(16);
    expect(f.isLarge(head)).toBe(true);
    expect(f.refcount[head]).toBe(1);
    expect(f.flags[head]).toBe(PG_HEAD);
    for (let i = 1; i < 16; i++) {
      expect(f.flags[head + i]).toBe(PG_TAIL);
      expect(f.headOf(head + i)).toBe(head);
    }
    expect(f.headOf(head)).toBe(head);
    expect(f.headOf(head + 16)).toBe(head + 16); // past the folio: not a tail of it
    expect(f.mmId0[head]).toBe(NO_MM);
    expect(f.mmId1[head]).toBe(NO_MM);
  });

  it('reset clears the folio for the allocator', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 3, A);
    f.reset(head);
    expect(f.refcount[head]).toBe(0);
    expect(f.mapcount[head]).toBe(0);
    for (let i = 0; i < 16; i++) {
      expect(f.flags[head + i]).toBe(0);
      expect(f.pteMapcount[head + i]).toBe(0);
      expect(f.headOf(head + i)).toBe(head + i);
    }
  });
});

describe('mapcounts', () => {
  it('PTE mappings: per-page counts, nr_pages_mapped and the total', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head + 2, 3, A);
    expect([2, 3, 4].map((i) => f.pteMapcount[head + i])).toEqual([1, 1, 1]);
    expect(f.pteMapcount[head + 1]).toBe(0);
    expect(f.pteMapcount[head + 5]).toBe(0);
    expect(f.nrPagesMapped[head]).toBe(3);
    expect(f.mapcount[head]).toBe(3);
    expect(f.mapped(head)).toBe(true);
    // The same pages mapped again: more mappings, no more pages mapped.
    f.addRmapPtes(head, head + 3, 2, A);
    expect(f.pteMapcount[head + 3]).toBe(2);
    expect(f.nrPagesMapped[head]).toBe(3);
    expect(f.mapcount[head]).toBe(5);
    expect(f.pageMapcount(head + 3)).toBe(2);
    expect(f.pageMapcount(head + 2)).toBe(1);
    expect(f.pageMapcount(head + 7)).toBe(0);
  });

  it('removing PTEs reports a partially mapped folio, and not a fully unmapped one', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 16, A);
    expect(f.nrPagesMapped[head]).toBe(16);
    // Fully mapped then one page dropped: partially mapped.
    expect(f.removeRmapPtes(head, head + 15, 1, A)).toBe(true);
    expect(f.nrPagesMapped[head]).toBe(15);
    expect(f.mapcount[head]).toBe(15);
    // Dropping the rest: unmapped, which is not "partially mapped".
    expect(f.removeRmapPtes(head, head, 15, A)).toBe(false);
    expect(f.nrPagesMapped[head]).toBe(0);
    expect(f.mapcount[head]).toBe(0);
    expect(f.mapped(head)).toBe(false);
  });

  it('a page mapped twice stays mapped after one removal', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 16, A);
    f.addRmapPtes(head, head, 1, A);
    // Removing one of the two mappings of page 0 leaves all 16 pages mapped.
    expect(f.removeRmapPtes(head, head, 1, A)).toBe(false);
    expect(f.nrPagesMapped[head]).toBe(16);
    expect(f.pteMapcount[head]).toBe(1);
  });

  it('small folios never report partial mapping', () => {
    const { f, small } = table();
    f.addRmapPtes(small, small, 1, A);
    expect(f.mapcount[small]).toBe(1);
    expect(f.removeRmapPtes(small, small, 1, A)).toBe(false);
    expect(f.mapcount[small]).toBe(0);
    // Small folios do not use the mm-id slots.
    expect(f.mmId0[small]).toBe(NO_MM);
  });

  it('PMD mappings: entire mapcount counts once for the whole folio', () => {
    const { f, head } = table();
    f.addRmapPmd(head, A);
    expect(f.entireMapcount[head]).toBe(1);
    expect(f.mapcount[head]).toBe(1);
    expect(f.nrPagesMapped[head]).toBe(0);
    for (let i = 0; i < 16; i++) expect(f.pageMapcount(head + i)).toBe(1);
    // PTE-mapping some pages too (the PMD split in progress): page_mapcount adds both.
    f.addRmapPtes(head, head, 4, A);
    expect(f.pageMapcount(head)).toBe(2);
    expect(f.pageMapcount(head + 4)).toBe(1);
    expect(f.mapcount[head]).toBe(5);
    // While the PMD maps it, removing a PTE is not a partial mapping.
    expect(f.removeRmapPtes(head, head + 3, 1, A)).toBe(false);
    // Dropping the PMD with 3 PTE-mapped pages left: partially mapped.
    expect(f.removeRmapPmd(head, A)).toBe(true);
    expect(f.entireMapcount[head]).toBe(0);
    expect(f.mapcount[head]).toBe(3);
  });

  it('removing the only PMD mapping is not a partial mapping', () => {
    const { f, head } = table();
    f.addRmapPmd(head, A);
    expect(f.removeRmapPmd(head, A)).toBe(false);
    expect(f.mapped(head)).toBe(false);
  });

  it('a PMD mapping replaced by all PTEs is fully mapped (split_huge_pmd)', () => {
    const { f, head } = table();
    f.addRmapPmd(head, A);
    f.addRmapPtes(head, head, 16, A);
    expect(f.removeRmapPmd(head, A)).toBe(false);
    expect(f.mapcount[head]).toBe(16);
    expect(f.nrPagesMapped[head]).toBe(16);
  });
});

describe('mm-id slots and folio_maybe_mapped_shared', () => {
  it('one mm: exclusive, however many mappings', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 16, A);
    f.addRmapPmd(head, A);
    expect(f.mmId0[head]).toBe(A);
    expect(f.mmCount0[head]).toBe(17);
    expect(f.maybeMappedShared(head)).toBe(false);
  });

  it('two mms: maybe shared; back to one: exclusive again', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 16, A);
    f.addRmapPtes(head, head, 4, B);
    expect(f.mmId0[head]).toBe(A);
    expect(f.mmId1[head]).toBe(B);
    expect(f.mmCount1[head]).toBe(4);
    expect(f.maybeMappedShared(head)).toBe(true);
    // B partly gone: still two mms.
    f.removeRmapPtes(head, head, 3, B);
    expect(f.maybeMappedShared(head)).toBe(true);
    // B's last mapping gone: its slot is released and A owns every mapping.
    f.removeRmapPtes(head, head + 3, 1, B);
    expect(f.mmId1[head]).toBe(NO_MM);
    expect(f.maybeMappedShared(head)).toBe(false);
    // The slot is free for the next mm.
    f.addRmapPmd(head, C);
    expect(f.mmId1[head]).toBe(C);
    expect(f.maybeMappedShared(head)).toBe(true);
  });

  it('the first mm leaving frees slot 0; the other slot then owns everything', () => {
    const { f, head } = table();
    f.addRmapPmd(head, A);
    f.addRmapPmd(head, B);
    expect(f.maybeMappedShared(head)).toBe(true);
    f.removeRmapPmd(head, A);
    expect(f.mmId0[head]).toBe(NO_MM);
    expect(f.mmId1[head]).toBe(B);
    expect(f.maybeMappedShared(head)).toBe(false);
  });

  it('three mms: the third is untracked, so the folio stays shared until its mappings go', () => {
    const { f, head } = table();
    f.addRmapPtes(head, head, 16, A);
    f.addRmapPtes(head, head, 2, B);
    f.addRmapPtes(head, head, 3, C); // no slot left for C
    expect([f.mmId0[head], f.mmId1[head]]).toEqual([A, B]);
    expect(f.mapcount[head]).toBe(21);
    expect(f.maybeMappedShared(head)).toBe(true);
    // B leaves: A's slot does not account for C's 3 mappings, so it may still be shared.
    f.removeRmapPtes(head, head, 2, B);
    expect(f.mmId1[head]).toBe(NO_MM);
    expect(f.maybeMappedShared(head)).toBe(true);
    f.removeRmapPtes(head, head, 2, C);
    expect(f.maybeMappedShared(head)).toBe(true);
    // C's last mapping goes: A's slot now holds all 16, exclusive.
    f.removeRmapPtes(head, head + 2, 1, C);
    expect(f.mapcount[head]).toBe(16);
    expect(f.maybeMappedShared(head)).toBe(false);
  });

  it('three mms: with both slot owners gone, only full unmap clears the hint', () => {
    const { f, head } = table();
    f.addRmapPmd(head, A);
    f.addRmapPmd(head, B);
    f.addRmapPmd(head, C);
    f.removeRmapPmd(head, A);
    f.removeRmapPmd(head, B);
    expect([f.mmId0[head], f.mmId1[head]]).toEqual([NO_MM, NO_MM]);
    // Only C maps it, but no slot counts C: the hint cannot tell.
    expect(f.mapcount[head]).toBe(1);
    expect(f.maybeMappedShared(head)).toBe(true);
    f.removeRmapPmd(head, C);
    expect(f.mapcount[head]).toBe(0);
    expect(f.maybeMappedShared(head)).toBe(false);
  });

  it('small folios: shared by mapcount', () => {
    const { f, small } = table();
    f.addRmapPtes(small, small, 1, A);
    expect(f.maybeMappedShared(small)).toBe(false);
    f.addRmapPtes(small, small, 1, B);
    expect(f.maybeMappedShared(small)).toBe(true);
    expect(f.flags[small] & PG_MAYBE_SHARED).toBe(0);
    f.removeRmapPtes(small, small, 1, A);
    expect(f.maybeMappedShared(small)).toBe(false);
  });
});

describe('expectedRefcount', () => {
  it('mappings, plus pins, plus one per page in the swap cache', () => {
    const { f, head, small } = table();
    expect(f.expectedRefcount(head)).toBe(0);
    f.addRmapPtes(head, head, 16, A);
    expect(f.expectedRefcount(head)).toBe(16);
    f.addRmapPmd(head, A);
    expect(f.expectedRefcount(head)).toBe(17);
    f.pincount[head] = 2;
    expect(f.expectedRefcount(head)).toBe(19);
    f.set(head, PG_SWAPCACHE);
    expect(f.expectedRefcount(head)).toBe(19 + 16);
    f.clear(head, PG_SWAPCACHE);
    expect(f.test(head, PG_SWAPCACHE)).toBe(false);
    expect(f.expectedRefcount(head)).toBe(19);

    f.set(small, PG_ANON | PG_SWAPCACHE);
    f.addRmapPtes(small, small, 1, A);
    expect(f.expectedRefcount(small)).toBe(2);
    expect(f.test(small, PG_ANON)).toBe(true);
  });
});
