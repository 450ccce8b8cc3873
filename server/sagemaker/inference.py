"""Sagedeck's inference handler for the SageMaker PyTorch inference container.

The container (sagemaker-pytorch-inference) imports this file from the model's
``code/`` folder and calls, per request, ``model_fn`` once, then ``input_fn``,
``predict_fn`` and ``output_fn``. It answers what Sagedeck's local endpoints
answer for the same body: one row of logits per image, ``[[...]]``.

The same file is shipped next to ``train.py`` (which imports its model, weight
and image code), so training, SageMaker serving and Sagedeck's local serving
(written in Rust) agree on three things, each tested against the other:

- the model: torchvision's ResNet with the seeds' head,
  ``fc = Linear(features, 128) -> ReLU -> Linear(128, classes)``;
- the weights: one safetensors file with torchvision's tensor names, read and
  written here without the ``safetensors`` package (not in every container);
- the input: the image squashed to ``input_size`` square by the same
  area-averaging bilinear resampling as Sagedeck's Rust pipeline, then
  ImageNet-normalised, so logits match a local endpoint's to ~1e-5.
"""

import base64
import ipaddress
import json
import logging
import os
import socket
import ssl
import struct
import time
from io import BytesIO
from urllib.parse import urlsplit

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "sagedeck-classifier/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES = {"resnet18": 512, "resnet50": 2048}
# The same limits as a local endpoint: SageMaker's 6 MB payload, 16384 px a side.
MAX_PAYLOAD = 6 * 1024 * 1024
MAX_IMAGE_SIDE = 16384
URL_TIMEOUT_S = 5
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image", "application/octet-stream")


# --------------------------------------------------------------------------- errors


try:  # inside the container the toolkit turns its error type into the HTTP status
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # tests, train.py
    _ToolkitError = None


class RequestError(_ToolkitError or Exception):
    """A request the handler refuses, with the HTTP status a local endpoint
    gives the same request (413, 415, 422, 400)."""

    def __init__(self, status, message):
        if _ToolkitError is None:
            Exception.__init__(self, message)
        else:
            _ToolkitError.__init__(self, status, message, message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- model


def build_model(architecture, classes):
    """torchvision's ResNet (no weights) with the seeds' head."""
    import torchvision

    if architecture not in FEATURES:
        raise ValueError("architecture %r is not one of %s" % (architecture, sorted(FEATURES)))
    model = getattr(torchvision.models, architecture)(weights=None)
    model.fc = torch.nn.Sequential(
        torch.nn.Linear(FEATURES[architecture], 128),
        torch.nn.ReLU(inplace=True),
        torch.nn.Linear(128, classes),
    )
    return model


def weights_of(model):
    """The state dict as saved: no DDP prefix, no batch-norm step counters
    (Sagedeck's Rust model has none), float32 on the CPU."""
    if hasattr(model, "module"):
        model = model.module
    return {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }


def load_weights(model, tensors):
    """Copies every tensor of the model from ``tensors``; a missing or
    misshapen one is an error naming it."""
    own = model.state_dict()
    missing = [n for n in own if n not in tensors and not n.endswith("num_batches_tracked")]
    if missing:
        raise ValueError("the weights lack %d of the model's tensors, e.g. %s" % (len(missing), ", ".join(missing[:3])))
    for name, value in own.items():
        if name in tensors and tuple(tensors[name].shape) != tuple(value.shape):
            raise ValueError(
                "%s has shape %s in the weights but %s in the model" % (name, tuple(tensors[name].shape), tuple(value.shape))
            )
    model.load_state_dict({n: t for n, t in tensors.items() if n in own}, strict=False)


# --------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "F16": (torch.float16, 2), "I64": (torch.int64, 8)}


def save_safetensors(tensors, path):
    """Writes ``{name: tensor}`` as a safetensors file (float32, sorted names),
    the format Sagedeck's Rust side reads and writes."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s is not a safetensors file (too short)" % path)
    (length,) = struct.unpack("<Q", raw[:8])
    if length > len(raw) - 8:
        raise ValueError("%s is not a safetensors file (its header runs past the end)" % path)
    header = json.loads(raw[8 : 8 + length])
    start = 8 + length
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _DTYPES:
            raise ValueError("%s: tensor %s has dtype %s, not one this handler reads" % (path, name, entry["dtype"]))
        dtype, _ = _DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        buffer = bytearray(raw[start + begin : start + end])
        tensor = torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype=dtype)
        out[name] = tensor.reshape(entry["shape"]).to(torch.float32)
    return out


def read_weights_file(path):
    """A safetensors file, or a PyTorch state dict (``torch.save``), with the
    prefixes other tools add (``module.``, ``model.``, ``backbone.``) dropped."""
    if path.endswith(".safetensors"):
        tensors = load_safetensors(path)
    else:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        tensors = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    out = {}
    for name, tensor in tensors.items():
        for prefix in ("module.", "model.", "backbone."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        out[name] = tensor
    return out


# --------------------------------------------------------------------------- images


def _taps(start, length, out, src_len):
    """The resampling matrix (out x src_len) of Sagedeck's pipeline
    (server/src/training/pipeline.rs `taps`): bilinear samples, k per output
    pixel when shrinking by k or more (up to 4), in float32 as there."""
    f32 = np.float32
    scale = f32(length) / f32(out)
    k = int(min(max(np.ceil(scale), 1), 4))
    last = f32(max(src_len - 1, 0))
    weights = np.zeros((out, src_len), dtype=np.float64)
    for o in range(out):
        for j in range(k):
            pos = f32(f32(start) + (f32(o) + (f32(j) + f32(0.5)) / f32(k)) * scale - f32(0.5))
            pos = min(max(pos, f32(0.0)), last)
            i0 = np.floor(pos)
            frac = f32(pos - i0)
            lo = int(i0)
            hi = min(lo + 1, int(last))
            for index, w in ((lo, f32(1.0) - frac), (hi, frac)):
                if w > 0:
                    weights[o, index] += float(f32(w / f32(k)))
    return weights


def preprocess(rgb, size):
    """An RGB uint8 array (H, W, 3) squashed to size x size and normalised:
    a float32 tensor (3, size, size), as a local endpoint prepares it."""
    height, width = rgb.shape[:2]
    wy = _taps(0.0, height, size, height)
    wx = _taps(0.0, width, size, width)
    pixels = rgb.astype(np.float64)
    out = np.empty((3, size, size), dtype=np.float32)
    for c in range(3):
        plane = wy @ pixels[:, :, c] @ wx.T
        out[c] = (plane / (255.0 * IMAGENET_STD[c]) - IMAGENET_MEAN[c] / IMAGENET_STD[c]).astype(np.float32)
    return torch.from_numpy(out)


def decode_image(data):
    """JPEG or PNG bytes to an RGB uint8 array; any colour type (alpha dropped
    as a local endpoint drops it). Refusals carry a local endpoint's status."""
    if not data:
        raise RequestError(422, "the request body is empty: send the image's bytes")
    if len(data) > MAX_PAYLOAD:
        raise RequestError(413, "the image is %d bytes; the limit is %d (6 MB)" % (len(data), MAX_PAYLOAD))
    try:
        image = Image.open(BytesIO(data))
    except Exception:  # noqa: BLE001 - PIL raises several types for junk
        raise RequestError(422, "the bytes are not a JPEG or PNG image (unrecognised signature)")
    if image.format not in ("JPEG", "PNG"):
        raise RequestError(422, "%s images are not supported: send a JPEG or a PNG" % image.format)
    if image.width > MAX_IMAGE_SIDE or image.height > MAX_IMAGE_SIDE:
        raise RequestError(422, "the image is larger than %d x %d pixels" % (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    if image.width == 0 or image.height == 0:
        raise RequestError(422, "the image has no pixels")
    if image.format == "JPEG" and b"\xff\xd9" not in data[-64:]:
        raise RequestError(422, "the JPEG is truncated: it has no end-of-image marker (was the upload cut off?)")
    try:
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit grey: scaled to 8 bits with rounding, as Sagedeck's decoder does.
            grey = ((np.asarray(image, dtype=np.uint32) + 128) // 257).clip(0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # noqa: BLE001
        raise RequestError(422, "the %s cannot be decoded: %s" % (image.format, e))


def _public_addresses(host, port):
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise RequestError(400, "%s does not resolve" % host)
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise RequestError(400, "%s resolves to %s, which is not a public address" % (host, address))
    return addresses[0]


def fetch_url(url):
    """The seeds' ``{"url": ...}`` body: http(s) only, public addresses only
    (never the instance's metadata or credentials service), no redirects,
    6 MB, 5 s. The connection goes to the address that was checked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestError(400, "the url must be http:// or https:// with a host name")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _public_addresses(parts.hostname, port)
    deadline = time.monotonic() + URL_TIMEOUT_S
    raw = socket.create_connection((address, port), timeout=URL_TIMEOUT_S)
    try:
        conn = raw
        if parts.scheme == "https":
            conn = ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        request = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sagedeck-inference\r\nAccept: image/*\r\nConnection: close\r\n\r\n"
        conn.sendall((request % (path, parts.hostname)).encode())
        response = b""
        while len(response) <= MAX_PAYLOAD + 65536:
            if time.monotonic() > deadline:
                raise RequestError(400, "fetching %s took longer than %d s" % (url, URL_TIMEOUT_S))
            chunk = conn.recv(65536)
            if not chunk:
                break
            response += chunk
    finally:
        raw.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ")
    if len(fields) < 2 or fields[1] != "200":
        raise RequestError(400, "fetching %s answered %r (redirects are not followed)" % (url, status_line))
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    if len(body) > MAX_PAYLOAD:
        raise RequestError(413, "the image at %s is over 6 MB" % url)
    return body


def _dechunk(body):
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


# --------------------------------------------------------------------------- the container's contract


class LoadedModel:
    def __init__(self, model, input_size, classes, device):
        self.model, self.input_size, self.classes, self.device = model, input_size, classes, device


def model_fn(model_dir):
    """Reads metadata.json and the weights that train.py (or Sagedeck, for a
    local job) put in model.tar.gz."""
    metadata_path = os.path.join(model_dir, "metadata.json")
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(
            "model.tar.gz has no metadata.json: it was not made by Sagedeck's train.py or packer (found: %s)"
            % ", ".join(sorted(os.listdir(model_dir)))
        )
    with open(metadata_path) as f:
        metadata = json.load(f)
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ValueError("metadata.json says format %r, not %r" % (metadata.get("format"), ARTIFACT_FORMAT))
    weights = None
    for name in ("model.safetensors", "model.pth", "model.pt"):
        if os.path.isfile(os.path.join(model_dir, name)):
            weights = os.path.join(model_dir, name)
            break
    if weights is None:
        raise FileNotFoundError("model.tar.gz has no weights (model.safetensors): found %s" % ", ".join(sorted(os.listdir(model_dir))))
    classes = metadata["classes"]
    model = build_model(metadata["architecture"], len(classes))
    load_weights(model, read_weights_file(weights))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    logger.info("loaded %s with %d classes at %d px on %s", metadata["architecture"], len(classes), metadata["input_size"], device)
    return LoadedModel(model, int(metadata["input_size"]), classes, device)


def input_fn(request_body, request_content_type):
    """Image bytes (image/jpeg, image/png, application/x-image), or JSON with
    ``image_base64`` or ``url`` (the seeds' Lambda sends ``url``). Returns the
    decoded RGB image; ``predict_fn`` resizes it to the model's size."""
    content_type = (request_content_type or "").split(";")[0].strip().lower()
    if content_type in IMAGE_TYPES:
        return decode_image(bytes(request_body))
    if content_type == "application/json":
        text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
        try:
            body = json.loads(text)
        except ValueError as e:
            raise RequestError(400, "the JSON body does not parse: %s" % e)
        if not isinstance(body, dict):
            raise RequestError(400, 'send a JSON object: {"image_base64": ...} or {"url": ...}')
        if isinstance(body.get("image_base64"), str):
            try:
                data = base64.b64decode(body["image_base64"], validate=True)
            except ValueError:
                raise RequestError(400, "image_base64 is not valid base64")
            return decode_image(data)
        if isinstance(body.get("url"), str):
            return decode_image(fetch_url(body["url"]))
        raise RequestError(400, 'the JSON body has neither "image_base64" nor "url"')
    raise RequestError(
        415,
        "content type %r is not supported: send image/jpeg, image/png, application/x-image, "
        'or application/json with "image_base64" or "url"' % request_content_type,
    )


def predict_fn(input_data, model):
    batch = preprocess(input_data, model.input_size).unsqueeze(0).to(model.device)
    with torch.no_grad():
        return model.model(batch).float().cpu()


def output_fn(prediction, accept):
    """One row of logits per image, as the seeds' endpoint answers."""
    if accept and accept.split(";")[0].strip() not in ("application/json", "*/*"):
        raise RequestError(406, "accept %r is not supported: this endpoint answers application/json" % accept)
    return json.dumps(prediction.tolist())
