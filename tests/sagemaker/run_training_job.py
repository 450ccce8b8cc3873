"""Runs a SageMaker training job on this machine the way SageMaker runs it.

For the job named on the command line, it reads the CreateTrainingJob request
back from the AWS endpoint in AWS_ENDPOINT_URL (moto in the tests) and, for
each of its instances, lays out what SageMaker gives a training container
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html):

    <work>/host-N/input/config/hyperparameters.json   the request's HyperParameters
    <work>/host-N/input/config/inputdataconfig.json   its channels
    <work>/host-N/input/config/resourceconfig.json    current_host, hosts, network interface
    <work>/host-N/input/data/<channel>/               the channel's S3 prefix, downloaded (File mode)
    <work>/host-N/model, output/data, checkpoints

then starts the real container entry point, sagemaker-training's `train`, with
SAGEMAKER_TRAINING_MODULE set to sagemaker-pytorch-training's entry point, as
the AWS PyTorch training image does. The toolkit itself fetches
`sagemaker_submit_directory` from S3 and runs `sagemaker_program`.

The instances are processes on loopback. SageMaker names them algo-1, algo-2
on a network where those names resolve; the toolkit looks every host up and
sets MASTER_ADDR to the first, so here the hosts are named by loopback
addresses (127.0.0.1, 127.0.0.2, ...) that resolve without touching
/etc/hosts. Logs are written to CloudWatch Logs as SageMaker writes them
(/aws/sagemaker/TrainingJobs, one stream per host named algo-N-<time>) and the
first host's model folder is uploaded as model.tar.gz where
DescribeTrainingJob's ModelArtifacts says.

Prints one JSON line: per host its exit status, seconds and log file; the
model's files; the artifact's S3 URI; the wall time.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time

import boto3


def s3_parts(uri):
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


def download_prefix(s3, uri, dest):
    """File mode: every object whose key starts with the prefix, by its path below it."""
    bucket, prefix = s3_parts(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/")
            if not relative or relative.endswith("/"):
                continue
            path = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(bucket, obj["Key"], path)
            count += 1
    if count == 0:
        raise SystemExit("channel %s is empty: SageMaker fails such a job with ClientError" % uri)
    return count


def lay_out(base, job, host, hosts, s3):
    config = os.path.join(base, "input", "config")
    os.makedirs(config, exist_ok=True)
    for folder in ("model", "output/data", "checkpoints"):
        os.makedirs(os.path.join(base, folder), exist_ok=True)
    with open(os.path.join(config, "hyperparameters.json"), "w") as f:
        json.dump(job.get("HyperParameters", {}), f)
    channels = {}
    for channel in job.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        channels[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", job["AlgorithmSpecification"].get("TrainingInputMode", "File")),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        download_prefix(s3, source["S3Uri"], os.path.join(base, "input", "data", channel["ChannelName"]))
    with open(os.path.join(config, "inputdataconfig.json"), "w") as f:
        json.dump(channels, f)
    instance_type = job["ResourceConfig"]["InstanceType"]
    resource = {
        "current_host": host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": "lo",
    }
    with open(os.path.join(config, "resourceconfig.json"), "w") as f:
        json.dump(resource, f)


def pump(stream, lines, log_file, lock):
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", "replace").rstrip("\n")
        with lock:
            lines.append((int(time.time() * 1000), text))
            log_file.write(text + "\n")
            log_file.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--job", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--timeout", type=int, default=1200)
    args = p.parse_args()
    started = time.time()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    sm = boto3.client("sagemaker", region_name=region)
    s3 = boto3.client("s3", region_name=region)
    logs = boto3.client("logs", region_name=region)
    job = sm.describe_training_job(TrainingJobName=args.job)
    count = job["ResourceConfig"]["InstanceCount"]
    hosts = ["127.0.0.%d" % (i + 1) for i in range(count)]
    train = os.path.join(os.path.dirname(sys.executable), "train")

    procs = []
    for i, host in enumerate(hosts):
        base = os.path.join(args.work, "host-%d" % (i + 1))
        lay_out(base, job, host, hosts, s3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env.update({
            "SAGEMAKER_BASE_DIR": base,
            "SAGEMAKER_TRAINING_MODULE": "sagemaker_pytorch_container.training:main",
            "TRAINING_JOB_NAME": args.job,
            "TRAINING_JOB_ARN": job.get("TrainingJobArn", ""),
            "S3_ENDPOINT_URL": endpoint,
            "AWS_REGION": region,
            "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // count)),
            "PYTHONUNBUFFERED": "1",
        })
        log_path = os.path.join(args.work, "algo-%d.log" % (i + 1))
        log_file = open(log_path, "w")
        proc = subprocess.Popen([train], cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines, lock = [], threading.Lock()
        pumper = threading.Thread(target=pump, args=(proc.stdout, lines, log_file, lock), daemon=True)
        pumper.start()
        procs.append({"host": host, "proc": proc, "lines": lines, "pumper": pumper, "log": log_path, "base": base, "file": log_file})

    deadline = started + args.timeout
    for p_ in procs:
        try:
            p_["proc"].wait(timeout=max(deadline - time.time(), 1))
        except subprocess.TimeoutExpired:
            for other in procs:
                other["proc"].kill()
        p_["pumper"].join(timeout=10)
        p_["file"].close()
        p_["seconds"] = time.time() - started

    # CloudWatch Logs, as SageMaker writes them.
    group = "/aws/sagemaker/TrainingJobs"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    stamp = int(started)
    for i, p_ in enumerate(procs):
        stream = "%s/algo-%d-%d" % (args.job, i + 1, stamp)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": t, "message": m or " "} for t, m in p_["lines"]]
        for start in range(0, len(events), 5000):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start : start + 5000])

    summary = {"hosts": [], "wall_seconds": time.time() - started, "model_files": [], "model_artifact": None}
    for p_ in procs:
        summary["hosts"].append({"host": p_["host"], "returncode": p_["proc"].returncode, "seconds": p_["seconds"], "log": p_["log"]})
    if all(p_["proc"].returncode == 0 for p_ in procs):
        model_dir = os.path.join(procs[0]["base"], "model")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for root, _, files in os.walk(model_dir):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    relative = os.path.relpath(path, model_dir)
                    tar.add(path, arcname=relative)
                    summary["model_files"].append(relative)
        artifact = job.get("ModelArtifacts", {}).get("S3ModelArtifacts") or "%s/%s/output/model.tar.gz" % (
            job["OutputDataConfig"]["S3OutputPath"].rstrip("/"), args.job)
        bucket, key = s3_parts(artifact)
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        summary["model_artifact"] = artifact
        summary["model_files"].sort()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
