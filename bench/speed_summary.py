"""Summarises bench/speed.sh: medians of wall time and peak RSS per side, the median of the pairwise ratios, and the
top-1 figures; writes a markdown table to OUT_MD and puts it into RESULTS.md between the speed markers.
Usage: speed_summary.py TIMES.tsv OUT_DIR OUT_MD RESULTS_MD"""
import json, re, statistics, sys

times, out, out_md, results_md = sys.argv[1:5]
runs = {}
for line in open(times):
    name, side, wall, kb = line.split()
    runs.setdefault((name, side), []).append((float(wall), int(kb)))

ROWS = [
    ("sq_npy", "ort", "`eval` SqueezeNet, 500 images as .npy, batch 16", "ONNX Runtime, whole model, same .npy", 1.5),
    ("sq_jpeg", "ort", "`eval` SqueezeNet, the 500 JPEGs (decode + resize included)", "ONNX Runtime on the .npy", 1.5),
    ("vgg_eval", "ort", "`eval` VGG16, 16 inputs, batch 16", "ONNX Runtime, whole model", 1.5),
    ("thesis", "torch", "`compress` VGG16 thesis recipe", "bench/thesis_torch.py", 0.2),
    ("cluster8", "torch", "`compress` VGG16 cluster8", "bench/thesis_torch.py --cluster8", 0.2),
    ("convert", "cat", "`convert` VGG16 ONNX -> ONNX, file to file", "`cat vgg16.onnx > copy`", 1.5),
    ("convert", "catmv", "`convert` VGG16 ONNX -> ONNX, file to file (same runs)",
     "`cat vgg16.onnx > tmp && mv tmp copy` (replaces the output as convpress does)", 1.5),
]
med = lambda xs: statistics.median(xs)
lines = ["| job | peer | runs | convpress wall (median) | peer wall (median) | ratio (median of pairs) | goal | "
         "convpress peak RSS (max) | peer peak RSS (max) |", "|---|---|---|---|---|---|---|---|---|"]
for name, peer, what, peer_what, goal in ROWS:
    a, b = runs.get((name, "convpress"), []), runs.get((name, peer), [])
    if not a or not b:
        continue
    ratios = [x[0] / y[0] for x, y in zip(a, b)]
    lines.append(f"| {what} | {peer_what} | {len(ratios)} | {med([x[0] for x in a]):.2f} s | {med([y[0] for y in b]):.2f} s"
                 f" | {med(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | <= {goal}x | "
                 f"{max(x[1] for x in a):,} KB | {max(y[1] for y in b):,} KB |")
c8 = runs.get(("cluster8", "convpress"))
if c8 and not runs.get(("cluster8", "torch")):
    lines.append(f"| `compress` VGG16 cluster8 | (PyTorch peer not run: CLUSTER8_PEER=1) | {len(c8)} | "
                 f"{med([x[0] for x in c8]):.2f} s | - | - | - | {max(x[1] for x in c8):,} KB | - |")
c = runs.get(("calibration", "convpress"))
if c:
    lines.append(f"| `compress --calibration` VGG16, 16 images | budget | {len(c)} | {med([x[0] for x in c]):.2f} s | - | - |"
                 f" <= 30 s | {max(x[1] for x in c):,} KB | - |")
lines.append("")
try:
    cv = open(f"{out}/opencv.txt").read().strip()
    j = json.loads(open(f"{out}/sq_jpeg.convpress.out").read().strip().splitlines()[-1])
    n = json.loads(open(f"{out}/sq_npy.convpress.out").read().strip().splitlines()[-1])
    o = json.loads(open(f"{out}/sq_npy.ort.out").read().strip().splitlines()[-1])
    lines.append(f"Top-1 on the 500 images: OpenCV DNN {cv.split('top-1 ')[1].split(',')[0]}; `eval` from the JPEGs "
                 f"{round(j['top1'] * j['count'])}/{j['count']}, from the OpenCV-preprocessed .npy "
                 f"{round(n['top1'] * n['count'])}/{n['count']}; ONNX Runtime {round(o['top1'] * o['count'])}/{o['count']}.")
except (OSError, KeyError, IndexError, ValueError) as e:
    lines.append(f"(top-1 figures unavailable: {e})")
try:
    loads = [l.split("load average:")[1].strip() for l in open(f"{out}/load.txt") if "load average:" in l]
    lines.append("")
    lines.append(f"Load average (1, 5, 15 min) at the start: {loads[0]}; at the end: {loads[-1]}.")
except (OSError, IndexError):
    pass
table = "\n".join(lines) + "\n"
open(out_md, "w").write("# Speed against peers (`bash bench/speed.sh`, issue 13)\n\n" + table)
text = open(results_md).read()
block = f"<!-- speed:begin (written by bench/speed.sh) -->\n{table}<!-- speed:end -->"
if "<!-- speed:begin" in text:
    text = re.sub(r"<!-- speed:begin.*?<!-- speed:end -->", lambda _: block, text, flags=re.S)
else:
    text += "\n## Speed against peers (issue 13): `bash bench/speed.sh`\n\n" + block + "\n"
open(results_md, "w").write(text)
