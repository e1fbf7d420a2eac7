import { tfjsAffineGrid } from "../../formats/tfjs/clustered.ts";
console.log(tfjsAffineGrid(Float32Array.from([-0.5, 0, 0.5, 1])));
