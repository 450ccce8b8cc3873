"""The reference server for `sagedeck bench-serve`: a SageMaker-style
container endpoint (POST /invocations) running the seeds' inference handler
logic — PIL decode, Resize, ToTensor, Normalize, forward, logits as JSON —
on a Sagedeck artifact's weights, with the same libtorch thread count.
Prints "listening on http://HOST:PORT" when ready."""

import argparse
import io
import json
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
import torch.nn as nn
from PIL import Image
from torchvision import models, transforms

parser = argparse.ArgumentParser()
parser.add_argument("--artifact", required=True)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    """Reads a safetensors file (8-byte header length, JSON header, raw
    little-endian data) without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        buf = bytearray(data[base + start : base + end])
        t = torch.frombuffer(buf, dtype=DTYPES[meta["dtype"]]) if buf else torch.zeros(0, dtype=DTYPES[meta["dtype"]])
        tensors[name] = t.reshape(meta["shape"])
    return tensors


meta = json.load(open(f"{args.artifact}/metadata.json"))
classes, size = meta["classes"], meta["input_size"]
if meta["architecture"] == "resnet50":
    model, features = models.resnet50(weights=None), 2048
else:
    model, features = models.resnet18(weights=None), 512
model.fc = nn.Sequential(nn.Linear(features, 128), nn.ReLU(inplace=True), nn.Linear(128, len(classes)))
missing, unexpected = model.load_state_dict(load_safetensors(f"{args.artifact}/model.safetensors"), strict=False)
missing = [m for m in missing if not m.endswith("num_batches_tracked")]
assert not missing and not unexpected, (missing, unexpected)
model.eval()

# The seeds' inference transform.
transform = transforms.Compose([
    transforms.Resize((size, size)),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every answer,
    # which would make the reference look slower than its handler is.
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        image = Image.open(io.BytesIO(body)).convert("RGB")
        with torch.no_grad():
            logits = model(transform(image).unsqueeze(0))
        out = json.dumps(logits.tolist()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
