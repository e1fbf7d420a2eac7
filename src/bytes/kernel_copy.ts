/**
 * File-to-file copies inside the kernel: Linux's `copy_file_range(2)` through FFI. A tensor a reader left in its file
 * (an ONNX initializer, a Caffe blob) goes to a file output without passing through JavaScript: no read into a
 * buffer and no write out of it, the page cache copied in place (and on file systems that share extents, not even
 * that). `cat` does the same, which is why it copies VGG16's 553 MB in about half the kernel time of a read and a
 * write of every chunk (bench/results/speed.md).
 *
 * Only where the process may use FFI (`--allow-ffi`) on Linux with glibc; elsewhere {@link kernelCopy} copies
 * nothing and the caller streams the bytes itself. The copy opens its own descriptors (the source read-only, the
 * destination write-only, neither created nor truncated) and writes at an explicit offset, so the caller's open
 * file and its position are untouched.
 *
 * @module
 */

const O_RDONLY = 0, O_WRONLY = 1, O_CLOEXEC = 0o2000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  copy_file_range: { parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"], result: "isize" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return libc;
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch {
    // Not glibc, or no copy_file_range (glibc before 2.27): copy in JavaScript.
    libc = null;
  }
  return libc;
}

/** True when {@link kernelCopy} can copy at all (FFI granted, Linux, glibc). */
export function kernelCopyAvailable(): boolean {
  return load() !== null;
}

function cString(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * Copies `length` bytes at `srcOffset` of file `src` to file `dst` at `dstOffset` (both files exist). Returns the
 * number of bytes copied: `length`, or less (0 when the kernel copy is unavailable or refused: another file
 * system on an old kernel, a special file). The caller writes whatever was not copied, from `srcOffset + copied`.
 */
export function kernelCopy(src: string, srcOffset: number, dst: string, dstOffset: number, length: number): number {
  const c = load();
  if (!c || length <= 0) return 0;
  const fin = c.open(cString(src), O_RDONLY | O_CLOEXEC, 0);
  if (fin < 0) return 0;
  const fout = c.open(cString(dst), O_WRONLY | O_CLOEXEC, 0);
  if (fout < 0) {
    c.close(fin);
    return 0;
  }
  // The kernel advances both offsets in place.
  const offIn = new BigInt64Array([BigInt(srcOffset)]);
  const offOut = new BigInt64Array([BigInt(dstOffset)]);
  let done = 0;
  try {
    while (done < length) {
      const n = Number(c.copy_file_range(fin, offIn, fout, offOut, BigInt(Math.min(length - done, 1 << 30)), 0));
      if (n <= 0) break; // -1: refused (EXDEV, EINVAL, ENOSPC ...); 0: the source ended early
      done += n;
    }
  } finally {
    c.close(fout);
    c.close(fin);
  }
  return done;
}
