// Every checker case, by id.

import type { CheckCase } from '../explore.ts';
import { R1_CASES } from './r01.ts';
import { R11_CASES } from './r11.ts';
import { PTE_LEVEL_CASES } from './r-pte-level.ts';

export const CASES: readonly CheckCase[] = [...R1_CASES, ...PTE_LEVEL_CASES, ...R11_CASES];

export function caseById(id: string): CheckCase | undefined {
  return CASES.find((c) => c.id === id);
}
