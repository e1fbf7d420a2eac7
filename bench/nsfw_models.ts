/**
 * nsfwjs ships its models as `.min.js` wrappers rather than model.json and shards: this unpacks them into TF.js
 * graph-model folders (used by bench/extract_nsfw.ts and by the zoo and TF.js tests).
 *
 * @module
 */

/** Evaluates a browserify/UMD `.min.js` wrapper of nsfwjs and returns what it exports. */
function evalUmd(src: string): unknown {
  const module = { exports: {} as unknown };
  new Function("module", "exports", "define", "window", "global", "self", src)(
    module,
    module.exports,
    undefined,
    {},
    {},
    {},
  );
  return module.exports;
}

/**
 * Extracts a TF.js model from nsfwjs's `.min.js` wrappers (model.min.js exports the model.json object, each
 * group1-shardKofN.min.js a base64 string) into `out`; returns the model.json path.
 */
export async function extractNsfwModel(pkg: string, model: string, out: string): Promise<string> {
  const dir = `${pkg}/dist/models/${model}`;
  const json = evalUmd(await Deno.readTextFile(`${dir}/model.min.js`)) as { weightsManifest: { paths: string[] }[] };
  await Deno.mkdir(out, { recursive: true });
  for (const g of json.weightsManifest) {
    for (const p of g.paths) {
      const b64 = evalUmd(await Deno.readTextFile(`${dir}/${p.replace(/(\.bin)?$/, "")}.min.js`)) as string;
      await Deno.writeFile(`${out}/${p}`, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    }
  }
  await Deno.writeTextFile(`${out}/model.json`, JSON.stringify(json));
  return `${out}/model.json`;
}
