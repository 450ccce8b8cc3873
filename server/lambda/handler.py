"""The Lambda in front of a SageMaker endpoint, as the seeds write it.

Sagedeck ships this file as the function's deployment package when it sets
the function up from the Lambda page. The event (for example {"url": ...}
or {"image_base64": ...}) goes to the endpoint as JSON; the endpoint's answer
(the logits, [[...]]) comes back as the body of an API Gateway-style reply.
The function's role may invoke this one endpoint and write its own logs,
nothing else.
"""

import json
import os

import boto3

runtime = boto3.client("sagemaker-runtime")
ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]


def lambda_handler(event, context):
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT_NAME,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(event),
    )
    body = response["Body"].read().decode("utf-8")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "Access-Control-Allow-Origin": "*"},
        "body": body,
    }
