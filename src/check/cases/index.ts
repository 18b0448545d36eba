// Every checker case, by id.

import type { CheckCase } from '../explore.ts';
import { R1_CASES } from './r01.ts';
import { R5_CASES } from './r05.ts';
import { R11_CASES } from './r11.ts';
import { R19_CASES } from './r19.ts';
import { PTE_LEVEL_CASES } from './r-pte-level.ts';

export const CASES: readonly CheckCase[] = [
  ...R1_CASES,
  ...PTE_LEVEL_CASES,
  ...R5_CASES,
  ...R11_CASES,
  ...R19_CASES,
];

export function caseById(id: string): CheckCase | undefined {
  return CASES.find((c) => c.id === id);
}
