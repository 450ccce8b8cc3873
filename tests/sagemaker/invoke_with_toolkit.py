"""Invokes a model.tar.gz through the SageMaker PyTorch inference toolkit, as
its container does, without the model server in front.

The container (sagemaker-pytorch-inference) unpacks model.tar.gz into
/opt/ml/model, puts /opt/ml/model/code on the Python path, and for each
request calls its HandlerService: `initialize(context)` once, then
`handle(data, context)`, which runs the toolkit's Transformer: the handler's
model_fn, input_fn, predict_fn and output_fn. This script does the same with
the toolkit's own HandlerService and a request context shaped like the model
server's.

    invoke_with_toolkit.py MODEL_TAR_GZ REQUESTS.json

REQUESTS.json is a list of {"name", "content_type", "body_file" | "body_text",
"accept"}; prints one JSON line: for each request its status, content type and
body (the logits, or the error message).
"""

import json
import os
import sys
import tarfile
import tempfile


class RequestProcessor:
    def __init__(self, headers):
        self.headers = headers

    def get_request_properties(self):
        return self.headers


class Context:
    """What the model server hands the handler (torchserve's Context)."""

    def __init__(self, model_dir, headers):
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.request_processor = [RequestProcessor(headers)]
        self.model_name = "model"
        self.status = 200
        self.phrase = None
        self.content_type = None

    def set_response_status(self, code, phrase):
        self.status, self.phrase = code, phrase

    def set_response_content_type(self, index, content_type):
        self.content_type = content_type


def main():
    archive, requests_file = sys.argv[1], sys.argv[2]
    # Each run unpacks a whole model (tens of MB): the folder goes when the
    # answers are in, failed or not.
    with tempfile.TemporaryDirectory(prefix="opt-ml-model-") as model_dir:
        answers = serve(archive, requests_file, model_dir)
    print(json.dumps(answers))


def serve(archive, requests_file, model_dir):
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    # The model server's PYTHONPATH: the model's code folder first.
    sys.path.insert(0, os.path.join(model_dir, "code"))
    os.environ.setdefault("SAGEMAKER_PROGRAM", "inference.py")
    from sagemaker_pytorch_serving_container.handler_service import HandlerService

    service = HandlerService()
    with open(requests_file) as f:
        requests = json.load(f)
    answers = []
    for i, request in enumerate(requests):
        headers = {"Content-Type": request["content_type"], "Accept": request.get("accept", "application/json")}
        context = Context(model_dir, headers)
        if i == 0:
            service.initialize(context)
        if "body_file" in request:
            with open(request["body_file"], "rb") as f:
                body = bytearray(f.read())
        else:
            body = bytearray(request["body_text"].encode())
        result = service.handle([{"body": body}], context)
        payload = result[0]
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8", "replace")
        answers.append({"name": request["name"], "status": context.status, "content_type": context.content_type, "body": payload})
    return answers


if __name__ == "__main__":
    main()
