"""Writes docs/iam/account.json: the authorization details of a small ML
account, as `aws iam get-account-authorization-details` writes them, made in
moto (with AWS's managed policies loaded). The roles are the ones
tests/iam.rs seeds: the seeds' Lambda role with AmazonSageMakerFullAccess, a
scoped Lambda role, a wildcard role another account may assume, and a
SageMaker role with a PassRole escalation and unscoped secrets.

Run with the project's venv: .venv/bin/python docs/iam/make_account.py
"""

import json
import os
import sys

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
from moto import mock_aws  # noqa: E402
import boto3  # noqa: E402

LAMBDA = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
SAGEMAKER = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
PARTNER = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole"}]}

ROLES = [
    ("dogs-lambda-role", LAMBDA, None, ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]),
    ("scoped-lambda-role", LAMBDA, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"}]}, []),
    ("partner-role", PARTNER, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, []),
    ("trainer-role", SAGEMAKER, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PassRole", "sagemaker:CreateTrainingJob"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"}]}, []),
]


@mock_aws
def main(out):
    iam = boto3.client("iam", region_name="us-east-1")
    for name, trust, inline, attached in ROLES:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        if inline:
            iam.put_role_policy(RoleName=name, PolicyName=f"{name}-inline", PolicyDocument=json.dumps(inline))
        for arn in attached:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    merged = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=["Role", "LocalManagedPolicy", "AWSManagedPolicy"]):
        merged["RoleDetailList"] += page.get("RoleDetailList", [])
        merged["Policies"] += page.get("Policies", [])
    # Keep the managed policies the roles attach (moto lists all of AWS's).
    used = {a["PolicyArn"] for r in merged["RoleDetailList"] for a in r.get("AttachedManagedPolicies", [])}
    merged["Policies"] = [p for p in merged["Policies"] if p["Arn"] in used]
    # moto leaves out PolicyName and PolicyId, which AWS always writes (and
    # Cloudsplaining needs): filled in as AWS would.
    for p in merged["Policies"]:
        p.setdefault("PolicyName", p["Arn"].rsplit("/", 1)[-1])
        p.setdefault("PolicyId", "ANPA" + p["PolicyName"].upper()[:17])
    with open(out, "w") as f:
        json.dump(merged, f, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "account.json"))
