// Step through a list with the arrow keys (ignored while typing in a form field).

export function arrowKeys(move: (delta: number) => void): () => void {
  const on = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement | null;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') {
      move(1);
      e.preventDefault();
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') {
      move(-1);
      e.preventDefault();
    }
  };
  addEventListener('keydown', on);
  return () => removeEventListener('keydown', on);
}
