// Every checker case, by id.

import type { CheckCase } from '../explore.ts';
import { R1_CASES } from './r01.ts';
import { R3_CASES } from './r03.ts';
import { R5_CASES } from './r05.ts';
import { R11_CASES } from './r11.ts';
import { R12_CASES } from './r12.ts';
import { R19_CASES } from './r19.ts';
import { RETRACT_CASES } from './retract.ts';
import { RULE_CASES } from './rules.ts';
import { WALKER_CASES } from './walkers.ts';
import { PTE_LEVEL_CASES } from './r-pte-level.ts';

export const CASES: readonly CheckCase[] = [
  ...R1_CASES,
  ...PTE_LEVEL_CASES,
  ...R3_CASES,
  ...R5_CASES,
  ...R11_CASES,
  ...R12_CASES,
  ...R19_CASES,
  ...RETRACT_CASES,
  ...RULE_CASES,
  ...WALKER_CASES,
];

export function caseById(id: string): CheckCase | undefined {
  return CASES.find((c) => c.id === id);
}
