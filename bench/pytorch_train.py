"""The reference loop for `sagedeck bench`: what the seeds' ec2train1.py does
per training step, with the same model, batch size, image size, augmentation
and libtorch thread count as Sagedeck's worker. Prints one JSON line."""

import argparse
import json
import time

import torch
import torch.nn as nn
from torchvision import datasets, models, transforms

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CROP_SCALE = (0.35, 1.0)  # the same as Sagedeck's pipeline (server/src/training/pipeline.rs)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--arch", default="resnet18")
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--workers", type=int, default=0)
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
train_transform = transforms.Compose([
    transforms.RandomResizedCrop(args.image_size, scale=CROP_SCALE),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize(MEAN, STD),
])
train_data = datasets.ImageFolder(f"{args.data}/train", transform=train_transform)
loader = torch.utils.data.DataLoader(train_data, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)

if args.arch == "resnet50":
    model, features = models.resnet50(weights=None), 2048
else:
    model, features = models.resnet18(weights=None), 512
model.fc = nn.Sequential(nn.Linear(features, 128), nn.ReLU(inplace=True), nn.Linear(128, len(train_data.classes)))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
model.train()

images, seconds = 0, 0.0
for epoch in range(args.epochs):
    started = time.perf_counter()
    seen = 0
    for inputs, labels in loader:
        if len(labels) < 2:
            continue
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        loss.item()
        seen += len(labels)
    if args.epochs == 1 or epoch > 0:
        images += seen
        seconds += time.perf_counter() - started

print(json.dumps({"images_per_s": images / seconds, "images": images, "seconds": seconds, "workers": args.workers}))
