// The exit statuses every command uses, in one place (README, "Exit status").

/**
 * - `ok`: the command did what was asked and the answer is positive (verified, equal, collapsed).
 * - `negative`: it ran, and the answer is negative: a counterexample, a difference from the live
 *   kernel, a failed `MADV_COLLAPSE`.
 * - `badInput`: a file, option or field is wrong; one `thpsim: ...` line says which.
 * - `unavailable`: it cannot run on this machine (not root, no THP, ...); the line says why.
 * - `internal`: a bug in thpsim (`thpsim: internal error: ...`).
 */
export const EXIT = { ok: 0, negative: 1, badInput: 2, unavailable: 3, internal: 4 } as const;
