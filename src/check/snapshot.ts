// A world built once and put back before every schedule. The explorer used to call the case's
// setup() per schedule, which rebuilt an 8 MiB kernel (page-table pools, the folio table, the buddy
// allocator, the setup's faults) each time: about two thirds of a schedule. Instead, the object
// graph reachable from the world is recorded once, and restore() puts every object back in place:
// typed arrays are copied back with one set() each, arrays, Maps and Sets get their elements back,
// and every other object its own properties. Identity is kept, so the world's named handles
// (w.mms.p, w.vmas.A) and every reference between objects stay valid; objects an execution
// created are simply no longer reachable.
//
// What this needs from the model: all mutable state of a world is reachable from it through
// properties, elements or Map/Set entries. No module-level mutable state, no state only inside a
// closure (a function value is kept as it is, never walked). A test compares every case's results
// with and without restore.

type AnyTyped =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One recorded object and what to put back into it. */
type Saved =
  | { kind: 0; obj: AnyTyped; copy: AnyTyped }
  | { kind: 1; obj: unknown[]; items: unknown[] }
  | { kind: 2; obj: Map<unknown, unknown>; entries: Array<[unknown, unknown]> }
  | { kind: 3; obj: Set<unknown>; items: unknown[] }
  | { kind: 4; obj: Record<PropertyKey, unknown>; keys: PropertyKey[]; values: unknown[] };

function isObject(v: unknown): v is object {
  return v !== null && typeof v === 'object';
}

/** The state of an object graph at one moment, to put back with restore(). */
export class GraphSnapshot {
  private readonly saved: Saved[] = [];
  /** Objects recorded (for statistics). */
  readonly objects: number;
  /** Bytes of typed arrays copied back per restore. */
  readonly typedBytes: number;

  constructor(root: object) {
    const seen = new Set<object>();
    const stack: object[] = [root];
    let bytes = 0;
    const visit = (v: unknown): void => {
      if (isObject(v) && !seen.has(v)) stack.push(v);
    };
    while (stack.length) {
      const o = stack.pop()!;
      if (seen.has(o)) continue;
      seen.add(o);
      if (ArrayBuffer.isView(o)) {
        if (o instanceof DataView) throw new Error('GraphSnapshot: DataView is not supported');
        const t = o as AnyTyped;
        this.saved.push({ kind: 0, obj: t, copy: t.slice() as AnyTyped });
        bytes += t.byteLength;
      } else if (Array.isArray(o)) {
        const items = o.slice();
        this.saved.push({ kind: 1, obj: o, items });
        for (const x of items) visit(x);
      } else if (o instanceof Map) {
        const entries = [...o.entries()];
        this.saved.push({ kind: 2, obj: o, entries });
        for (const [a, b] of entries) {
          visit(a);
          visit(b);
        }
      } else if (o instanceof Set) {
        const items = [...o];
        this.saved.push({ kind: 3, obj: o, items });
        for (const x of items) visit(x);
      } else if (o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise)
        throw new Error('GraphSnapshot: weak collections and promises cannot be restored');
      else if (o instanceof ArrayBuffer || o instanceof Date || o instanceof RegExp) continue;
      else if (Object.isFrozen(o)) {
        for (const k of Reflect.ownKeys(o)) visit((o as Record<PropertyKey, unknown>)[k]);
      } else {
        const rec = o as Record<PropertyKey, unknown>;
        const keys = Reflect.ownKeys(o);
        const values = keys.map((k) => rec[k]);
        this.saved.push({ kind: 4, obj: rec, keys, values });
        for (const x of values) visit(x);
      }
    }
    this.objects = this.saved.length;
    this.typedBytes = bytes;
  }

  /** Put every recorded object back as it was when the snapshot was taken. */
  restore(): void {
    const saved = this.saved;
    for (let i = 0; i < saved.length; i++) {
      const s = saved[i];
      switch (s.kind) {
        case 0:
          (s.obj as Uint8Array).set(s.copy as Uint8Array);
          break;
        case 1: {
          const a = s.obj;
          const items = s.items;
          a.length = items.length;
          for (let j = 0; j < items.length; j++) a[j] = items[j];
          break;
        }
        case 2: {
          s.obj.clear();
          for (const [k, v] of s.entries) s.obj.set(k, v);
          break;
        }
        case 3: {
          s.obj.clear();
          for (const x of s.items) s.obj.add(x);
          break;
        }
        case 4: {
          const o = s.obj;
          const keys = s.keys;
          const values = s.values;
          if (Reflect.ownKeys(o).length !== keys.length) {
            const keep = new Set(keys);
            for (const k of Reflect.ownKeys(o)) if (!keep.has(k)) delete o[k];
          }
          for (let j = 0; j < keys.length; j++) o[keys[j]] = values[j];
          break;
        }
      }
    }
  }
}
