"""Sagedeck's training script for SageMaker's PyTorch training containers.

The container's toolkit (sagemaker-training with sagemaker-pytorch-training)
downloads this folder from ``sagemaker_submit_directory`` and runs it with the
job's hyperparameters as arguments (``--lr 0.001 --batch-size 32 ...``) and
the job's layout in ``SM_*`` variables. It trains the seeds' classifier
(a torchvision ResNet with the head Linear(features,128) -> ReLU ->
Linear(128, classes), Adam, early stopping on validation loss), prints one
metric line per epoch that the job's MetricDefinitions read, checkpoints to
``/opt/ml/checkpoints`` (managed spot training resumes from there), and writes
the artifact Sagedeck's local jobs write, plus ``code/inference.py``, so the
job's model.tar.gz deploys as it is.

Data: the seeds' layout, either one channel holding ``train/``, ``valid/`` and
``test/`` (each with a folder per class), or one channel per split
(``train``, ``valid``, ``test``). A ``weights`` channel may hold backbone
weights (safetensors or a PyTorch state dict).

Several instances train as one ``torch.distributed`` group (gloo on CPUs,
nccl on GPUs, the first host of SM_HOSTS as master): each process trains on
its shard of every epoch (DistributedSampler), DistributedDataParallel
averages the gradients, evaluation is sharded and summed, and only the first
process writes checkpoints and the model.
"""

import argparse
import json
import os
import random
import shutil
import socket
import sys
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inference  # noqa: E402  (the shared model, weights and image code)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "valid", "test")
# The default augmentation for photos, as Sagedeck's local pipeline uses it:
# RandomResizedCrop over 35-100 % of the area, mirrored half the time.
PHOTOS = (True, (0.35, 1.0))
PRETRAINED = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}


def log(message):
    print(message, flush=True)


def flag(text):
    return str(text).strip().lower() in ("1", "true", "yes", "on")


def augmentation(text):
    """The same vocabulary as `sagedeck train --augment`: (flip, crop range or None)."""
    text = str(text).strip()
    if text in ("photos", "default", "crop-flip"):
        return PHOTOS
    if text == "none":
        return (False, None)
    if text == "crop":
        return (False, PHOTOS[1])
    flip, crop = False, None
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "flip":
            flip = True
        elif part.startswith("crop="):
            low, high = (float(v) for v in part[5:].split("-", 1))
            if not 0.05 <= low <= high <= 1.0:
                raise argparse.ArgumentTypeError("crop=%s: a fraction of the area from 0.05 to 1, the smaller first" % part[5:])
            crop = (low, high)
        else:
            raise argparse.ArgumentTypeError("%r is not an augmentation: use photos, none, flip, crop=LOW-HIGH" % part)
    return (flip, crop)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--arch", default="resnet50", choices=sorted(inference.FEATURES))
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--patience", type=int, default=3, help="epochs without a better validation loss before stopping; 0 never stops")
    p.add_argument("--pretrained", default="auto", choices=["auto", "none"], help="ImageNet weights when they can be downloaded")
    p.add_argument("--freeze-backbone", default="false")
    p.add_argument("--augment", default="photos", type=augmentation,
                   help="photos, none, or a list of flip and crop=LOW-HIGH (as Sagedeck's `train --augment`)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers; -1 picks from the CPU count")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        log("ignoring arguments this script does not know: %s" % " ".join(unknown))
    return args


class Cluster:
    """Where this process stands among all the job's processes."""

    def __init__(self, local_rank=0):
        self.hosts = json.loads(os.environ.get("SM_HOSTS", '["algo-1"]'))
        self.current_host = os.environ.get("SM_CURRENT_HOST", self.hosts[0])
        gpus = int(os.environ.get("SM_NUM_GPUS", "0"))
        self.gpus = gpus if gpus > 0 and torch.cuda.is_available() else 0
        self.per_host = max(self.gpus, 1)
        self.host_rank = self.hosts.index(self.current_host)
        self.local_rank = local_rank
        self.rank = self.host_rank * self.per_host + local_rank
        self.world = len(self.hosts) * self.per_host
        self.device = torch.device("cuda", local_rank) if self.gpus else torch.device("cpu")

    @property
    def is_master(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world > 1

    def start(self):
        if not self.distributed:
            return
        backend = "nccl" if self.gpus else "gloo"
        interface = os.environ.get("SM_NETWORK_INTERFACE_NAME")
        if interface:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", interface)
            os.environ.setdefault("NCCL_SOCKET_IFNAME", interface)
        # sagemaker-pytorch-training sets MASTER_ADDR/PORT to the first host and 7777.
        master = os.environ.get("MASTER_ADDR", self.hosts[0])
        port = os.environ.get("MASTER_PORT", "7777")
        if self.gpus:
            torch.cuda.set_device(self.device)
        log("%s: joining the %s process group at %s:%s as rank %d of %d" % (self.current_host, backend, master, port, self.rank, self.world))
        dist.init_process_group(
            backend, init_method="tcp://%s:%s" % (master, port), world_size=self.world, rank=self.rank, timeout=timedelta(minutes=30)
        )
        log("%s: process group formed: rank %d of %d (%s)" % (self.current_host, dist.get_rank(), dist.get_world_size(), backend))

    def sum(self, *values):
        """The sum over every process (itself when alone)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device if self.gpus else "cpu")
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self):
        if self.distributed:
            dist.barrier()

    def stop(self):
        if self.distributed:
            dist.destroy_process_group()


# --------------------------------------------------------------------------- data


def class_display_name(folder):
    """``001.Affenpinscher`` -> ``Affenpinscher``, as Sagedeck shows classes."""
    prefix, dot, rest = folder.partition(".")
    if dot and prefix.isdigit() and rest:
        folder = rest
    return folder.replace("_", " ")


def list_split(root, classes=None):
    """(path, class index) for every image under root/<class>/, classes sorted."""
    if classes is None:
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    samples = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for file in sorted(os.listdir(folder)):
            path = os.path.join(folder, file)
            if file.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path) and not file.startswith("."):
                samples.append((path, index))
    return classes, samples


def find_splits(seed):
    """The split folders from the job's channels (see the module's doc)."""
    channels = json.loads(os.environ.get("SM_CHANNELS", "[]"))
    folder = lambda c: os.environ.get("SM_CHANNEL_%s" % c.upper().replace("-", "_"))
    splits = {}
    for split in SPLITS:
        if split in channels and folder(split):
            root = folder(split)
            # A split channel may itself hold <split>/ (an upload of the whole set).
            splits[split] = os.path.join(root, split) if os.path.isdir(os.path.join(root, split)) else root
    for channel in channels:
        root = folder(channel)
        if channel != "weights" and root:
            for split in SPLITS:
                if split not in splits and os.path.isdir(os.path.join(root, split)):
                    splits[split] = os.path.join(root, split)
    if "train" not in splits:
        raise SystemExit(
            "no training data: give a channel named train (class folders), or one channel holding train/, valid/ and test/ "
            "(channels: %s)" % (", ".join(channels) or "none")
        )
    classes, train = list_split(splits["train"])
    if len(classes) < 2:
        raise SystemExit("the train split at %s has %d class folder(s); a classifier needs at least 2" % (splits["train"], len(classes)))
    valid = list_split(splits["valid"], classes)[1] if "valid" in splits else []
    test = list_split(splits["test"], classes)[1] if "test" in splits else []
    if not valid:
        rng = random.Random(seed)
        rng.shuffle(train)
        cut = max(1, len(train) // 10)
        valid, train = train[:cut], train[cut:]
        log("no valid split: %d training images held out for validation" % len(valid))
    if not test:
        test = valid
        log("no test split: the test metrics are the validation images'")
    return classes, train, valid, test, splits


class Images(torch.utils.data.Dataset):
    def __init__(self, samples, size, train, augment):
        import torchvision.transforms as T

        self.samples, self.size, self.train = samples, size, train
        flip, crop = augment
        steps = []
        if crop:
            steps.append(T.RandomResizedCrop(size, scale=crop, ratio=(3 / 4, 4 / 3)))
        else:
            steps.append(T.Resize((size, size)))
        if flip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToTensor(), T.Normalize(inference.IMAGENET_MEAN, inference.IMAGENET_STD)]
        self.augmentation = T.Compose(steps)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        if self.train:
            return self.augmentation(Image.open(path).convert("RGB")), label
        # Evaluation prepares images exactly as the endpoints will.
        with open(path, "rb") as f:
            return inference.preprocess(inference.decode_image(f.read()), self.size), label


# --------------------------------------------------------------------------- model


def initial_weights(model, args, cluster):
    """The backbone's starting weights: a weights channel, else ImageNet when
    it can be downloaded (--pretrained auto), else random."""
    weights_dir = os.environ.get("SM_CHANNEL_WEIGHTS")
    if weights_dir and os.path.isdir(weights_dir):
        files = sorted(f for f in os.listdir(weights_dir) if f.endswith((".safetensors", ".pth", ".pt")))
        if not files:
            raise SystemExit("the weights channel %s holds no .safetensors, .pth or .pt file" % weights_dir)
        tensors = inference.read_weights_file(os.path.join(weights_dir, files[0]))
        backbone = {n: t for n, t in model.state_dict().items() if not n.startswith("fc.") and not n.endswith("num_batches_tracked")}
        found = {n: tensors[n] for n in backbone if n in tensors and tuple(tensors[n].shape) == tuple(backbone[n].shape)}
        if len(found) < len(backbone):
            raise SystemExit("%s holds %d of the %d backbone tensors of a %s" % (files[0], len(found), len(backbone), args.arch))
        model.load_state_dict(found, strict=False)
        log("backbone weights: %d tensors from the weights channel (%s)" % (len(found), files[0]))
        return "weights channel: %s" % files[0]
    if args.pretrained == "none":
        log("backbone weights: random (--pretrained none)")
        return "random"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        state = torch.hub.load_state_dict_from_url(PRETRAINED[args.arch], map_location="cpu", progress=False)
        state = {n: t for n, t in state.items() if not n.startswith("fc.")}
        model.load_state_dict(state, strict=False)
        log("backbone weights: ImageNet (%s)" % PRETRAINED[args.arch])
        return "ImageNet"
    except Exception as e:  # noqa: BLE001 - no network, a proxy, a full disk: all mean the same here
        log(
            "backbone weights: the pretrained ImageNet weights could not be downloaded (%s: %s); training from random weights. "
            "Give a weights channel, or allow the job internet access, to start from ImageNet." % (type(e).__name__, e)
        )
        return "random (download failed)"
    finally:
        socket.setdefaulttimeout(previous)


def run_epoch(model, loader, optimizer, cluster, train, frozen=False):
    model.train(train)
    if train and frozen:
        # A frozen backbone keeps its batch-norm statistics as loaded.
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and ".fc." not in "." + name + ".":
                module.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(cluster.device), labels.to(cluster.device)
        with torch.set_grad_enabled(train):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        if train:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    total_loss, total_correct, total_seen = cluster.sum(loss_sum, correct, seen)
    return total_loss / max(total_seen, 1), total_correct / max(total_seen, 1), int(total_seen), seen


def shard(samples, cluster):
    return samples[cluster.rank :: cluster.world]


def loader(dataset, batch_size, workers, sampler=None, shuffle=False):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=shuffle and sampler is None, num_workers=workers,
        drop_last=False, persistent_workers=workers > 0,
    )


def checkpoint_dir(model_dir):
    # SageMaker syncs /opt/ml/checkpoints with CheckpointConfig's S3 URI; it
    # sits beside SM_MODEL_DIR (/opt/ml/model).
    return os.path.join(os.path.dirname(os.path.abspath(model_dir)), "checkpoints")


def save_checkpoint(folder, model, optimizer, state):
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "last.pt.tmp")
    torch.save({"model": inference.weights_of(model), "optimizer": optimizer.state_dict()}, tmp)
    os.replace(tmp, os.path.join(folder, "last.pt"))
    if state["best_epoch"] == state["epochs_done"]:
        shutil.copyfile(os.path.join(folder, "last.pt"), os.path.join(folder, "best.pt.tmp"))
        os.replace(os.path.join(folder, "best.pt.tmp"), os.path.join(folder, "best.pt"))
    with open(os.path.join(folder, "state.json.tmp"), "w") as f:
        json.dump(state, f)
    os.replace(os.path.join(folder, "state.json.tmp"), os.path.join(folder, "state.json"))


# --------------------------------------------------------------------------- main


def train(local_rank, args):
    started = time.time()
    cluster = Cluster(local_rank)
    cluster.start()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    output_dir = os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")

    classes, train_set, valid_set, test_set, splits = find_splits(args.seed)
    log(
        "%s: %d classes; %d train, %d valid, %d test images; %s at %d px, batch %d, lr %g; host %d of %d, rank %d of %d on %s"
        % (cluster.current_host, len(classes), len(train_set), len(valid_set), len(test_set), args.arch, args.image_size,
           args.batch_size, args.lr, cluster.host_rank + 1, len(cluster.hosts), cluster.rank, cluster.world, cluster.device)
    )

    model = inference.build_model(args.arch, len(classes))
    source = initial_weights(model, args, cluster)
    frozen = flag(args.freeze_backbone)
    if frozen:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("fc.")
        log("backbone frozen: only the head trains")
    model.to(cluster.device)

    folder = checkpoint_dir(model_dir)
    state = {"epochs_done": 0, "best_valid_loss": None, "best_epoch": 0, "without": 0, "history": []}
    resumed = None
    if os.path.isfile(os.path.join(folder, "state.json")) and os.path.isfile(os.path.join(folder, "last.pt")):
        with open(os.path.join(folder, "state.json")) as f:
            state = json.load(f)
        resumed = torch.load(os.path.join(folder, "last.pt"), map_location="cpu", weights_only=True)
        inference.load_weights(model, resumed["model"])
        log("resuming from the checkpoint of epoch %d in %s" % (state["epochs_done"], folder))

    net = model
    if cluster.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if cluster.gpus else None)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    if resumed is not None:
        optimizer.load_state_dict(resumed["optimizer"])

    workers = args.workers if args.workers >= 0 else min(4, max((os.cpu_count() or 1) // cluster.per_host - 1, 0))
    train_data = Images(train_set, args.image_size, True, args.augment)
    sampler = None
    if cluster.distributed:
        sampler = torch.utils.data.distributed.DistributedSampler(train_data, num_replicas=cluster.world, rank=cluster.rank, shuffle=True, seed=args.seed)
    train_loader = loader(train_data, args.batch_size, workers, sampler, shuffle=True)
    valid_loader = loader(Images(shard(valid_set, cluster), args.image_size, False, (False, None)), args.batch_size, workers)
    test_loader = loader(Images(shard(test_set, cluster), args.image_size, False, (False, None)), args.batch_size, workers)

    for epoch in range(state["epochs_done"] + 1, args.epochs + 1):
        epoch_started = time.time()
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_loss, train_acc, train_seen, own_seen = run_epoch(net, train_loader, optimizer, cluster, True, frozen)
        seconds = time.time() - epoch_started
        valid_loss, valid_acc, _, _ = run_epoch(net, valid_loader, None, cluster, False)
        log("%s: epoch %d trained on %d of the %d training images (this host's shard)" % (cluster.current_host, epoch, own_seen, train_seen))
        # The line the job's MetricDefinitions read: one fixed format, every host.
        log(
            "sagedeck.metrics epoch=%d train_loss=%.6f train_accuracy=%.6f valid_loss=%.6f valid_accuracy=%.6f images_per_s=%.1f"
            % (epoch, train_loss, train_acc, valid_loss, valid_acc, train_seen / max(seconds, 1e-9))
        )
        improved = state["best_valid_loss"] is None or valid_loss < state["best_valid_loss"]
        if improved:
            state["best_valid_loss"], state["best_epoch"], state["without"] = valid_loss, epoch, 0
        else:
            state["without"] += 1
        state["epochs_done"] = epoch
        state["history"].append({
            "epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "valid_loss": valid_loss,
            "valid_accuracy": valid_acc, "seconds": time.time() - epoch_started, "images_per_s": train_seen / max(seconds, 1e-9),
        })
        if cluster.is_master:
            save_checkpoint(folder, model, optimizer, state)
        cluster.barrier()
        if args.patience > 0 and state["without"] >= args.patience:
            log("early stopping: validation loss has not improved for %d epochs (best %.4f at epoch %d)"
                % (state["without"], state["best_valid_loss"], state["best_epoch"]))
            break

    # Test the best epoch's weights.
    best = os.path.join(folder, "best.pt")
    if os.path.isfile(best):
        inference.load_weights(model, torch.load(best, map_location="cpu", weights_only=True)["model"])
    test_loss, test_acc, test_seen, _ = run_epoch(net, test_loader, None, cluster, False)
    log("sagedeck.metrics test_loss=%.6f test_accuracy=%.6f" % (test_loss, test_acc))
    log("test (weights of epoch %d): loss %.4f, accuracy %.2f %% of %d images" % (state["best_epoch"], test_loss, 100 * test_acc, test_seen))

    if cluster.is_master:
        write_model(model_dir, output_dir, model, args, classes, splits, state, test_loss, test_acc, test_seen, source, cluster, started)
    cluster.barrier()
    cluster.stop()


def write_model(model_dir, output_dir, model, args, classes, splits, state, test_loss, test_acc, test_seen, source, cluster, started):
    """The artifact a local Sagedeck job writes, plus code/inference.py."""
    os.makedirs(model_dir, exist_ok=True)
    inference.save_safetensors(inference.weights_of(model), os.path.join(model_dir, "model.safetensors"))
    names = [class_display_name(c) for c in classes]
    with open(os.path.join(model_dir, "classes.json"), "w") as f:
        json.dump(names, f, indent=2)
    metadata = {
        "format": inference.ARTIFACT_FORMAT,
        "architecture": args.arch,
        "input_size": args.image_size,
        "normalization": {"mean": list(inference.IMAGENET_MEAN), "std": list(inference.IMAGENET_STD),
                          "resize": "squash to input_size × input_size"},
        "classes": names,
        "class_folders": classes,
        "head": "Linear(%d,128) → ReLU → Linear(128,%d)" % (inference.FEATURES[args.arch], len(classes)),
        "metrics": {
            "test_loss": test_loss, "test_accuracy": test_acc, "test_images": test_seen, "best_epoch": state["best_epoch"],
            "epochs_run": state["epochs_done"], "best_valid_loss": state["best_valid_loss"], "history": state["history"],
        },
        "dataset": {"root": splits["train"], "digest": "", "images": []},
        "trained_on": "sagemaker:%s" % os.environ.get("TRAINING_JOB_NAME", os.environ.get("SAGEMAKER_JOB_NAME", "")),
        "training": {
            "hosts": cluster.hosts, "processes": cluster.world, "backbone_weights": source,
            "augmentation": {"flip": args.augment[0], "crop": list(args.augment[1]) if args.augment[1] else None},
            "learning_rate": args.lr, "batch_size": args.batch_size, "epochs": args.epochs, "patience": args.patience,
            "freeze_backbone": flag(args.freeze_backbone), "seed": args.seed,
        },
        "device": str(cluster.device),
        "seconds": time.time() - started,
    }
    with open(os.path.join(model_dir, "metadata.json"), "w") as f:
        json.dump(metadata, f, indent=2, ensure_ascii=False)
    code = os.path.join(model_dir, "code")
    os.makedirs(code, exist_ok=True)
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference.py"), os.path.join(code, "inference.py"))
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "history.json"), "w") as f:
        json.dump(state["history"], f, indent=2)
    log("model written to %s: %s" % (model_dir, ", ".join(sorted(os.listdir(model_dir)))))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    gpus = int(os.environ.get("SM_NUM_GPUS", "0"))
    if gpus > 1 and torch.cuda.is_available():
        # One process per GPU: the hosts' processes form one group.
        torch.multiprocessing.spawn(train, args=(args,), nprocs=gpus)
    else:
        train(0, args)


if __name__ == "__main__":
    main()
