/**
 * Writes nsfwjs's bundled MobileNetV2 and InceptionV3 (node_modules/nsfwjs, base64 in .min.js files) as TF.js
 * graph-model folders: `deno run -A bench/extract_nsfw.ts [DIR]` (default /tmp/convpress-nsfw), for
 * `bench/try_model.sh nsfw_mobilenet|nsfw_inception`.
 *
 * @module
 */
import { extractNsfwModel } from "./nsfw_models.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = Deno.args[0] ?? "/tmp/convpress-nsfw";
for (const m of ["mobilenet_v2", "inception_v3"]) {
  console.log(await extractNsfwModel(`${root}node_modules/nsfwjs`, m, `${dir}/${m}`));
}
