"""SqueezeNet top-1/top-5 on a flat ImageNet folder with OpenCV DNN, the reference `convpress eval` must match:
cv2.imread (libjpeg-turbo), cv2.dnn.blobFromImage resizing straight to 227x227 (INTER_LINEAR), BGR minus 104/117/123.
Usage: /usr/bin/python3 bench/squeezenet_opencv.py PROTOTXT CAFFEMODEL IMAGES_DIR LABELS.txt [LIMIT] [PRED_OUT]
LABELS.txt lines are "FILE LABEL". Prints counts and, with PRED_OUT, writes "FILE TOP1" lines.
"""
import os, sys
import cv2
import numpy as np

proto, model, folder, labels_path = sys.argv[1:5]
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 10**9
pred_out = sys.argv[6] if len(sys.argv) > 6 else None
labels = dict(l.split() for l in open(labels_path) if l.strip())
files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))[:limit]
net = cv2.dnn.readNetFromCaffe(proto, model)
top1 = top5 = 0
preds = []
for i in range(0, len(files), 16):
    chunk = files[i:i + 16]
    imgs = [cv2.imread(os.path.join(folder, f)) for f in chunk]
    net.setInput(cv2.dnn.blobFromImages(imgs, 1.0, (227, 227), (104, 117, 123), swapRB=False, crop=False))
    out = net.forward().reshape(len(chunk), -1)
    for f, o in zip(chunk, out):
        order = np.argsort(-o)
        y = int(labels[f])
        top1 += order[0] == y
        top5 += y in order[:5]
        preds.append(f"{f} {order[0]}")
n = len(files)
print(f"opencv: {n} images, top-1 {top1}/{n} = {top1 / n:.4f}, top-5 {top5}/{n} = {top5 / n:.4f}")
if pred_out:
    open(pred_out, "w").write("\n".join(preds) + "\n")
