/**
 * PyTorch exports of torchvision models with seeded random weights (fixtures/zoo/export_torchvision.py), made on
 * first use into the zoo cache and shared by the tests that need them (tests/zoo_test.ts, tests/prune_groups_test.ts).
 * The export skips files that exist and writes each through its own temporary file, so tests running in parallel can
 * ask for the same model.
 *
 * @module
 */
import { PYTHON, ROOT } from "./helpers.ts";

/** The cache folder of the zoo's exports (`CONVPRESS_ZOO_CACHE`, default /tmp/convpress-zoo-cache). */
export const ZOO_CACHE = Deno.env.get("CONVPRESS_ZOO_CACHE") ?? "/tmp/convpress-zoo-cache";

/** Folder of the torchvision exports. */
export const TORCH_DIR = `${ZOO_CACHE}/torch`;

/** The torchvision models the script knows. */
export const TORCH_MODELS = [
  "resnet18",
  "mobilenet_v2",
  "squeezenet1_1",
  "alexnet",
  "googlenet",
  "shufflenet_v2_x1_0",
  "densenet121",
  "efficientnet_b0",
  "mnasnet",
  "regnet",
];

const made = new Map<string, Promise<void>>();

/** Makes `TORCH_DIR/NAME.onnx` for each name (once per process); returns TORCH_DIR. */
export async function torchExports(names: readonly string[] = TORCH_MODELS): Promise<string> {
  const key = names.join(",");
  if (!made.has(key)) {
    made.set(
      key,
      (async () => {
        const out = await new Deno.Command(PYTHON, {
          args: [`${ROOT}/fixtures/zoo/export_torchvision.py`, TORCH_DIR, ...names],
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
      })(),
    );
  }
  await made.get(key);
  return TORCH_DIR;
}
