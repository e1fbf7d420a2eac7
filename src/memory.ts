/**
 * Gives memory back: asks V8 for a full collection when the process was started with `--v8-flags=--expose-gc` (the
 * `convpress` task and the compiled binary are), then asks glibc's allocator to return its free pages to the system.
 *
 * Large typed arrays live outside V8's heap and V8 collects them lazily, so a stage that allocates a layer-sized
 * buffer per step (the SVD's blocks, a factor, an activation read back) would otherwise leave hundreds of MB of
 * garbage resident before the next collection. Once collected, their backing stores are freed with `free`, and
 * glibc keeps freed blocks inside its heap (its mmap threshold rises to the largest block freed, so later blocks of
 * that size come from the heap, not from mmap): on a VGG16 calibration that was 170 MB of resident, unused heap
 * (/proc/self/smaps). `malloc_trim(0)` (through FFI, when the process may use it; Linux with glibc only) returns
 * those pages. Fixing the mmap threshold instead (`mallopt(M_MMAP_THRESHOLD, 128 KiB)`) gave a lower peak (505 MiB
 * against 559 MiB) but took 94 s instead of 74 s on the same run, the difference mostly system time in page faults
 * (bench/results/calibration.md).
 *
 * @module
 */

const gc = (globalThis as { gc?: () => void }).gc;

/** glibc's malloc_trim, or null where it is not available (no --allow-ffi, not Linux, not glibc). */
let trim: (() => void) | null | undefined;

function mallocTrim(): (() => void) | null {
  if (trim !== undefined) return trim;
  trim = null;
  try {
    if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return trim;
    const lib = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } } as const);
    trim = () => void lib.symbols.malloc_trim(0n);
  } catch {
    // Not glibc (musl, a static build): freed pages stay with the allocator.
    trim = null;
  }
  return trim;
}

/** When the last collection ended, and the memory V8 accounted for then (heap used plus external memory). */
let lastAt = -Infinity;
let lastBytes = 0;

function accounted(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

/**
 * Collects garbage now and returns the allocator's free pages, if the runtime allows it. A call right after another
 * (within 50 ms, less than 16 MiB allocated since) is skipped: layer loops call this several times at the end of each
 * layer (the executor, each calibrator, the pipeline), and each full collection of a calibration's heap takes about
 * 20 ms (400 of them were 8 s of a 65 s VGG16 calibration).
 */
export function releaseMemory(): void {
  if (!gc) return;
  if (performance.now() - lastAt < 50 && accounted() - lastBytes < 16 << 20) return;
  gc();
  mallocTrim()?.();
  lastAt = performance.now();
  lastBytes = accounted();
}

/**
 * Returns the allocator's free pages without a collection: for native code (ONNX Runtime) that allocates and frees
 * large buffers between calls, which glibc would otherwise keep resident.
 */
export function trimMemory(): void {
  mallocTrim()?.();
}
